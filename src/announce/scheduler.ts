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
 * Durability: the database is the truth, timers are wake-up hints (the loop is the shared
 * `store/worker.ts`). A message is claimed with `claimDue` (a lease), moved to `playing`
 * (fenced on the lease) before anything is dialled, and finished with its outcome; the lease
 * is renewed while the message plays (however long it is). A `playing` row whose lease ran
 * out (its process died) is marked failed (`interrupted`) by the next round of any worker,
 * never replayed: no message is played twice, none is lost.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { keepLease, Worker } from '../store/worker.ts';
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
   * Lease of a claimed or playing message, in ms (default 60000), renewed every third of it
   * while the message plays; a message whose process died is failed (`interrupted`) once it
   * runs out.
   */
  leaseMs?: number;
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
  readonly #leaseMs: number;
  readonly #worker: Worker;
  /** The last reason given by `unavailable` (logged once per change). */
  #blocked: string | undefined;

  constructor(options: SchedulerOptions) {
    this.#o = options;
    this.#owner = options.owner ?? `announce-${process.pid}-${randomBytes(4).toString('hex')}`;
    this.#slotExtraMs = (options.ringTimeS + options.gapS) * 1000;
    this.#leaseMs = options.leaseMs ?? 60_000;
    this.#worker = new Worker({
      name: 'announce',
      intervalMs: options.pollMs ?? 1000,
      round: () => this.#round(),
      onError: (error) => this.#o.logger.error({ err: error }, 'announce: worker step failed'),
    });
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
    const { repository } = this.#o;
    return repository.withScheduleLock(async (trx) => {
      const { queued, current, floorMs } = await repository.scheduleInputs(
        trx,
        this.#slotExtraMs,
        this.#o.gapS * 1000,
        nowMs,
      );
      const schedule = computeSchedule(queued, this.#slotExtraMs, floorMs);
      const moves: [number, number][] = [];
      for (const [id, start] of schedule) {
        if (current.get(id) !== start) moves.push([id, start]);
      }
      await repository.moveStarts(trx, moves);
      return moves.length;
    });
  }

  /** Wakes the worker (after an add or delete): a hint, never lost during a round. */
  poke(): void {
    this.#worker.wake();
  }

  /**
   * Starts the worker: each round first marks rows left `playing` by a dead worker (lease
   * expired) as failed (`interrupted`), then claims one due message, plays it, finishes it.
   */
  async start(): Promise<void> {
    if (this.#worker.running) return;
    await this.#sweep();
    this.#worker.start();
  }

  /** Stops the worker after the message in progress (if any) is finished. */
  async stop(): Promise<void> {
    await this.#worker.stop();
  }

  /** Fails `playing` rows whose lease ran out (their worker died): never replayed. */
  async #sweep(): Promise<void> {
    for (const row of await this.#o.repository.failInterrupted()) {
      this.#o.logger.warn(
        { id: row.id },
        'announce: message interrupted by a restart, not replayed',
      );
      this.#o.onEvent?.('failed', row);
    }
  }

  async #round(): Promise<{ again?: boolean; nextInMs?: number }> {
    await this.#sweep();
    if (await this.tick()) return { again: true };
    const next = await this.#o.repository.nextDueAt().catch(() => undefined);
    if (next === undefined) return {};
    // Due already but not claimed (held, or leased by another worker): look again soon,
    // without spinning.
    const inMs = next - Date.now();
    return { nextInMs: inMs > 0 ? inMs : 50 };
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
      if (blocked !== this.#blocked && (await repository.countDue(nowMs)) > 0) {
        this.#o.logger.warn({ reason: blocked }, 'announce: due messages held, cannot be placed');
        this.#blocked = blocked;
      }
      return false;
    }
    if (this.#blocked !== undefined) {
      this.#o.logger.info('announce: held messages can be placed again');
      this.#blocked = undefined;
    }
    const leaseMs = this.#leaseMs;
    const message = await repository.claimNext(this.#owner, leaseMs, nowMs);
    if (!message) return false;
    const { id } = message;
    const leaseUntil = Date.now() + leaseMs;
    if (!(await repository.markPlaying(id, this.#owner, leaseUntil))) return true;
    let result: PlayResult;
    try {
      // The lease is renewed while the message plays: a long message is never taken for
      // the message of a dead process.
      result = await keepLease(
        repository.database,
        [id],
        {
          table: 'announce_message',
          owner: this.#owner,
          leaseMs,
          logger: this.#o.logger,
          onLost: () =>
            this.#o.logger.warn({ id }, 'announce: lease of a playing message lost (database?)'),
        },
        () => this.#o.play(message),
      );
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
