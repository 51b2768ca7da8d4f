/**
 * The console's views (`routes.ts`): calls in progress built from the call engine's channels,
 * escalations loaded with their people and attempts, the dropped-message counters and the
 * server's time zone. Plain functions; the routes only answer with what they return.
 *
 * @module
 */

import type { Kysely } from 'kysely';
import type { Static } from 'typebox';
import type { CalloutTables } from '../callout/repository.ts';
import { AST_STATE_RING, AST_STATE_RINGING, AST_STATE_UP, type Channel } from '../calls/channel.ts';
import type { ServiceContext } from '../serve/module.ts';
import type { CallChannelSchema, CallSchema, Escalation } from './schemas.ts';
import type { ConsoleTracker } from './tracker.ts';

/** Asterisk channel states (`ChannelState`) by number. */
export const STATE_NAMES: Record<number, string> = {
  0: 'down',
  1: 'reserved',
  2: 'offhook',
  3: 'dialing',
  4: 'ring',
  5: 'ringing',
  6: 'up',
  7: 'busy',
  8: 'dialing_offhook',
  9: 'prering',
};

/** Escalation (callout_event) status words by the seed's numbers. */
export const ESCALATION_STATUS: Record<number, string> = {
  0: 'waiting',
  1: 'running',
  2: 'finished',
  99: 'error',
};
export const STATUS_BY_NAME: Record<string, number> = {
  waiting: 0,
  running: 1,
  finished: 2,
  error: 99,
};
/** Person status words by the seed's numbers (null: not called yet). */
export const PERSON_STATUS: Record<number, string> = {
  1: 'positive',
  2: 'negative',
  3: 'no_answer',
};

/** Every call of one engine, grouped by Linkedid, sorted by start (oldest first). */
export function callsOf(
  server: string,
  channels: Iterable<Channel>,
  tracker: ConsoleTracker,
): Static<typeof CallSchema>[] {
  const byLinkedid = new Map<string, Static<typeof CallChannelSchema>[]>();
  const flags = new Map<string, { transferred: boolean; ringing: boolean; up: boolean }>();
  const live = new Set<string>();
  for (const channel of channels) {
    live.add(channel.uniqueid);
    const times = tracker.times(server, channel.uniqueid, channel.state === AST_STATE_UP);
    const view = {
      name: channel.name,
      uniqueid: channel.uniqueid,
      linkedid: channel.linkedid,
      state: channel.state,
      stateName: STATE_NAMES[channel.state] ?? String(channel.state),
      callerId: { name: channel.callerIdName, num: channel.callerIdNum },
      connectedLine: { name: channel.connectedLineName, num: channel.connectedLineNum },
      exten: channel.exten,
      bridge: channel.bridge?.uniqueid ?? null,
      dialing: channel.fwdDials.map((target) => target.uniqueid),
      dialedBy: channel.backDial?.uniqueid ?? null,
      createdMs: times.createdMs,
      answeredMs: times.answeredMs,
    };
    const list = byLinkedid.get(channel.linkedid) ?? [];
    list.push(view);
    byLinkedid.set(channel.linkedid, list);
    const flag = flags.get(channel.linkedid) ?? { transferred: false, ringing: false, up: false };
    if (tracker.transferred(server, channel.uniqueid)) flag.transferred = true;
    if (
      channel.state === AST_STATE_RING ||
      channel.state === AST_STATE_RINGING ||
      channel.fwdDials.length > 0
    ) {
      flag.ringing = true;
    }
    if (channel.state === AST_STATE_UP) flag.up = true;
    flags.set(channel.linkedid, flag);
  }
  tracker.prune(server, live);
  const calls: Static<typeof CallSchema>[] = [];
  for (const [linkedid, list] of byLinkedid) {
    const flag = flags.get(linkedid) ?? { transferred: false, ringing: false, up: false };
    list.sort((a, b) => a.createdMs - b.createdMs || (a.uniqueid < b.uniqueid ? -1 : 1));
    const answered = list.map((c) => c.answeredMs).filter((ms): ms is number => ms !== null);
    calls.push({
      id: linkedid,
      server,
      state: flag.transferred
        ? 'transferred'
        : flag.ringing && !flag.up
          ? 'ringing'
          : flag.up
            ? 'up'
            : flag.ringing
              ? 'ringing'
              : 'setup',
      startedMs: Math.min(...list.map((c) => c.createdMs)),
      answeredMs: answered.length > 0 ? Math.min(...answered) : null,
      channels: list,
    });
  }
  calls.sort((a, b) => a.startedMs - b.startedMs || (a.id < b.id ? -1 : 1));
  return calls;
}

