/**
 * (Over 500 lines on purpose: every query of the announce module lives here, the
 * scheduler's included, issue 13 §3, next to the table's migrations.)
 *
 * The announcements' table `announce_message`: every message, scheduled or done (history),
 * with its requested and effective start, its audio file and its outcome.
 *
 * Time columns are epoch ms (`src/store/db.ts` conventions). Two ids: `id`, the integer row
 * id used inside (`autoIncrementId`: claims, leases, schedule order), and `public_id`, the
 * opaque string Gong's API, call files and bus events show: a uuid4 for new messages, as Gong
 * (`server.py` `extract_message`); rows created before it existed got their integer id as a
 * string (migration `public_id`), so an id a client kept from then still resolves.
 * `due_at` is the *effective* start computed by `scheduler.ts` (`computeSchedule`);
 * `requested_at` is what the client asked for.
 *
 * States: `scheduled` → `playing` (claimed by a worker with a lease, AMI Originate under way)
 * → `played` | `failed`; `scheduled` → `spooled` (call-file playback: handed to Asterisk);
 * `scheduled` → `cancelled` (DELETE). `playing` rows whose lease expired (their worker renews
 * it during the call: the process died) become `failed` with outcome `interrupted`, swept by
 * every worker round: a message is played at most once.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import {
  autoIncrementId,
  autoIncrementType,
  claimDue,
  type Database,
  defineMigrations,
  type MigrationSet,
} from '../store/db.ts';

/** Bad input to the announce service (becomes a 400 in the API). `field` names the input. */
export class AnnounceInputError extends Error {
  readonly field: string;
  /** Machine code of the API's error body (`unsupported_audio_format`, `too_long`, ...). */
  readonly code: string;
  constructor(field: string, message: string, code = 'bad_request') {
    super(`${field}: ${message}`);
    this.name = 'AnnounceInputError';
    this.field = field;
    this.code = code;
  }
}

/**
 * The queue is full: `announce.maxPending` messages are already scheduled or playing
 * (becomes a 409 `too_many_pending` in the API). Nothing was stored.
 */
export class AnnounceQueueFullError extends Error {
  /** The limit (`announce.maxPending`). */
  readonly limit: number;
  constructor(limit: number) {
    super(`too many pending messages: at most ${limit} may be scheduled (announce.maxPending)`);
    this.name = 'AnnounceQueueFullError';
    this.limit = limit;
  }
}

/**
 * Messages cannot be placed right now (e.g. call-file playback without its spool directory):
 * becomes a 503 `playback_unavailable` in the API naming the problem. Nothing was stored.
 */
export class AnnounceUnavailableError extends Error {
  constructor(reason: string) {
    super(`announcements cannot be placed: ${reason}`);
    this.name = 'AnnounceUnavailableError';
  }
}

/** Every state a message goes through. */
export type MessageStatus = 'scheduled' | 'playing' | 'played' | 'failed' | 'spooled' | 'cancelled';

/** States of messages still to be played (GET /messages without `all`). */
export const PENDING_STATUSES: readonly MessageStatus[] = ['scheduled', 'playing'];

/** One row of `announce_message`. Times are epoch ms. */
export interface MessageRow {
  /** Row id (internal: claims, leases, order); never shown by the API. */
  id: number;
  /** The id Gong's API shows: a uuid4 (new rows), or the old integer id as a string. */
  public_id: string;
  /** Free text from the client (`description`), '' when none. */
  description: string;
  /** The validated extension the ringer is dialled at. */
  extension: string;
  /** `audio` (uploaded) or `tts` (synthesized). */
  kind: 'audio' | 'tts';
  /** The TTS text ('' for uploads). */
  text: string;
  /** The TTS language ('' for uploads). */
  language: string;
  /** Converted WAV (8 kHz mono 16-bit), absolute path. */
  audio_path: string;
  /** Its duration, leading silence included, in ms. */
  duration_ms: number;
  /** The start the client asked for (epoch ms). */
  requested_at: number;
  /** The effective start (epoch ms), recomputed by the scheduler; the claim's due column. */
  due_at: number;
  status: MessageStatus;
  /** `answered`, `busy`, `noanswer`, `congestion`, `failed`, `interrupted`, `callfile`, `deleted`, ... */
  outcome: string;
  /** Call attempts made. */
  attempts: number;
  /** Call file placed in the spool (call-file playback), '' otherwise. */
  callfile_path: string;
  lease_until: number | null;
  lease_owner: string | null;
  created_at: number;
  /** When the message reached a final state. */
  finished_at: number | null;
}

/** The Kysely table map of this module. */
export interface AnnounceTables {
  announce_message: MessageRow;
}

