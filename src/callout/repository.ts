/**
 * (Over 500 lines on purpose: every query of the callout module in one file, as issue 13 §3
 * asks; tables and migrations are in tables.ts.)
 *
 * Every query of the callout module (issue 13 §3: the service, the decision and the result
 * writer build no SQL themselves). Tables and migrations: tables.ts. Transactions that touch
 * several events lock them first, in id order ({@link lockEvents}, PostgreSQL), then
 * attempts, then people: decisions, result groups and the reaper never deadlock each other.
 *
 * @module
 */
import { sql, type Transaction } from 'kysely';
import type { Database } from '../store/db.ts';
import type { AttemptOutcome } from './providers/types.ts';
import { statusOfDigit } from './providers/types.ts';
import { EVENT_STATUS, PERSON_STATUS } from './rule.ts';
import {
  type AttemptRow,
  type CalloutTables,
  calloutDb,
  type EventRow,
  type PersonRow,
} from './tables.ts';

export {
  type AttemptRow,
  type CalloutDb,
  type CalloutTables,
  calloutDb,
  calloutMigrations,
  type EventRow,
  type PersonRow,
} from './tables.ts';

/**
 * Inserts events and their people (durable before anything acts, once the caller's
 * transaction commits): multi-row INSERTs of at most 2,000 rows (PostgreSQL takes at most
 * 65,535 parameters per statement).
 */
export async function insertEvents(
  trx: Transaction<CalloutTables>,
  rows: ReadonlyArray<{ event: EventRow; people: readonly PersonRow[] }>,
): Promise<void> {
  const events = rows.map((r) => r.event);
  const people = rows.flatMap((r) => r.people);
  for (let i = 0; i < events.length; i += 2000) {
    await trx
      .insertInto('callout_event')
      .values(events.slice(i, i + 2000))
      .execute();
  }
  for (let i = 0; i < people.length; i += 2000) {
    await trx
      .insertInto('callout_person')
      .values(people.slice(i, i + 2000))
      .execute();
  }
}

/**
 * Locks events in id order (PostgreSQL `SELECT ... ORDER BY id FOR UPDATE`; SQLite has one
 * writer and needs nothing). Every transaction that updates several events takes their locks
 * this way first, events before attempts and people, so that no two of them wait for each
 * other (a multi-row UPDATE locks rows in whatever order its plan scans them).
 */
export async function lockEvents(
  trx: Transaction<CalloutTables>,
  dialect: 'sqlite' | 'postgres',
  ids: readonly string[],
): Promise<void> {
  if (dialect !== 'postgres' || ids.length === 0) return;
  await trx
    .selectFrom('callout_event')
    .select('id')
    .where('id', 'in', [...ids])
    .orderBy('id')
    .forUpdate()
    .execute();
}

/** {@link lockEvents} for the events of these attempts, in one statement. */
export async function lockEventsOfAttempts(
  trx: Transaction<CalloutTables>,
  dialect: 'sqlite' | 'postgres',
  attemptIds: readonly string[],
): Promise<void> {
  if (dialect !== 'postgres' || attemptIds.length === 0) return;
  await trx
    .selectFrom('callout_event')
    .select('id')
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('callout_attempt')
        .select('event_id')
        .where('id', 'in', [...attemptIds]),
    )
    .orderBy('id')
    .forUpdate()
    .execute();
}

/** Sets the provider call ids (Twilio `CallSid`, Asterisk `Uniqueid`) of attempts: one UPDATE. */
export async function setProviderCallIds(
  trx: Transaction<CalloutTables>,
  writes: ReadonlyArray<{ attemptId: string; providerCallId: string }>,
): Promise<void> {
  if (writes.length === 0) return;
  const byId = new Map(writes.map((w) => [w.attemptId, w.providerCallId]));
  const cases = sql.join(
    [...byId].map(([id, callId]) => sql`when ${id} then ${callId}`),
    sql` `,
  );
  await trx
    .updateTable('callout_attempt')
    .set({ provider_call_id: sql<string>`case id ${cases} end` })
    .where('id', 'in', [...byId.keys()])
    .execute();
}

/** An event with its people and attempts (history). */
export interface EventHistory {
  event: EventRow;
  people: PersonRow[];
  attempts: AttemptRow[];
}

