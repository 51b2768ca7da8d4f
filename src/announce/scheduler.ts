/**
 * The announcement schedule: the pure rule ({@link computeSchedule}), its application to the
 * database ({@link AnnounceScheduler.recompute}) and the worker that claims due messages
 * with leases and plays them one at a time ({@link AnnounceScheduler.start}).
 *
 * The rule: messages never overlap on the ringer. Ordered by requested start (then id),
 * each starts at `max(requested start, previous start + previous slot)`, where a slot is
 * `duration (leading silence included) + ringTimeS + gapS`. A message being played (or
 * claimed) holds the ringer for its slot; the last finished call holds it until its end +
 * `gapS`; the last call file handed to Asterisk holds it for its whole slot. Gong instead pushed an overlapping message to the
 * previous one's end + 1 s, in directory-listing order (a bug: not by time).
 *
 * Durability: the database is the truth, timers are wake-up hints. A message is claimed with
 * `claimDue` (a lease), moved to `playing` (fenced on the lease) before anything is dialled,
 * and finished with its outcome; a `playing` row found after a crash is marked failed
 * (`interrupted`), never replayed: no message is played twice, none is lost.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import { claimDue } from '../store/db.ts';
import type { PlayResult } from './playback.ts';
import type { MessageRepository, MessageRow } from './repository.ts';

/** One queued message as the rule sees it. Times in epoch ms. */
export interface ScheduleItem {
  id: number;
  /** Requested start, epoch ms. */
  requestedAt: number;
  /** Audio duration, ms. */
  durationMs: number;
}

/**
 * The effective starts of `items` (pure, O(n log n)).
 *
 * @param items queued messages (any order).
 * @param slotExtraMs added after each message's duration: ring time + gap, in ms.
 * @param floorMs the ringer is busy until then (a message being played); default none.
 * @returns effective start (epoch ms) by id, in schedule order.
 */
export function computeSchedule(
  items: readonly ScheduleItem[],
  slotExtraMs: number,
  floorMs = Number.NEGATIVE_INFINITY,
): Map<number, number> {
  const sorted = [...items].sort((a, b) => a.requestedAt - b.requestedAt || a.id - b.id);
  const out = new Map<number, number>();
  let free = floorMs;
  for (const item of sorted) {
    const start = Math.max(item.requestedAt, free);
    out.set(item.id, start);
    free = start + item.durationMs + slotExtraMs;
  }
  return out;
}

/** What the scheduler publishes (`announce.<kind>` on the bus). */
export type AnnounceEventKind = 'scheduled' | 'played' | 'failed' | 'spooled' | 'cancelled';

/** Options of {@link AnnounceScheduler}. */
export interface SchedulerOptions {
  repository: MessageRepository;
  /** Plays one message (AMI Originate or call file, `playback.ts`). */
  play: (message: MessageRow) => Promise<PlayResult>;
  /** Ring time counted in each slot, s. */
  ringTimeS: number;
  /** Pause between two messages, s. */
  gapS: number;
  /** Retries after an unanswered Originate (busy, no answer, ...). */
  maxRetries: number;
  /** Delay before a retry, s. */
  retryTimeS: number;
  logger: Logger;
  /** Called after each state change (publishing on the bus). */
  onEvent?: (kind: AnnounceEventKind, message: MessageRow) => void;
  /** Longest sleep between two looks at the queue, ms (a hint; default 1000). */
  pollMs?: number;
  /** This worker's lease owner id (default random). */
  owner?: string;
  /**
   * Why messages cannot be played now (e.g. the call-file spool is missing), or undefined.
   * While it gives a reason, the worker claims nothing: due messages stay queued, in order.
   */
  unavailable?: () => Promise<string | undefined>;
}

/** The worker plus the schedule operations used by the API. */
export class AnnounceScheduler {
  readonly #o: SchedulerOptions;
  readonly #owner: string;
  readonly #slotExtraMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  /** The last reason given by `unavailable` (logged once per change). */
  #blocked: string | undefined;

  constructor(options: SchedulerOptions) {
    this.#o = options;
    this.#owner = options.owner ?? `announce-${process.pid}-${randomBytes(4).toString('hex')}`;
    this.#slotExtraMs = (options.ringTimeS + options.gapS) * 1000;
  }

  /** Ring time + gap in ms, added after each message's duration. */
  get slotExtraMs(): number {
    return this.#slotExtraMs;
  }

