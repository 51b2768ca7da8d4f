/**
 * The grouped result writer of the callout module (group commit): new events, provider call
 * ids, keys and outcomes are queued and written in groups, one writer at a time: what arrives
 * while one group is written goes into the next transaction ({@link writeGroup}: a handful of
 * set-based statements per group instead of a transaction per result). A write's promise
 * resolves once its group is committed; the service acts on a result only then.
 *
 * While the database is unreachable ({@link DatabaseUnavailableError}), results are kept in
 * memory, in order (at most `pendingResultsMax`), and written once it answers again (retried
 * with backoff up to {@link RESULT_RETRY_MAX_MS}); new events are not kept: they fail and the
 * API answers 503. A result the database refuses (a constraint violation) is dropped, logged
 * and counted.
 *
 * @module
 */
import type { Logger } from 'pino';
import { type Database, DatabaseUnavailableError, isUnavailableError } from '../store/db.ts';
import type { CalloutMetrics } from './metrics.ts';
import { type GroupWrite, writeGroup } from './repository.ts';
import type { AttemptRow } from './tables.ts';

export type { GroupWrite } from './repository.ts';

/** Longest pause between two tries to write kept results while the database is unreachable, in ms. */
export const RESULT_RETRY_MAX_MS = 2_000;

/** What one committed group changed. */
export interface GroupChanges {
  /** Attempts that took a key. */
  answered: AttemptRow[];
  /** Attempts that ended. */
  finished: AttemptRow[];
}

/** Options of {@link ResultWriter}. */
export interface ResultWriterOptions {
  database: Database;
  /** Results kept in memory while they cannot be written (default 100000). */
  pendingResultsMax?: number;
  logger?: Logger;
  metrics?: CalloutMetrics;
  /** Called after groups were committed, with what they changed. */
  onCommitted: (changes: readonly GroupChanges[]) => void;
  /** Called when the database answers again after an outage and every kept result is written. */
  onReachable: () => void;
}

/** A queued write and the promise waiting for its group's commit. */
interface GroupEntry {
  write: GroupWrite;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** The group-commit writer (see the module comment). */
export class ResultWriter {
  readonly #o: ResultWriterOptions;
  readonly #group: GroupEntry[] = [];
  #groupScheduled = false;
  /** Results (not new events) queued or being written: bounded by `pendingResultsMax`. */
  #pending = 0;
  /** Set while the database is unreachable and results wait for it. */
  #outage:
    | { sinceMs: number; reason: string; delayMs: number; timer: NodeJS.Timeout | undefined }
    | undefined;
  /** Results dropped because the queue was full, during the current outage (logged at its end). */
  #droppedFull = 0;
  /** Set by {@link ResultWriter.close}: no more retries of kept results. */
  #closed = false;

  constructor(options: ResultWriterOptions) {
    this.#o = options;
  }

  /** True while results wait for an unreachable database. */
  get inOutage(): boolean {
    return this.#outage !== undefined;
  }

  /** Results queued or being written. */
  get pending(): number {
    return this.#pending;
  }

  /**
   * Queues a write for the next group; resolves once its group is committed (a result: or
   * once it was dropped). A new event rejects with the database's error.
   */
  write(write: GroupWrite): Promise<void> {
    if (write.kind !== 'insert') {
      const max = this.#o.pendingResultsMax ?? 100_000;
      if (this.#pending >= max) {
        this.#drop(write, 'queue_full');
        return Promise.resolve();
      }
      this.#pending++;
      this.#o.metrics?.resultsPending.set(this.#pending);
    }
    return new Promise<void>((resolve, reject) => {
      this.#group.push({ write, resolve, reject });
      this.#schedule();
    });
  }

  /** Waits until every queued result is written, or until `deadlineMs` (epoch ms). */
  async drain(deadlineMs: number): Promise<void> {
    while (this.#pending > 0 && Date.now() < deadlineMs) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** No more retries; logs the results still kept (lost: their attempts become unknown). */
  close(): void {
    this.#closed = true;
    if (this.#outage?.timer !== undefined) clearTimeout(this.#outage.timer);
    if (this.#pending > 0) {
      this.#o.logger?.error(
        { pending: this.#pending, reason: this.#outage?.reason },
        'callout: stopped with call results not written (database unreachable); their attempts count as unknown after their lease',
      );
    }
  }

  /** A result leaves the queue (written or dropped). */
  #settle(entry: GroupEntry): void {
    if (entry.write.kind === 'insert') return;
    this.#pending--;
    this.#o.metrics?.resultsPending.set(this.#pending);
  }

  /** Counts and logs a result that will never be written. */
  #drop(write: GroupWrite, reason: 'queue_full' | 'rejected', error?: unknown): void {
    this.#o.metrics?.resultsDropped.inc({ reason });
    const detail = 'attemptId' in write ? { attempt: write.attemptId, kind: write.kind } : {};
    if (reason === 'rejected') {
      this.#o.logger?.error(
        { ...detail, err: error },
        'callout: the database refused a call result; dropped',
      );
      return;
    }
    // queue full: the first of an outage, then a count when it ends
    if (this.#droppedFull++ === 0) {
      this.#o.logger?.error(
        { ...detail, pendingResultsMax: this.#o.pendingResultsMax ?? 100_000 },
        'callout: too many call results waiting for the database; dropping new ones',
      );
    }
  }

