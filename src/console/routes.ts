/**
 * The console's read APIs (docs/console.md), each with a TypeBox schema and an operationId in
 * the OpenAPI document, behind the access rule of `src/http/auth.ts` (module name
 * `console`). Times are epoch ms. Nothing here ever returns a secret, a push token or a
 * webhook URL.
 *
 * - `GET /api/calls`: calls in progress per AMI server, from the call engine's state.
 * - `GET /api/escalations`, `GET /api/escalations/:eventid`: Barista escalations with their
 *   people and attempts, newest first, `status` filter, paged (`limit`, `offset`).
 * - `GET /api/announcements/schedule`, `GET /api/announcements/history`: Gong's queue (with
 *   effective start and duration) and what was played, failed or cancelled (paged).
 * - `GET /api/push`: devices per platform and app (counts), the recent wake-ups, a histogram.
 * - `GET /api/health`: AMI servers, bus, database, Redis, dropped-message counters.
 */

import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import Type, { type Static } from 'typebox';
import {
  AMI_CLASSES,
  type AmiFeature,
  describeNeed,
  permissionProblems,
} from '../ami/permissions.ts';
import type { AnnounceTables } from '../announce/repository.ts';
import { type CalloutTables, calloutDb } from '../callout/repository.ts';
import { AST_STATE_RING, AST_STATE_RINGING, AST_STATE_UP, type Channel } from '../calls/channel.ts';
import { createAccessRule } from '../http/auth.ts';
import { sendError } from '../http/errors.ts';
import { ACCESS_RULE_SECURITY, errorResponses } from '../http/schemas.ts';
import type { App } from '../http/server.ts';
import type { PushTables } from '../push/devices.ts';
import type { ServiceContext } from '../serve/module.ts';
import { VERSION } from '../version.ts';
import type { ConsoleTracker } from './tracker.ts';

/**
 * A nullable value as one JSON-schema `type` array, not an `anyOf`: Fastify's serializer
 * (fast-json-stringify) writes it directly, while every `anyOf` costs a validation per value
 * (measured: `/api/calls` with 1,000 calls several times slower).
 */
function Nullable<T extends 'string' | 'number' | 'integer'>(type: T, description: string) {
  return Type.Unsafe<(T extends 'string' ? string : number) | null>({
    type: [type, 'null'],
    description,
  });
}

/** A string out of a fixed set, as `enum` (one check when serializing, unlike an `anyOf`). */
function OneOf<const T extends readonly string[]>(values: T, description: string) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], description });
}

const Ms = (description: string) => Type.Number({ description: `${description} (epoch ms)` });
const NullableMs = (description: string) => Nullable('number', `${description} (epoch ms) or null`);

const ErrorBody = Type.Object({
  error: Type.String(),
  message: Type.String(),
  statusCode: Type.Integer(),
  field: Type.Optional(Type.String()),
});

const CallerId = Type.Object({ name: Type.String(), num: Type.String() });

