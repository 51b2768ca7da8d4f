/**
 * The TypeBox schemas of the console's read APIs (`routes.ts`): the response shapes that go
 * into the OpenAPI document. Times are epoch ms.
 *
 * @module
 */
import Type, { type Static, type TSchema } from 'typebox';

/**
 * A nullable value as one JSON-schema `type` array, not an `anyOf`: Fastify's serializer
 * (fast-json-stringify) writes it directly, while every `anyOf` costs a validation per value
 * (measured: `/api/calls` with 1,000 calls several times slower).
 */
export function Nullable<T extends 'string' | 'number' | 'integer'>(type: T, description: string) {
  return Type.Unsafe<(T extends 'string' ? string : number) | null>({
    type: [type, 'null'],
    description,
  });
}

/** A string out of a fixed set, as `enum` (one check when serializing, unlike an `anyOf`). */
export function OneOf<const T extends readonly string[]>(values: T, description: string) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], description });
}

export const Ms = (description: string) =>
  Type.Number({ description: `${description} (epoch ms)` });
export const NullableMs = (description: string) =>
  Nullable('number', `${description} (epoch ms) or null`);

export const ErrorBody = Type.Object({
  error: Type.String(),
  message: Type.String(),
  statusCode: Type.Integer(),
  field: Type.Optional(Type.String()),
});

export const CallerId = Type.Object({ name: Type.String(), num: Type.String() });

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

export const CallsResponse = Type.Object({
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

export const AttemptSchema = Type.Object({
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

export const PersonSchema = Type.Object({
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
export type Escalation = Static<typeof EscalationSchema>;

export const Paging = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 })),
};

/** One page of a list: `items` from `offset`, at most `limit`, of `total` in all. */
export const PageOf = <T extends TSchema>(item: T) =>
  Type.Object({
    total: Type.Integer(),
    limit: Type.Integer(),
    offset: Type.Integer(),
    items: Type.Array(item),
  });

export const AnnouncementSchema = Type.Object({
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

export const WakeupSchema = Type.Object({
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

export const PushResponse = Type.Object({
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

export const HealthResponse = Type.Object({
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