  #schedule(): void {
    if (this.#groupScheduled || this.#group.length === 0) return;
    // during an outage, the retry timer runs the next group
    if (this.#outage?.timer !== undefined) return;
    this.#groupScheduled = true;
    setImmediate(() => {
      void this.#flush().finally(() => {
        this.#groupScheduled = false;
        this.#schedule();
      });
    });
  }

  /**
   * Writes one group (every queued new event and at most 500 other writes, in order) in one
   * transaction, then reports what changed. If the transaction fails because the database is
   * unreachable, the group's new events fail (the API answers 503) and its results go back
   * to the head of the queue (see {@link ResultWriter.#unreachable}). If it fails otherwise,
   * every write of the group is retried in a transaction of its own, so that one bad write
   * fails alone: a new event is refused, a result is dropped, logged and counted.
   */
  async #flush(): Promise<void> {
    // New events (API requests waiting) all go into this group, whatever their place in the
    // queue; other writes up to 500 per group, in order.
    const group: GroupEntry[] = [];
    const rest: GroupEntry[] = [];
    for (const entry of this.#group) {
      if (entry.write.kind === 'insert' || group.length < 500) group.push(entry);
      else rest.push(entry);
    }
    this.#group.splice(0, this.#group.length, ...rest);
    const run = (writes: GroupWrite[]) => writeGroup(this.#o.database, writes, Date.now());
    const changes: GroupChanges[] = [];
    try {
      changes.push(await run(group.map((e) => e.write)));
      for (const entry of group) {
        this.#settle(entry);
        entry.resolve();
      }
      this.#reachable();
    } catch (error) {
      if (isUnavailableError(error)) {
        this.#unreachable(group, error);
      } else {
        let reachable = true;
        for (const [i, entry] of group.entries()) {
          try {
            changes.push(await run([entry.write]));
            this.#settle(entry);
            entry.resolve();
          } catch (single) {
            if (isUnavailableError(single)) {
              this.#unreachable(group.slice(i), single);
              reachable = false;
              break;
            }
            if (entry.write.kind === 'insert') entry.reject(single);
            else {
              this.#settle(entry);
              this.#drop(entry.write, 'rejected', single);
              entry.resolve();
            }
          }
        }
        if (reachable) this.#reachable();
      }
    }
    if (changes.length === 0) return;
    this.#o.onCommitted(changes);
  }

  /**
   * The database could not be reached for `entries` (in queue order): new events fail with
   * the error (their API requests answer 503); results go back to the head of the queue, in
   * order, and a retry is scheduled with backoff (100 ms doubling to
   * {@link RESULT_RETRY_MAX_MS}). Logged once per outage.
   */
  #unreachable(entries: readonly GroupEntry[], error: unknown): void {
    const kept: GroupEntry[] = [];
    for (const entry of entries) {
      if (entry.write.kind === 'insert') entry.reject(error);
      else kept.push(entry);
    }
    const reason = error instanceof DatabaseUnavailableError ? error.reason : 'unreachable';
    if (kept.length === 0 && this.#outage === undefined) return;
    this.#group.unshift(...kept);
    if (this.#outage === undefined) {
      this.#outage = { sinceMs: Date.now(), reason, delayMs: 100, timer: undefined };
      this.#o.logger?.warn(
        { reason, pending: this.#pending },
        'callout: database unreachable; call results are kept in memory and written when it is back',
      );
    } else {
      this.#outage.delayMs = Math.min(RESULT_RETRY_MAX_MS, this.#outage.delayMs * 2);
    }
    const outage = this.#outage;
    if (this.#closed) return;
    outage.timer = setTimeout(() => {
      outage.timer = undefined;
      // nothing kept any more (e.g. only new events failed): the outage is over for the
      // results, the worker finds out about the database itself
      if (!this.#group.some((e) => e.write.kind !== 'insert')) this.#reachable();
      this.#schedule();
    }, outage.delayMs);
  }

  /** A group was written: ends an outage (logged with what it cost) and reports it. */
  #reachable(): void {
    const outage = this.#outage;
    if (outage === undefined) return;
    if (this.#group.some((e) => e.write.kind !== 'insert')) {
      // more kept results to write before the worker may run again
      outage.delayMs = 100;
      return;
    }
    this.#outage = undefined;
    this.#o.logger?.info(
      {
        outageMs: Date.now() - outage.sinceMs,
        reason: outage.reason,
        droppedQueueFull: this.#droppedFull,
      },
      'callout: database reachable again; kept call results written',
    );
    this.#droppedFull = 0;
    this.#o.onReachable();
  }
}