/** Asterisk channel states (`ChannelState`) by number. */
const STATE_NAMES: Record<number, string> = {
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

export const CallChannelSchema = Type.Object({
  name: Type.String({ description: 'Asterisk channel name, e.g. PJSIP/201-0000000a' }),
  uniqueid: Type.String(),
  linkedid: Type.String(),
  state: Type.Integer({ description: 'AMI ChannelState (4 ring, 5 ringing, 6 up, ...)' }),
  stateName: Type.String({ description: 'ChannelState as a word: down, ring, ringing, up, ...' }),
  callerId: CallerId,
  connectedLine: CallerId,
  exten: Type.String(),
  bridge: Nullable('string', 'BridgeUniqueid or null'),
  dialing: Type.Array(Type.String(), { description: 'uniqueids of the channels it dials now' }),
  dialedBy: Nullable('string', 'uniqueid of its dialler, or null'),
  createdMs: Ms('first seen (Newchannel)'),
  answeredMs: NullableMs('up since'),
});

export const CallSchema = Type.Object({
  id: Type.String({ description: 'the Linkedid of the call' }),
  server: Type.String({ description: 'AMI server name' }),
  state: OneOf(
    ['ringing', 'up', 'transferred', 'setup'] as const,
    'transferred: a channel took part in a transfer; up: a channel is up; ringing: a dial is open or a channel rings; setup: otherwise',
  ),
  startedMs: Ms('first channel seen'),
  answeredMs: NullableMs('first channel up'),
  channels: Type.Array(CallChannelSchema),
});

const CallsResponse = Type.Object({
  nowMs: Ms('server time'),
  total: Type.Integer({ description: 'calls listed' }),
  servers: Type.Array(
    Type.Object({
      server: Type.String(),
      connected: Type.Boolean(),
      calls: Type.Array(CallSchema),
    }),
  ),
});

/** Escalation (callout_event) status words by the seed's numbers. */
const ESCALATION_STATUS: Record<number, string> = {
  0: 'waiting',
  1: 'running',
  2: 'finished',
  99: 'error',
};
const STATUS_BY_NAME: Record<string, number> = { waiting: 0, running: 1, finished: 2, error: 99 };
/** Person status words by the seed's numbers (null: not called yet). */
const PERSON_STATUS: Record<number, string> = { 1: 'positive', 2: 'negative', 3: 'no_answer' };

const AttemptSchema = Type.Object({
  order: Type.Integer({ description: 'the person called (addressee order)' }),
  n: Type.Integer({ description: 'attempt number for this person, from 1' }),
  state: Type.String({ description: 'dialing, done or unknown (lease expired, no outcome)' }),
  outcome: Nullable(
    'string',
    'positive, negative, noanswer, busy, failed, ... or null while dialing',
  ),
  key: Nullable('string', 'the DTMF key pressed, or null'),
  placedMs: Ms('dialled at'),
  endedMs: NullableMs('ended at'),
});

const PersonSchema = Type.Object({
  order: Type.Integer(),
  userid: Type.String(),
  name: Type.String(),
  telno: Type.String(),
  calls: Type.Integer({ description: 'calls made so far' }),
  latestMs: NullableMs('last call'),
  status: Nullable(
    'integer',
    'the seed status: null not called, 1 positive, 2 negative, 3 no answer',
  ),
  state: Type.String({
    description: 'pending, calling (an attempt is dialing), positive, negative, no_answer',
  }),
});

export const EscalationSchema = Type.Object({
  eventid: Type.String(),
  status: Type.Integer({
    description: 'seed eventstatus: 0 waiting, 1 running, 2 finished, 99 error',
  }),
  statusName: Type.String({ description: 'waiting, running, finished, error' }),
  testflg: Type.Integer(),
  provider: Type.String(),
  hostname: Type.String(),
  operator: Type.String(),
  calltype: Type.Integer({ description: '1 sequential, 2 parallel' }),
  frequency: Type.Integer(),
  language: Type.String(),
  message: Type.String(),
  createdMs: Ms('received'),
  startedMs: NullableMs('first call'),
  finishedMs: NullableMs('finished'),
  people: Type.Array(PersonSchema),
  attempts: Type.Array(AttemptSchema),
});
type Escalation = Static<typeof EscalationSchema>;

const Paging = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 })),
};

const AnnouncementSchema = Type.Object({
  id: Type.String(),
  description: Type.String(),
  extension: Type.String(),
  kind: Type.String({ description: 'tts or audio' }),
  text: Type.String({ description: 'the text spoken (tts), "" for uploads' }),
  language: Type.String(),
  status: Type.String({ description: 'scheduled, playing, played, failed, spooled, cancelled' }),
  outcome: Type.String({ description: 'answered, busy, noanswer, failed, interrupted, ...' }),
  attempts: Type.Integer(),
  requestedMs: Ms('start asked for'),
  startMs: Ms('effective start (computed schedule)'),
  durationMs: Type.Integer({ description: 'audio duration, ms' }),
  endMs: Ms('start + duration'),
  finishedMs: NullableMs('reached its final state'),
});

const WakeupSchema = Type.Object({
  atMs: Ms('answered the PBX'),
  status: Type.String({ description: 'ACK or NAK' }),
  reason: Type.String({ description: 'available, or the NAK reason (timeout, unavailable, ...)' }),
  sipUserId: Type.String(),
  platform: Type.Optional(Type.String({ description: 'apns or fcm' })),
  devices: Type.Integer({ description: 'devices pushed' }),
  heldMs: Type.Number({ description: 'incoming-call request to answer, ms' }),
  roundTripMs: Type.Optional(Type.Number({ description: 'push to call-response, ms' })),
});

/** Upper bounds of the wake-up round-trip histogram, ms (the last bucket is open). */
export const ROUND_TRIP_BUCKETS_MS = [250, 500, 1000, 2000, 4000];

const PushResponse = Type.Object({
  enabled: Type.Boolean(),
  devices: Type.Array(
    Type.Object({ platform: Type.String(), app: Type.String(), count: Type.Integer() }),
  ),
  wakeups: Type.Array(WakeupSchema, { description: 'newest first (at most 100)' }),
  histogram: Type.Object({
    boundsMs: Type.Array(Type.Number(), { description: 'upper bounds; one more open bucket' }),
    counts: Type.Array(Type.Integer()),
  }),
});

