/**
 * The escalations as the live console shows them (`GET /api/escalations`, docs/console.md):
 * callout's source for the console, decorated on the root instance as `consoleEscalations`
 * by the callout plugin. Its shape is the console's read model (`EscalationSource` of
 * src/console/sources.ts, matched structurally: callout does not import the console, and
 * `test/console/sources.test.ts` checks that the two agree). Source: the seed's
 * `callout_event`, `callout_person` and the attempts of `callout_attempt`.
 *
 * @module
 */
import type { Kysely } from 'kysely';
import type { App } from '../http/server.ts';
import type { Database } from '../store/db.ts';
import type { CalloutTables } from './repository.ts';
import { calloutDb } from './repository.ts';

/** One attempt of an escalation: the person's order, the n-th call, its outcome (epoch ms). */
export interface ConsoleAttempt {
  order: number;
  n: number;
  state: string;
  outcome: string | null;
  key: string | null;
  placedMs: number;
  endedMs: number | null;
}

/** One person of an escalation: the seed's fields and a state word (epoch ms). */
export interface ConsolePerson {
  order: number;
  userid: string;
  name: string;
  telno: string;
  calls: number;
  latestMs: number | null;
  status: number | null;
  state: string;
}

/** One escalation with its people and attempts (epoch ms). */
export interface ConsoleEscalation {
  eventid: string;
  status: number;
  statusName: string;
  testflg: number;
  provider: string;
  hostname: string;
  operator: string;
  calltype: number;
  frequency: number;
  language: string;
  message: string;
  createdMs: number;
  startedMs: number | null;
  finishedMs: number | null;
  people: ConsolePerson[];
  attempts: ConsoleAttempt[];
}

/** Escalation (callout_event) status words by the seed's numbers. */
const ESCALATION_STATUS: Record<number, string> = {
  0: 'waiting',
  1: 'running',
  2: 'finished',
  99: 'error',
};
/** The seed's numbers by status word (the console's `status` filter). */
const STATUS_BY_NAME: Record<string, number> = {
  waiting: 0,
  running: 1,
  finished: 2,
  error: 99,
};
/** Person status words by the seed's numbers (null: not called yet). */
const PERSON_STATUS: Record<number, string> = {
  1: 'positive',
  2: 'negative',
  3: 'no_answer',
};

/** Loads escalations with their people and attempts (three queries for the whole page). */
async function escalations(
  db: Kysely<CalloutTables>,
  filter: { status?: number; eventid?: string; limit: number; offset: number },
): Promise<{ total: number; items: ConsoleEscalation[] }> {
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
  const items = events.map((e): ConsoleEscalation => {
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

/** Callout's escalation source for the console, reading `database`. */
export function escalationSource(database: Database) {
  const db = calloutDb(database);
  return {
    /** A page, newest first; `eventid` selects one, `status` (a word) filters. */
    list(filter: {
      status?: string;
      eventid?: string;
      limit: number;
      offset: number;
    }): Promise<{ total: number; items: ConsoleEscalation[] }> {
      const status = filter.status === undefined ? undefined : STATUS_BY_NAME[filter.status];
      return escalations(db, {
        ...(status === undefined ? {} : { status }),
        ...(filter.eventid === undefined ? {} : { eventid: filter.eventid }),
        limit: filter.limit,
        offset: filter.offset,
      });
    },
  };
}

/** Provides {@link escalationSource} to the console (decorator `consoleEscalations`). */
export function provideConsoleSource(app: App, database: Database): void {
  if (!app.hasDecorator('consoleEscalations')) {
    app.decorate('consoleEscalations', escalationSource(database));
  }
}