/** The migrations of the announce module (table `announce_message`). */
export const announceMigrations: MigrationSet = defineMigrations('announce', [
  {
    name: 'create_message',
    async up(db, { dialect }) {
      await db.schema
        .createTable('announce_message')
        .addColumn('id', autoIncrementType(dialect), autoIncrementId(dialect))
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('extension', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('text', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('language', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('audio_path', 'text', (c) => c.notNull())
        .addColumn('duration_ms', 'bigint', (c) => c.notNull())
        .addColumn('requested_at', 'bigint', (c) => c.notNull())
        .addColumn('due_at', 'bigint', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('callfile_path', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('lease_until', 'bigint')
        .addColumn('lease_owner', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('finished_at', 'bigint')
        .execute();
      await db.schema
        .createIndex('announce_message_status_due')
        .on('announce_message')
        .columns(['status', 'due_at'])
        .execute();
    },
  },
  {
    // Gong's ids are strings (uuid4); rows of existing databases keep their integer id as
    // a string, so DELETE /messages/<old id> still finds them.
    name: 'public_id',
    async up(db) {
      await db.schema
        .alterTable('announce_message')
        .addColumn('public_id', 'text', (c) => c.notNull().defaultTo(''))
        .execute();
      await sql`update announce_message set public_id = cast(id as text)`.execute(db);
      await db.schema
        .createIndex('announce_message_public_id')
        .unique()
        .on('announce_message')
        .column('public_id')
        .execute();
    },
  },
]);

/** What {@link MessageRepository.insert} needs. */
export type NewMessage = Pick<
  MessageRow,
  | 'description'
  | 'extension'
  | 'kind'
  | 'text'
  | 'language'
  | 'audio_path'
  | 'duration_ms'
  | 'requested_at'
>;

/** Data access of the announce module (only this module touches `announce_message`). */
export class MessageRepository {
  readonly database: Database;
  readonly db: Kysely<AnnounceTables>;

  constructor(database: Database) {
    this.database = database;
    this.db = database.db as Kysely<AnnounceTables>;
  }

  /** Inserts a `scheduled` message (`due_at` = requested start until the next recompute). */
  async insert(message: NewMessage, nowMs = Date.now()): Promise<MessageRow> {
    return insertScheduled(this.db, message, nowMs);
  }

  /** How many messages are pending (`scheduled` or `playing`). */
  async countPending(db: Kysely<AnnounceTables> = this.db): Promise<number> {
    const row = await db
      .selectFrom('announce_message')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', 'in', [...PENDING_STATUSES])
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /**
   * Inserts a `scheduled` message unless `maxPending` messages are already pending; the
   * count and the insert run in one transaction under the schedule lock, so concurrent adds
   * (several processes included) never exceed the limit.
   *
   * @throws {AnnounceQueueFullError} the queue is full (nothing inserted).
   */
  async insertIfRoom(
    message: NewMessage,
    maxPending: number,
    nowMs = Date.now(),
  ): Promise<MessageRow> {
    return this.withScheduleLock(async (trx) => {
      // SQLite: take the write lock first, so two processes cannot both count then insert.
      if (this.database.dialect !== 'postgres') {
        await sql`update announce_message set id = id where id = -1`.execute(trx);
      }
      if ((await this.countPending(trx)) >= maxPending) {
        throw new AnnounceQueueFullError(maxPending);
      }
      return insertScheduled(trx, message, nowMs);
    });
  }

  /** One message by row id, or undefined. */
  async get(id: number): Promise<MessageRow | undefined> {
    const row = await this.db
      .selectFrom('announce_message')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? normalize(row) : undefined;
  }

  /** One message by the id the API shows (`public_id`, compared exactly), or undefined. */
  async find(publicId: string): Promise<MessageRow | undefined> {
    const row = await this.db
      .selectFrom('announce_message')
      .selectAll()
      .where('public_id', '=', publicId)
      .executeTakeFirst();
    return row ? normalize(row) : undefined;
  }

  /** Messages in `statuses` (all when omitted), by effective start then id. */
  async list(statuses?: readonly MessageStatus[]): Promise<MessageRow[]> {
    let query = this.db.selectFrom('announce_message').selectAll();
    if (statuses) query = query.where('status', 'in', [...statuses]);
    const rows = await query.orderBy('due_at').orderBy('id').execute();
    return rows.map(normalize);
  }

  /**
   * Cancels a message still `scheduled` (not claimed by a worker).
   * @param publicId the id the API shows (`public_id`).
   * @returns the cancelled row, or undefined when it is unknown or no longer scheduled.
   */
  async cancel(publicId: string, nowMs = Date.now()): Promise<MessageRow | undefined> {
    const row = await this.db
      .updateTable('announce_message')
      .set({ status: 'cancelled', outcome: 'deleted', finished_at: nowMs })
      .where('public_id', '=', publicId)
      .where('status', '=', 'scheduled')
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<=', nowMs)]))
      .returningAll()
      .executeTakeFirst();
    return row ? normalize(row) : undefined;
  }

  /**
   * Moves a claimed row to `playing` (fenced: only while `owner` holds the lease).
   * @returns false when the lease was lost.
   */
  async markPlaying(id: number, owner: string, leaseUntil: number, nowMs = Date.now()) {
    const result = await this.db
      .updateTable('announce_message')
      .set((eb) => ({
        status: 'playing',
        attempts: eb('attempts', '+', 1),
        lease_until: leaseUntil,
      }))
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .where('lease_until', '>', nowMs)
      .where('status', '=', 'scheduled')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Finishes a claimed row (fenced on the owner; the lease may have expired meanwhile: the
   * owner still holds the row since nobody else claims `playing` rows).
   */
  async finish(
    id: number,
    owner: string,
    status: MessageStatus,
    outcome: string,
    extra: { callfile_path?: string } = {},
    nowMs = Date.now(),
  ): Promise<MessageRow | undefined> {
    const row = await this.db
      .updateTable('announce_message')
      .set({ status, outcome, finished_at: nowMs, lease_until: null, ...extra })
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .returningAll()
      .executeTakeFirst();
    return row ? normalize(row) : undefined;
  }

  /** Puts a played-but-unanswered row back in the queue for a retry at `requestedAt`. */
  async requeue(id: number, owner: string, requestedAt: number, outcome: string) {
    await this.db
      .updateTable('announce_message')
      .set({
        status: 'scheduled',
        outcome,
        requested_at: requestedAt,
        due_at: requestedAt,
        lease_until: null,
        lease_owner: null,
      })
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .execute();
  }

  /**
   * Gives a claimed row back to the queue as it was (`scheduled`, the attempt not counted),
   * when it could not be handed over at all (the call-file spool vanished meanwhile).
   */
  async unclaim(id: number, owner: string): Promise<void> {
    await this.db
      .updateTable('announce_message')
      .set((eb) => ({
        status: 'scheduled',
        attempts: eb('attempts', '-', 1),
        lease_until: null,
        lease_owner: null,
      }))
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .where('status', '=', 'playing')
      .execute();
  }

  /**
   * Marks `playing` rows whose lease expired before `nowMs` as `failed`/`interrupted` (their
   * worker died mid-call: they are never played again).
   * @returns the rows changed.
   */
  async failInterrupted(nowMs = Date.now()): Promise<MessageRow[]> {
    const rows = await this.db
      .updateTable('announce_message')
      .set({ status: 'failed', outcome: 'interrupted', finished_at: nowMs, lease_until: null })
      .where('status', '=', 'playing')
      .where('lease_until', '<=', nowMs)
      .returningAll()
      .execute();
    return rows.map(normalize);
  }

  /**
   * What the schedule rule needs, read in `trx` (under the schedule lock): the messages still
   * to be played, the ringer's floor (busy until then: a message playing or claimed holds it
   * for its slot; the last finished call until its end + `gapMs`; a call file still in
   * Asterisk's hands for its whole slot) and the current effective starts.
   * @param slotExtraMs ring time + gap, in ms.
   */
  async scheduleInputs(
    trx: Kysely<AnnounceTables>,
    slotExtraMs: number,
    gapMs: number,
    nowMs: number,
  ): Promise<{
    queued: Array<{ id: number; requestedAt: number; durationMs: number }>;
    current: Map<number, number>;
    floorMs: number;
  }> {
    const rows = await trx
      .selectFrom('announce_message')
      .select(['id', 'requested_at', 'due_at', 'duration_ms', 'status', 'lease_until'])
      .where('status', 'in', ['scheduled', 'playing'])
      .execute();
    let floor = Number.NEGATIVE_INFINITY;
    const queued: Array<{ id: number; requestedAt: number; durationMs: number }> = [];
    const current = new Map<number, number>();
    for (const row of rows) {
      const leased = row.lease_until !== null && Number(row.lease_until) > nowMs;
      if (row.status === 'playing' || leased) {
        floor = Math.max(floor, Number(row.due_at) + Number(row.duration_ms) + slotExtraMs);
      } else {
        const id = Number(row.id);
        current.set(id, Number(row.due_at));
        queued.push({
          id,
          requestedAt: Number(row.requested_at),
          durationMs: Number(row.duration_ms),
        });
      }
    }
    // The ringer was last used: a finished call frees it after the gap; a call file still
    // in Asterisk's hands holds it for its whole slot.
    const last = await trx
      .selectFrom('announce_message')
      .select((eb) => [eb.fn.max('finished_at').as('finished')])
      .where('status', 'in', ['played', 'failed'])
      .executeTakeFirst();
    if (last?.finished !== null && last?.finished !== undefined) {
      floor = Math.max(floor, Number(last.finished) + gapMs);
    }
    // A call file placed late (the spool was missing, or after a restart) rings from when
    // it was placed (finished_at), not from its overdue start.
    const spooled = await trx
      .selectFrom('announce_message')
      .select((eb) =>
        eb.fn
          .max(
            sql<number>`(case when finished_at > due_at then finished_at else due_at end) + duration_ms`,
          )
          .as('end'),
      )
      .where('status', '=', 'spooled')
      .executeTakeFirst();
    if (spooled?.end !== null && spooled?.end !== undefined) {
      floor = Math.max(floor, Number(spooled.end) + slotExtraMs);
    }
    return { queued, current, floorMs: floor };
  }

  /**
   * Writes new effective starts (`[id, start]`) of `scheduled` messages in `trx`: one
   * UPDATE ... FROM for all of them (SQLite >= 3.33 and PostgreSQL), the new starts passed as
   * one parameter (a JSON array on SQLite, two arrays on PostgreSQL): a message added in
   * front of 10,000 queued ones rewrites them all in one statement, not 10,000.
   */
  async moveStarts(
    trx: Kysely<AnnounceTables>,
    moves: ReadonlyArray<readonly [number, number]>,
  ): Promise<void> {
    if (moves.length === 0) return;
    const from =
      this.database.dialect === 'postgres'
        ? sql`unnest(${moves.map(([id]) => id)}::bigint[], ${moves.map(([, start]) => start)}::bigint[]) as v(id, start)`
        : sql`(select value ->> 0 as id, value ->> 1 as start from json_each(${JSON.stringify(moves)})) as v`;
    await sql`update announce_message set due_at = v.start from ${from}
      where announce_message.id = v.id and coalesce(announce_message.status, '') = 'scheduled'`.execute(
      trx,
    );
  }

  /** The earliest effective start of a `scheduled` message (epoch ms), or undefined. */
  async nextDueAt(): Promise<number | undefined> {
    const next = await this.db
      .selectFrom('announce_message')
      .select((eb) => eb.fn.min('due_at').as('next'))
      .where('status', '=', 'scheduled')
      .executeTakeFirst();
    return next?.next === null || next?.next === undefined ? undefined : Number(next.next);
  }

  /** How many `scheduled` messages are due at `nowMs`. */
  async countDue(nowMs: number): Promise<number> {
    const due = await this.db
      .selectFrom('announce_message')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'scheduled')
      .where('due_at', '<=', nowMs)
      .executeTakeFirst();
    return Number(due?.n ?? 0);
  }

  /**
   * Claims the next due `scheduled` message for `owner` with a lease of `leaseMs`
   * (`claimDue`), or undefined.
   */
  async claimNext(owner: string, leaseMs: number, nowMs: number): Promise<MessageRow | undefined> {
    const [claimed] = await claimDue<MessageRow>(this.database, {
      table: 'announce_message',
      owner,
      leaseMs,
      limit: 1,
      nowMs,
      where: sql`status = 'scheduled'`,
    });
    return claimed ? normalize(claimed) : undefined;
  }

  /**
   * Runs `fn` in a transaction that holds the schedule lock (PostgreSQL advisory lock; SQLite
   * takes its write lock at the first write), so two processes never recompute at once.
   */
  async withScheduleLock<T>(fn: (trx: Kysely<AnnounceTables>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(async (trx) => {
      if (this.database.dialect === 'postgres') {
        await sql`select pg_advisory_xact_lock(745320001)`.execute(trx);
      }
      return fn(trx);
    });
  }
}

/** Inserts `message` as `scheduled` through `db` (a transaction or the pool). */
async function insertScheduled(
  db: Kysely<AnnounceTables>,
  message: NewMessage,
  nowMs: number,
): Promise<MessageRow> {
  const row = await db
    .insertInto('announce_message')
    .values({
      ...message,
      public_id: randomUUID(),
      due_at: message.requested_at,
      status: 'scheduled',
      outcome: '',
      attempts: 0,
      callfile_path: '',
      created_at: nowMs,
    } as never)
    .returningAll()
    .executeTakeFirstOrThrow();
  return normalize(row);
}

/** PostgreSQL returns bigint as number already (see db.ts); SQLite ints are numbers. */
function normalize(row: MessageRow): MessageRow {
  return { ...row, id: Number(row.id) };
}