/** Loads an event with its people (by order) and attempts (by time); undefined if unknown. */
export async function loadEvent(
  database: Database,
  eventId: string,
): Promise<EventHistory | undefined> {
  const db = calloutDb(database);
  const event = await db
    .selectFrom('callout_event')
    .selectAll()
    .where('id', '=', eventId)
    .executeTakeFirst();
  if (!event) return undefined;
  const people = await db
    .selectFrom('callout_person')
    .selectAll()
    .where('event_id', '=', eventId)
    .orderBy('numorder')
    .execute();
  const attempts = await db
    .selectFrom('callout_attempt')
    .selectAll()
    .where('event_id', '=', eventId)
    .orderBy('placed_at')
    .orderBy('id')
    .execute();
  return { event, people, attempts };
}

/** Raw SQL helper kept here so the service never builds SQL itself. */
export const inStates = (states: readonly number[]) =>
  sql`status in (${sql.join(states.map((s) => sql.lit(s)))})`;

/** The live attempt (not `done`) of `provider` with this provider call id, if any. */
export async function liveAttemptIdByProviderCallId(
  database: Database,
  provider: string,
  providerCallId: string,
): Promise<string | undefined> {
  const row = await calloutDb(database)
    .selectFrom('callout_attempt')
    .select('id')
    .where('provider_call_id', '=', providerCallId)
    .where('provider', '=', provider)
    .where('state', '!=', 'done')
    .executeTakeFirst();
  return row?.id;
}

/** The attempt with this provider call id (Twilio `CallSid`), if any. */
export async function attemptByProviderCallId(
  database: Database,
  providerCallId: string,
): Promise<AttemptRow | undefined> {
  return calloutDb(database)
    .selectFrom('callout_attempt')
    .selectAll()
    .where('provider_call_id', '=', providerCallId)
    .executeTakeFirst();
}

/** An attempt by id. */
export async function attemptById(
  database: Database,
  attemptId: string,
): Promise<AttemptRow | undefined> {
  return calloutDb(database)
    .selectFrom('callout_attempt')
    .selectAll()
    .where('id', '=', attemptId)
    .executeTakeFirst();
}

/** Most attempts reaped per round (the next round takes the rest): bounded statements. */
const REAP_BATCH = 1000;

/**
 * The reaper, in ONE transaction: `dialing` attempts whose lease ran out (their process died,
 * or no outcome ever came) become `unknown` (= no answer), their people without a status get
 * 3 (no answer) and their in-progress events are due now. Either all of it or nothing: an
 * attempt is never `unknown` while its event waits for a lease that is already over.
 * @returns the attempts reaped.
 */
export async function reapExpiredAttempts(
  database: Database,
  nowMs: number,
): Promise<AttemptRow[]> {
  const db = calloutDb(database);
  // Every round looks: one statement when nothing expired (the common case), no transaction.
  const expired = await db
    .selectFrom('callout_attempt')
    .select('id')
    .where('state', '=', 'dialing')
    .where('lease_until', '<=', nowMs)
    .orderBy('lease_until')
    .limit(REAP_BATCH)
    .execute();
  if (expired.length === 0) return [];
  const ids = expired.map((a) => a.id);
  return db.transaction().execute(async (trx) => {
    // the events first, in id order (see lockEvents), as decisions and result groups do;
    // the attempts are fenced again (still dialing, lease over) under the lock
    await lockEventsOfAttempts(trx, database.dialect, ids);
    const reaped = await trx
      .updateTable('callout_attempt')
      .set({ state: 'unknown', outcome: 'unknown', ended_at: nowMs, lease_owner: null })
      .where('id', 'in', ids)
      .where('state', '=', 'dialing')
      .where('lease_until', '<=', nowMs)
      .returningAll()
      .execute();
    if (reaped.length === 0) return [];
    await trx
      .updateTable('callout_person')
      .set({ status: PERSON_STATUS.noAnswer })
      .where('id', 'in', unique(reaped.map((a) => a.person_id)))
      .where('status', 'is', null)
      .execute();
    await wakeEvents(trx, reaped, nowMs);
    return reaped;
  });
}

/**
 * A call that could not be prepared, in ONE transaction: its event (locked first) ends with
 * status 99 and `reason` (at most 500 characters) if still waiting or in progress, and the
 * attempt ends `failed` unless already `done`.
 * @returns the attempt and the event changed (undefined: unchanged or unknown).
 */