  /**
   * Recomputes every queued message's effective start and writes the ones that changed, in
   * one transaction under the schedule lock.
   * @returns how many rows changed.
   */
  async recompute(nowMs = Date.now()): Promise<number> {
    return this.#o.repository.withScheduleLock(async (trx) => {
      const rows = await trx
        .selectFrom('announce_message')
        .select(['id', 'requested_at', 'due_at', 'duration_ms', 'status', 'lease_until'])
        .where('status', 'in', ['scheduled', 'playing'])
        .execute();
      let floor = Number.NEGATIVE_INFINITY;
      const queued: ScheduleItem[] = [];
      const current = new Map<number, number>();
      for (const row of rows) {
        const leased = row.lease_until !== null && Number(row.lease_until) > nowMs;
        if (row.status === 'playing' || leased) {
          floor = Math.max(floor, Number(row.due_at) + Number(row.duration_ms) + this.#slotExtraMs);
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
        floor = Math.max(floor, Number(last.finished) + this.#o.gapS * 1000);
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
        floor = Math.max(floor, Number(spooled.end) + this.#slotExtraMs);
      }
      const schedule = computeSchedule(queued, this.#slotExtraMs, floor);
      const moves: [number, number][] = [];
      for (const [id, start] of schedule) {
        if (current.get(id) !== start) moves.push([id, start]);
      }
      // One UPDATE ... FROM for all of them (SQLite >= 3.33 and PostgreSQL), the new starts
      // passed as one parameter (a JSON array on SQLite, two arrays on PostgreSQL): a message
      // added in front of 10,000 queued ones rewrites them all in one statement, not 10,000.
      if (moves.length > 0) {
        const from =
          this.#o.repository.database.dialect === 'postgres'
            ? sql`unnest(${moves.map(([id]) => id)}::bigint[], ${moves.map(([, start]) => start)}::bigint[]) as v(id, start)`
            : sql`(select value ->> 0 as id, value ->> 1 as start from json_each(${JSON.stringify(moves)})) as v`;
        await sql`update announce_message set due_at = v.start from ${from}
          where announce_message.id = v.id and coalesce(announce_message.status, '') = 'scheduled'`.execute(
          trx,
        );
      }
      return moves.length;
    });
  }

  /** Wakes the worker (after an add or delete). */
  poke(): void {
    this.#wake?.();
  }

  /**
   * Starts the worker: first marks rows left `playing` by a dead worker as failed
   * (`interrupted`), then loops: claim one due message, play it, finish it.
   */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    for (const row of await this.#o.repository.failInterrupted()) {
      this.#o.logger.warn(
        { id: row.id },
        'announce: message interrupted by a restart, not replayed',
      );
      this.#o.onEvent?.('failed', row);
    }
    this.#loop = this.#run();
  }

  /** Stops the worker after the message in progress (if any) is finished. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    while (this.#running) {
      let worked = false;
      try {
        worked = await this.tick();
      } catch (error) {
        this.#o.logger.error({ err: error }, 'announce: worker step failed');
      }
      if (!this.#running) break;
      if (!worked) await this.#sleep(await this.#nextWaitMs());
    }
  }

  async #nextWaitMs(): Promise<number> {
    const poll = this.#o.pollMs ?? 1000;
    try {
      const next = await this.#o.repository.db
        .selectFrom('announce_message')
        .select((eb) => eb.fn.min('due_at').as('next'))
        .where('status', '=', 'scheduled')
        .executeTakeFirst();
      if (next?.next === null || next?.next === undefined) return poll;
      return Math.max(0, Math.min(poll, Number(next.next) - Date.now()));
    } catch {
      return poll;
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#timer = setTimeout(resolve, ms);
      this.#wake = () => resolve();
    }).finally(() => {
      clearTimeout(this.#timer);
      this.#wake = undefined;
    });
  }

  /**
   * One worker step: claims the next due message (if any) and plays it to the end.
   * @returns true when a message was handled.
   */
  async tick(nowMs = Date.now()): Promise<boolean> {
    const { repository } = this.#o;
    const blocked = await this.#o.unavailable?.();
    if (blocked !== undefined) {
      // Logged once per reason, and only when a due message is actually held (the reason
      // itself was logged at start).
      if (blocked !== this.#blocked) {
        const due = await repository.db
          .selectFrom('announce_message')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('status', '=', 'scheduled')
          .where('due_at', '<=', nowMs)
          .executeTakeFirst();
        if (Number(due?.n ?? 0) > 0) {
          this.#o.logger.warn({ reason: blocked }, 'announce: due messages held, cannot be placed');
          this.#blocked = blocked;
        }
      }
      return false;
    }
    if (this.#blocked !== undefined) {
      this.#o.logger.info('announce: held messages can be placed again');
      this.#blocked = undefined;
    }
    const leaseMs = 10 * 60_000;
    const [claimed] = await claimDue<MessageRow>(repository.database, {
      table: 'announce_message',
      owner: this.#owner,
      leaseMs,
      limit: 1,
      nowMs,
      where: sqlScheduled,
    });
    if (!claimed) return false;
    const id = Number(claimed.id);
    const message = { ...claimed, id };
    const leaseUntil = Date.now() + leaseMs;
    if (!(await repository.markPlaying(id, this.#owner, leaseUntil))) return true;
    let result: PlayResult;
    try {
      result = await this.#o.play(message);
    } catch (error) {
      const reason = await this.#o.unavailable?.().catch(() => undefined);
      if (reason !== undefined) {
        // Never handed over (the spool went away under us): queued again, held until back.
        this.#o.logger.warn({ id, reason }, 'announce: message not placed, queued again');
        await repository.unclaim(id, this.#owner);
        return true;
      }
      this.#o.logger.error({ err: error, id }, 'announce: playback failed');
      result = { status: 'failed', outcome: 'error' };
    }
    const attempts = message.attempts + 1;
    if (result.status === 'failed' && result.retry === true && attempts <= this.#o.maxRetries) {
      this.#o.logger.info({ id, outcome: result.outcome, attempts }, 'announce: retrying');
      await repository.requeue(
        id,
        this.#owner,
        Date.now() + this.#o.retryTimeS * 1000,
        result.outcome,
      );
      await this.recompute();
      return true;
    }
    const finished = await repository.finish(
      id,
      this.#owner,
      result.status,
      result.outcome,
      result.callfilePath ? { callfile_path: result.callfilePath } : {},
    );
    if (finished) {
      this.#o.logger.info(
        { id, status: finished.status, outcome: finished.outcome },
        'announce: done',
      );
      this.#o.onEvent?.(result.status as AnnounceEventKind, finished);
    }
    // The ringer is free again: later messages may move forward (their requested start).
    await this.recompute();
    return true;
  }
}

const sqlScheduled = sql`status = 'scheduled'`;