/** Loads escalations with their people and attempts (three queries for the whole page). */
export async function escalations(
  db: Kysely<CalloutTables>,
  filter: { status?: number; eventid?: string; limit: number; offset: number },
): Promise<{ total: number; items: Escalation[] }> {
  let base = db.selectFrom('callout_event');
  if (filter.status !== undefined) base = base.where('status', '=', filter.status);
  if (filter.eventid !== undefined) base = base.where('id', '=', filter.eventid);
  const counted = await base
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .executeTakeFirst();
  const events = await base
    .selectAll()
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(filter.limit)
    .offset(filter.offset)
    .execute();
  const ids = events.map((e) => e.id);
  const people =
    ids.length === 0
      ? []
      : await db
          .selectFrom('callout_person')
          .selectAll()
          .where('event_id', 'in', ids)
          .orderBy('numorder')
          .execute();
  const attempts =
    ids.length === 0
      ? []
      : await db
          .selectFrom('callout_attempt')
          .selectAll()
          .where('event_id', 'in', ids)
          .orderBy('placed_at')
          .orderBy('n')
          .execute();
  const orderOf = new Map(people.map((p) => [p.id, Number(p.numorder)]));
  const items = events.map((e): Escalation => {
    const mine = attempts.filter((a) => a.event_id === e.id);
    return {
      eventid: e.id,
      status: Number(e.status),
      statusName: ESCALATION_STATUS[Number(e.status)] ?? String(e.status),
      testflg: Number(e.testflg),
      provider: e.provider,
      hostname: e.hostname,
      operator: e.operator,
      calltype: Number(e.calltype),
      frequency: Number(e.frequency),
      language: e.language,
      message: e.message,
      createdMs: Number(e.created_at),
      startedMs: e.started_at === null ? null : Number(e.started_at),
      finishedMs: e.finished_at === null ? null : Number(e.finished_at),
      people: people
        .filter((p) => p.event_id === e.id)
        .map((p) => {
          const status = p.status === null ? null : Number(p.status);
          const calling = mine.some((a) => a.person_id === p.id && a.state === 'dialing');
          return {
            order: Number(p.numorder),
            userid: p.ghid,
            name: p.name,
            telno: p.telno,
            calls: Number(p.calls),
            latestMs: p.latest_at === null ? null : Number(p.latest_at),
            status,
            state: calling
              ? 'calling'
              : status === null
                ? 'pending'
                : (PERSON_STATUS[status] ?? String(status)),
          };
        }),
      attempts: mine.map((a) => ({
        order: orderOf.get(a.person_id) ?? 0,
        n: Number(a.n),
        state: a.state,
        outcome: a.outcome,
        key: a.digit,
        placedMs: Number(a.placed_at),
        endedMs: a.ended_at === null ? null : Number(a.ended_at),
      })),
    };
  });
  return { total: Number(counted?.n ?? 0), items };
}

/** A value of the Prometheus registry, summed per label set, as `name{label="v"}` keys. */
export async function counters(
  ctx: ServiceContext,
  names: readonly string[],
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const name of names) {
    const metric = ctx.metrics.registry.getSingleMetric(name);
    if (metric === undefined) continue;
    const { values } = await metric.get();
    for (const value of values) {
      const labels = Object.entries(value.labels)
        .filter(([label]) => label === 'reason' || label === 'kind' || label === 'server')
        .map(([label, v]) => `${label}="${String(v)}"`)
        .join(',');
      const key = labels === '' ? name : `${name}{${labels}}`;
      out[key] = (out[key] ?? 0) + value.value;
    }
  }
  return out;
}

export const DROPPED_COUNTERS = [
  'switchboard_bus_messages_dropped_total',
  'switchboard_sse_disconnects_total',
  'switchboard_ami_messages_skipped_total',
  'switchboard_call_engine_forgotten_total',
  'switchboard_callout_results_dropped_total',
];

export function serverTimeZone(): { timeZone: string; utcOffsetMin: number } {
  return {
    timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone ?? 'UTC',
    utcOffsetMin: -new Date().getTimezoneOffset(),
  };
}