const HealthResponse = Type.Object({
  nowMs: Ms('server time'),
  timeZone: Type.String({ description: "the server's IANA time zone" }),
  utcOffsetMin: Type.Integer({ description: "the server's UTC offset now, minutes" }),
  instance: Type.Object({ name: Type.String(), uuid: Type.String(), version: Type.String() }),
  ami: Type.Array(
    Type.Object({
      server: Type.String(),
      connected: Type.Boolean(),
      sinceMs: Ms('connected or disconnected since'),
      lastEventMs: NullableMs('last AMI event'),
      lastError: Type.String({ description: 'why the last connection ended' }),
      read: Type.Array(Type.String(), { description: 'read classes known granted' }),
      write: Type.Array(Type.String(), { description: 'write classes known granted' }),
      problems: Type.Array(Type.String(), { description: 'permissions an enabled feature lacks' }),
      channels: Type.Integer(),
      bridges: Type.Integer(),
    }),
  ),
  bus: Type.Object({
    kind: Type.String(),
    connected: Type.Boolean(),
    buffered: Type.Integer(),
    published: Type.Integer(),
    dropped: Type.Integer(),
  }),
  database: Type.Object({ dialect: Type.String(), ok: Type.Boolean(), detail: Type.String() }),
  redis: Type.Object({ configured: Type.Boolean(), connected: Type.Boolean() }),
  dropped: Type.Record(Type.String(), Type.Number(), {
    description:
      'dropped-message counters by metric and label, e.g. switchboard_sse_disconnects_total{reason="slow"}',
  }),
});

/** Options of {@link consoleRoutes}. */
export interface ConsoleRoutesOptions {
  ctx: ServiceContext;
  tracker: ConsoleTracker;
  /** Redis client for the health view, when `redis.url` is set. */
  redis: () => Redis | undefined;
  /** Whether the push module runs. */
  pushEnabled: boolean;
}