export async function failUnprepared(
  database: Database,
  attemptId: string,
  reason: string,
  nowMs: number,
): Promise<{ attempt: AttemptRow | undefined; event: EventRow | undefined }> {
  return calloutDb(database)
    .transaction()
    .execute(async (trx) => {
      const found = await trx
        .selectFrom('callout_attempt')
        .select('event_id')
        .where('id', '=', attemptId)
        .executeTakeFirst();
      if (found === undefined) return { attempt: undefined, event: undefined };
      // the event first (PostgreSQL; see lockEvents)
      await lockEvents(trx, database.dialect, [found.event_id]);
      const event = await trx
        .updateTable('callout_event')
        .set({
          status: EVENT_STATUS.error,
          error: reason.slice(0, 500),
          finished_at: nowMs,
          due_at: null,
          lease_until: null,
          lease_owner: null,
        })
        .where('id', '=', found.event_id)
        .where('status', 'in', [EVENT_STATUS.waiting, EVENT_STATUS.inProgress])
        .returningAll()
        .executeTakeFirst();
      const attempt = await trx
        .updateTable('callout_attempt')
        .set({
          state: 'done',
          outcome: 'failed',
          ended_at: nowMs,
          lease_until: null,
          lease_owner: null,
        })
        .where('id', '=', attemptId)
        .where('state', '!=', 'done')
        .returningAll()
        .executeTakeFirst();
      return { attempt, event };
    });
}

/**
 * Fences claimed events in a decision transaction: locks them (id order) and renews their
 * lease where `owner` still holds it.
 * @returns the events still held (a lost lease: another worker has the event).
 */
export async function fenceEvents(
  trx: Transaction<CalloutTables>,
  dialect: 'sqlite' | 'postgres',
  ids: readonly string[],
  owner: string,
  leaseUntil: number,
): Promise<EventRow[]> {
  await lockEvents(trx, dialect, ids);
  return trx
    .updateTable('callout_event')
    .set({ lease_until: leaseUntil })
    .where('id', 'in', [...ids])
    .where('lease_owner', '=', owner)
    .returningAll()
    .execute();
}

/** The people (by event, then order) and the `dialing` attempts of these events. */
export async function decisionInputs(
  trx: Transaction<CalloutTables>,
  eventIds: readonly string[],
): Promise<{ people: PersonRow[]; inflight: AttemptRow[] }> {
  const inflight = await trx
    .selectFrom('callout_attempt')
    .selectAll()
    .where('event_id', 'in', [...eventIds])
    .where('state', '=', 'dialing')
    .execute();
  const people = await trx
    .selectFrom('callout_person')
    .selectAll()
    .where('event_id', 'in', [...eventIds])
    .orderBy('event_id')
    .orderBy('numorder')
    .execute();
  return { people, inflight };
}

/**
 * Writes the decisions of a chunk, set-based: the events (one UPDATE per distinct new state),
 * the new attempts (one INSERT) and the people called (one UPDATE: one more call, placed now).
 */
export async function writeDecisions(
  trx: Transaction<CalloutTables>,
  updates: Iterable<{ set: Partial<EventRow>; ids: string[] }>,
  attempts: readonly AttemptRow[],
  nowMs: number,
): Promise<void> {
  for (const { set, ids } of updates) {
    await trx.updateTable('callout_event').set(set).where('id', 'in', ids).execute();
  }
  if (attempts.length === 0) return;
  await trx
    .insertInto('callout_attempt')
    .values([...attempts])
    .execute();
  await trx
    .updateTable('callout_person')
    .set((eb) => ({ calls: eb('calls', '+', 1), latest_at: nowMs }))
    .where(
      'id',
      'in',
      attempts.map((a) => a.person_id),
    )
    .execute();
}

/** A write of a result group: a new event, a provider call id, a key, an outcome. */
export type GroupWrite =
  | { kind: 'insert'; event: EventRow; people: PersonRow[] }
  | { kind: 'placed'; attemptId: string; providerCallId: string }
  | { kind: 'digit'; attemptId: string; digit: string }
  | { kind: 'outcome'; attemptId: string; outcome: AttemptOutcome };

/**
 * Writes one result group in ONE transaction: locks the events of its attempts (id order),
 * inserts the new events, sets provider call ids, keys, then outcomes.
 * @returns the attempts that took a key, and the ones that ended.
 */
export async function writeGroup(
  database: Database,
  writes: readonly GroupWrite[],
  nowMs: number,
): Promise<{ answered: AttemptRow[]; finished: AttemptRow[] }> {
  return calloutDb(database)
    .transaction()
    .execute(async (trx) => {
      await lockEventsOfAttempts(
        trx,
        database.dialect,
        writes.flatMap((w) => ('attemptId' in w ? [w.attemptId] : [])),
      );
      await insertEvents(
        trx,
        writes.filter((w) => w.kind === 'insert'),
      );
      await setProviderCallIds(
        trx,
        writes.filter((w) => w.kind === 'placed'),
      );
      const answered = await applyDigits(
        trx,
        writes.filter((w) => w.kind === 'digit'),
        nowMs,
      );
      const finished = await applyOutcomes(
        trx,
        writes.filter((w) => w.kind === 'outcome'),
        nowMs,
      );
      return { answered, finished };
    });
}

function unique<T>(values: Iterable<T>): T[] {
  return [...new Set(values)];
}

/** Attempt ids by written value, keeping only the first write of each attempt. */
function firstPerAttempt<W extends { attemptId: string }, V>(
  writes: readonly W[],
  value: (write: W) => V,
): Map<V, string[]> {
  const seen = new Set<string>();
  const out = new Map<V, string[]>();
  for (const write of writes) {
    if (seen.has(write.attemptId)) continue;
    seen.add(write.attemptId);
    const ids = out.get(value(write));
    if (ids) ids.push(write.attemptId);
    else out.set(value(write), [write.attemptId]);
  }
  return out;
}

/**
 * Keys of a group, set-based: the first key of each attempt without one is kept (one UPDATE
 * per digit value), then the people's status (1 or 2, unless they already answered 1 or 2)
 * and the events' due time (now, if in progress).
 * @returns the attempts that took a key.
 */
export async function applyDigits(
  trx: Transaction<CalloutTables>,
  writes: ReadonlyArray<{ attemptId: string; digit: string }>,
  now: number,
): Promise<AttemptRow[]> {
  const rows: AttemptRow[] = [];
  for (const [digit, ids] of firstPerAttempt(writes, (w) => w.digit)) {
    rows.push(
      ...(await trx
        .updateTable('callout_attempt')
        .set({ digit })
        .where('id', 'in', ids)
        .where('digit', 'is', null)
        .returningAll()
        .execute()),
    );
  }
  for (const digit of unique(rows.map((r) => r.digit as string))) {
    await trx
      .updateTable('callout_person')
      .set({ status: statusOfDigit(digit) as number })
      .where('id', 'in', unique(rows.filter((r) => r.digit === digit).map((r) => r.person_id)))
      .where((eb) => eb.or([eb('status', 'is', null), eb('status', '=', PERSON_STATUS.noAnswer)]))
      .execute();
  }
  await wakeEvents(trx, rows, now);
  return rows;
}

/**
 * Outcomes of a group, set-based: attempts not yet `done` become `done` with their outcome
 * (one UPDATE per outcome value; the first report of an attempt wins), people without a key
 * get status 3 (no answer) unless they have one, and the events are due now.
 * @returns the attempts that ended.
 */
export async function applyOutcomes(
  trx: Transaction<CalloutTables>,
  writes: ReadonlyArray<{ attemptId: string; outcome: AttemptOutcome }>,
  now: number,
): Promise<AttemptRow[]> {
  const rows: AttemptRow[] = [];
  for (const [outcome, ids] of firstPerAttempt(writes, (w) => w.outcome)) {
    rows.push(
      ...(await trx
        .updateTable('callout_attempt')
        .set({ state: 'done', outcome, ended_at: now, lease_until: null, lease_owner: null })
        .where('id', 'in', ids)
        .where('state', '!=', 'done')
        .returningAll()
        .execute()),
    );
  }
  const unanswered = rows.filter((r) => statusOfDigit(r.digit) === undefined);
  if (unanswered.length > 0) {
    await trx
      .updateTable('callout_person')
      .set({ status: PERSON_STATUS.noAnswer })
      .where('id', 'in', unique(unanswered.map((r) => r.person_id)))
      .where('status', 'is', null)
      .execute();
  }
  await wakeEvents(trx, rows, now);
  return rows;
}

/** Sets `due_at = now` on the in-progress events of these attempts. */
async function wakeEvents(
  trx: Transaction<CalloutTables>,
  rows: readonly AttemptRow[],
  now: number,
): Promise<void> {
  if (rows.length === 0) return;
  await trx
    .updateTable('callout_event')
    .set({ due_at: now })
    .where('id', 'in', unique(rows.map((r) => r.event_id)))
    .where('status', '=', EVENT_STATUS.inProgress)
    .execute();
}