/** Every call of one engine, grouped by Linkedid, sorted by start (oldest first). */
function callsOf(
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
async function escalations(
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
async function counters(
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

const DROPPED_COUNTERS = [
  'switchboard_bus_messages_dropped_total',
  'switchboard_sse_disconnects_total',
  'switchboard_ami_messages_skipped_total',
  'switchboard_call_engine_forgotten_total',
  'switchboard_callout_results_dropped_total',
];

function serverTimeZone(): { timeZone: string; utcOffsetMin: number } {
  return {
    timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone ?? 'UTC',
    utcOffsetMin: -new Date().getTimezoneOffset(),
  };
}

/** Registers the console's read APIs on `app` (inside the console plugin). */
export async function consoleRoutes(app: App, options: ConsoleRoutesOptions): Promise<void> {
  const { ctx, tracker } = options;
  app.addHook('onRequest', createAccessRule({ ...ctx.config.auth, module: 'console' }));
  const tags = ['console'];

  app.get(
    '/api/calls',
    {
      schema: {
        operationId: 'listCalls',
        security: ACCESS_RULE_SECURITY,
        tags,
        summary: 'Calls in progress, per AMI server',
        description:
          "From the call engine's state: channels grouped by Linkedid, who dials whom " +
          '(`dialing`, `dialedBy`), who is bridged with whom (`bridge`), since when. Live ' +
          'changes: the `call.*` events of `/api/events`.',
        querystring: Type.Object({ server: Type.Optional(Type.String({ maxLength: 200 })) }),
        response: {
          ...errorResponses(ErrorBody, [401, 403]),
          200: CallsResponse,
          400: ErrorBody,
        },
      },
    },
    async (request, reply) => {
      const { server } = request.query as { server?: string };
      const servers = [...ctx.ami.engines]
        .filter(([name]) => server === undefined || name === server)
        .map(([name, engine]) => ({
          server: name,
          connected: ctx.ami.clients.find((c) => c.name === name)?.connected ?? false,
          calls: callsOf(name, engine.channels.values(), tracker),
        }));
      // Serialized here: the shape is built to the schema above, and JSON.stringify is
      // several times faster than the schema serializer on a thousand calls (bench/console.ts).
      reply.serializer(JSON.stringify);
      return {
        nowMs: Date.now(),
        total: servers.reduce((n, s) => n + s.calls.length, 0),
        servers,
      };
    },
  );

  const callout = calloutDb(ctx.db);
  app.get(
    '/api/escalations',
    {
      schema: {
        operationId: 'listEscalations',
        security: ACCESS_RULE_SECURITY,
        tags,
        summary: 'Escalations (Barista alert calls), newest first',
        description:
          'Each with its people (state per person) and attempts (when, outcome, key). Paged ' +
          'with `limit` (1-200, default 50) and `offset`; `status` filters. Live changes: the ' +
          '`callout.*` events of `/api/events`.',
        querystring: Type.Object({
          status: Type.Optional(
            Type.Enum(['waiting', 'running', 'finished', 'error'], {
              description: 'only escalations in this state',
            }),
          ),
          ...Paging,
        }),
        response: {
          ...errorResponses(ErrorBody, [401, 403]),
          200: Type.Object({
            total: Type.Integer(),
            limit: Type.Integer(),
            offset: Type.Integer(),
            items: Type.Array(EscalationSchema),
          }),
          400: ErrorBody,
        },
      },
    },
    async (request) => {
      const q = request.query as { status?: string; limit?: number; offset?: number };
      const limit = q.limit ?? 50;
      const offset = q.offset ?? 0;
      const status = q.status === undefined ? undefined : STATUS_BY_NAME[q.status];
      const page = await escalations(callout, {
        ...(status === undefined ? {} : { status }),
        limit,
        offset,
      });
      return { total: page.total, limit, offset, items: page.items };
    },
  );

  app.get(
    '/api/escalations/:eventid',
    {
      schema: {
        operationId: 'getEscalation',
        security: ACCESS_RULE_SECURITY,
        tags,
        summary: 'One escalation with its people and attempts',
        params: Type.Object({ eventid: Type.String({ minLength: 1, maxLength: 100 }) }),
        response: {
          ...errorResponses(ErrorBody, [401, 403]),
          200: EscalationSchema,
          400: ErrorBody,
          404: ErrorBody,
        },
      },
    },
    async (request, reply) => {
      const { eventid } = request.params as { eventid: string };
      const page = await escalations(callout, { eventid, limit: 1, offset: 0 });
      const item = page.items[0];
      if (item === undefined) {
        return sendError(reply, request, {
          statusCode: 404,
          code: 'not_found',
          message: 'no escalation with this eventid',
          field: 'params.eventid',
          headers: {},
        });
      }
      return item;
    },
  );

  const announce = ctx.db.db as unknown as Kysely<AnnounceTables>;
  const announcementView = (m: AnnounceTables['announce_message']) => ({
    id: m.public_id,
    description: m.description,
    extension: m.extension,
    kind: m.kind,
    text: m.text,
    language: m.language,
    status: m.status,
    outcome: m.outcome,
    attempts: Number(m.attempts),
    requestedMs: Number(m.requested_at),
    startMs: Number(m.due_at),
    durationMs: Number(m.duration_ms),
    endMs: Number(m.due_at) + Number(m.duration_ms),
    finishedMs: m.finished_at === null ? null : Number(m.finished_at),
  });
  app.get(
    '/api/announcements/schedule',
    {
      schema: {
        operationId: 'listAnnouncementSchedule',
        security: ACCESS_RULE_SECURITY,
        tags,
        summary: 'Announcements to come (scheduled, playing), by effective start',
        description:
          'The computed start and the duration of each message (the queue as a timeline). ' +
          'Live changes: the `announce.*` events of `/api/events`.',
        response: {
          ...errorResponses(ErrorBody, [401, 403]),
          200: Type.Object({ nowMs: Ms('server time'), items: Type.Array(AnnouncementSchema) }),
        },
      },
    },
    async () => {
      const rows = await announce
        .selectFrom('announce_message')
        .selectAll()
        .where('status', 'in', ['scheduled', 'playing'])
        .orderBy('due_at')
        .orderBy('id')
        .limit(1000)
        .execute();
      return { nowMs: Date.now(), items: rows.map(announcementView) };
    },
  );

  app.get(
    '/api/announcements/history',
    {
      schema: {
        operationId: 'listAnnouncementHistory',
        security: ACCESS_RULE_SECURITY,
        tags,
        summary: 'Announcements played, failed (with the reason), spooled or cancelled',
        description: 'Newest first; paged with `limit` (1-200, default 50) and `offset`.',
        querystring: Type.Object(Paging),
        response: {
          ...errorResponses(ErrorBody, [401, 403]),
          200: Type.Object({
            total: Type.Integer(),
            limit: Type.Integer(),
            offset: Type.Integer(),
            items: Type.Array(AnnouncementSchema),
          }),
          400: ErrorBody,
        },
      },
    },
    async (request) => {
      const q = request.query as { limit?: number; offset?: number };
      const limit = q.limit ?? 50;
      const offset = q.offset ?? 0;
      const base = announce
        .selectFrom('announce_message')
        .where('status', 'not in', ['scheduled', 'playing']);
      const counted = await base
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .executeTakeFirst();
      const rows = await base
        .selectAll()
        .orderBy('finished_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .offset(offset)
        .execute();
      return { total: Number(counted?.n ?? 0), limit, offset, items: rows.map(announcementView) };
    },
  );

  const push = ctx.db.db as unknown as Kysely<PushTables>;
  app.get(
    '/api/push',
    {
      schema: {
        operationId: 'getPushOverview',
        security: ACCESS_RULE_SECURITY,
        tags,
        summary: 'Push devices (counts per platform and app) and the recent wake-ups',
        description:
          'Never a token. Wake-ups: the last ones answered to the PBX (ACK/NAK with reason), ' +
          'their round trip (push to the app’s call-response) and a histogram of it. Live ' +
          'changes: `push.wake.answered` on `/api/events`.',
        response: {
          ...errorResponses(ErrorBody, [401, 403]),
          200: PushResponse,
        },
      },
    },
    async () => {
      const devices = options.pushEnabled
        ? await push
            .selectFrom('push_device')
            .select(['platform', 'app', (eb) => eb.fn.countAll<number | string>().as('count')])
            .groupBy(['platform', 'app'])
            .orderBy('platform')
            .orderBy('app')
            .execute()
        : [];
      const counts = ROUND_TRIP_BUCKETS_MS.map(() => 0).concat([0]);
      for (const wake of tracker.wakeups) {
        if (wake.roundTripMs === undefined) continue;
        const i = ROUND_TRIP_BUCKETS_MS.findIndex((bound) => (wake.roundTripMs ?? 0) <= bound);
        const at = i === -1 ? ROUND_TRIP_BUCKETS_MS.length : i;
        counts[at] = (counts[at] ?? 0) + 1;
      }
      return {
        enabled: options.pushEnabled,
        devices: devices.map((d) => ({ platform: d.platform, app: d.app, count: Number(d.count) })),
        wakeups: tracker.wakeups.slice(-100).reverse(),
        histogram: { boundsMs: ROUND_TRIP_BUCKETS_MS, counts },
      };
    },
  );

  app.get(
    '/api/health',
    {
      schema: {
        operationId: 'getHealth',
        security: ACCESS_RULE_SECURITY,
        tags,
        summary: 'AMI servers, bus, database, Redis, dropped-message counters',
        description:
          'Login classes are what the AMI session proved (docs/ami.md, "Permissions"). Live ' +
          'changes: `switchboard.health` on `/api/events` (AMI connected / disconnected).',
        response: {
          ...errorResponses(ErrorBody, [401, 403]),
          200: HealthResponse,
        },
      },
    },
    async () => {
      const features: AmiFeature[] = ['calls'];
      if (ctx.config.callout.enabled) features.push('callout');
      if (ctx.config.announce.enabled) features.push('announce');
      const ami = ctx.ami.clients.map((client) => {
        const track = tracker.servers.get(client.name);
        const permissions = ctx.ami.permissions(client.name);
        const engine = ctx.ami.engines.get(client.name);
        return {
          server: client.name,
          connected: client.connected,
          sinceMs: track?.sinceMs ?? Date.now(),
          lastEventMs: track?.lastEventMs ?? null,
          lastError: track?.lastError ?? '',
          read: permissions ? AMI_CLASSES.filter((c) => permissions.read[c] === 'granted') : [],
          write: permissions ? AMI_CLASSES.filter((c) => permissions.write[c] === 'granted') : [],
          problems: permissions
            ? permissionProblems(permissions, features)
                .filter((p) => p.state === 'missing')
                .map((p) => `${p.feature}: ${describeNeed(p)}`)
            : [],
          channels: engine?.channels.size ?? 0,
          bridges: engine?.bridges.size ?? 0,
        };
      });
      const bus = ctx.bus.status();
      const database = await ctx.db.check().catch((error: unknown) => ({
        ok: false,
        detail: (error as Error).message,
      }));
      const redis = options.redis();
      return {
        nowMs: Date.now(),
        ...serverTimeZone(),
        instance: {
          name: ctx.config.instance.name,
          uuid: ctx.config.instance.uuid,
          version: VERSION,
        },
        ami,
        bus: {
          kind: bus.kind,
          connected: bus.connected,
          buffered: bus.buffered,
          published: bus.published,
          dropped: bus.dropped,
        },
        database: { dialect: ctx.db.dialect, ok: database.ok, detail: database.detail ?? '' },
        redis: { configured: redis !== undefined, connected: redis?.status === 'ready' },
        dropped: await counters(ctx, DROPPED_COUNTERS),
      };
    },
  );
}
