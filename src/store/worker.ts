/**
 * The one durable worker primitive of Switchboard (issue 13 §2), used by callout, announce
 * and jenkins:
 *
 * - {@link Worker}: a poll-and-wake loop. One round at a time; {@link Worker.wake} asks for a
 *   round as soon as possible (a hint after a write); the loop runs every `intervalMs` anyway
 *   (the database is the truth, timers are only hints). A wake-up that arrives while a round
 *   runs is never lost: another round follows at once. {@link Worker.stop} is graceful: no new
 *   round starts and it resolves once the running one has finished.
 * - {@link claimDue} (re-exported from db.ts): claims due rows with a lease, one statement
 *   (`FOR UPDATE SKIP LOCKED` on PostgreSQL).
 * - {@link keepLease}: renews the leases of claimed rows while long work runs (every third of
 *   the lease), so a second worker does not take a row whose worker is alive; a crashed
 *   worker stops renewing and its lease expires, and another worker takes the row.
 *
 * @module
 */
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from './db.ts';

export { type ClaimOptions, claimDue } from './db.ts';

/**
 * What one round reports: `again` = there is more work now (run another round at once);
 * `nextInMs` = the next known due time, in ms from now (the loop sleeps at most that long,
 * never longer than `intervalMs`). `undefined` = nothing more to do now.
 */
export type RoundResult = { again?: boolean; nextInMs?: number } | undefined;

/** Options of {@link Worker}. */
export interface WorkerOptions {
  /** Name in log lines (`callout`, `announce`, `jenkins`). */
  name: string;
  /** Longest sleep between two rounds, in ms. */
  intervalMs: number;
  /** One round: claim due work and do it. Errors go to `onError` (the loop goes on). */
  round: () => Promise<RoundResult>;
  /** Called with an error thrown by a round; default: logged once at error level. */
  onError?: (error: unknown) => void;
  logger?: Pick<Logger, 'error'>;
}

/** A poll-and-wake loop (see the module comment). */
export class Worker {
  readonly #o: WorkerOptions;
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;
  #again = false;
  #stopped = true;

  constructor(options: WorkerOptions) {
    this.#o = options;
  }

  /** True between {@link Worker.start} and {@link Worker.stop}. */
  get running(): boolean {
    return !this.#stopped;
  }

  /** True while a round runs. */
  get busy(): boolean {
    return this.#round !== undefined;
  }

  /** Starts the loop (idempotent): a first round at once. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.wake();
  }

  /**
   * Asks for a round as soon as possible (a hint; ignored when stopped). During a round, the
   * next round starts as soon as it ends.
   */
  wake(): void {
    if (this.#stopped) return;
    if (this.#round !== undefined) {
      this.#again = true;
      return;
    }
    this.#schedule(0);
  }

  /**
   * Stops the loop: no new round starts; resolves once the round in progress (if any) has
   * finished. Idempotent.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#round;
  }

  #schedule(ms: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#run(), Math.max(0, ms));
  }

  #run(): void {
    this.#timer = undefined;
    if (this.#stopped || this.#round !== undefined) return;
    let sleepMs = this.#o.intervalMs;
    this.#round = (async () => {
      do {
        this.#again = false;
        sleepMs = this.#o.intervalMs;
        try {
          const result = await this.#o.round();
          if (result?.again === true) this.#again = true;
          if (result?.nextInMs !== undefined) {
            sleepMs = Math.min(sleepMs, Math.max(0, result.nextInMs));
          }
        } catch (error) {
          if (this.#o.onError) this.#o.onError(error);
          else this.#o.logger?.error({ err: error }, `${this.#o.name}: worker round failed`);
        }
      } while (this.#again && !this.#stopped);
    })().finally(() => {
      this.#round = undefined;
      if (!this.#stopped) this.#schedule(sleepMs);
    });
  }
}

/** Options of {@link renewLeases} and {@link keepLease}. */
export interface LeaseOptions {
  /** Table of the rows (unqualified). */
  table: string;
  /** The lease owner (the claimer). */
  owner: string;
  /** Lease length from each renewal, in ms. */
  leaseMs: number;
  /** Primary key column (default `id`). */
  idColumn?: string;
  /** Lease expiry column, epoch ms (default `lease_until`). */
  leaseColumn?: string;
  /** Lease owner column (default `lease_owner`). */
  ownerColumn?: string;
}

/**
 * Extends the leases of `ids` held by `owner` to now + `leaseMs`, fenced on the owner (a
 * row another worker took is not touched).
 * @returns the ids still held.
 */
export async function renewLeases(
  database: Database,
  ids: readonly (string | number)[],
  options: LeaseOptions,
  nowMs = Date.now(),
): Promise<Array<string | number>> {
  if (ids.length === 0) return [];
  const table = sql.table(options.table);
  const id = sql.ref(options.idColumn ?? 'id');
  const lease = sql.ref(options.leaseColumn ?? 'lease_until');
  const owner = sql.ref(options.ownerColumn ?? 'lease_owner');
  const until = Math.trunc(nowMs) + Math.max(1, Math.trunc(options.leaseMs));
  const result = await sql<{ id: string | number }>`
    update ${table} set ${lease} = ${until}
    where ${id} in (${sql.join(ids.map((v) => sql`${v}`))}) and ${owner} = ${options.owner}
    returning ${id} as id`.execute(database.db as Kysely<unknown>);
  return result.rows.map((row) => row.id);
}

/** Options of {@link keepLease}. */
export interface KeepLeaseOptions extends LeaseOptions {
  /** Pause between renewals, in ms (default a third of `leaseMs`). */
  renewEveryMs?: number;
  /** Called once if a renewal finds a row no longer held (another worker took it). */
  onLost?: (id: string | number) => void;
  logger?: Pick<Logger, 'warn'>;
}

/**
 * Runs `work` while renewing the leases of `ids` (see {@link renewLeases}) every
 * `renewEveryMs`; renewal stops when `work` settles. A failed renewal (database unreachable)
 * is logged and retried at the next turn: the lease only runs out if renewals fail for a
 * whole lease.
 * @returns what `work` returns; rethrows what it throws.
 */
export async function keepLease<T>(
  database: Database,
  ids: readonly (string | number)[],
  options: KeepLeaseOptions,
  work: () => Promise<T>,
): Promise<T> {
  const everyMs = Math.max(1, options.renewEveryMs ?? Math.floor(options.leaseMs / 3));
  const held = new Set(ids.map(String));
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  let renewing: Promise<void> | undefined;
  const renew = async () => {
    try {
      const still = new Set((await renewLeases(database, [...ids], options)).map(String));
      for (const id of ids) {
        if (held.has(String(id)) && !still.has(String(id))) {
          held.delete(String(id));
          options.onLost?.(id);
        }
      }
    } catch (error) {
      options.logger?.warn(
        { err: error, table: options.table },
        'worker: lease renewal failed; retried',
      );
    }
  };
  const next = () => {
    timer = setTimeout(() => {
      renewing = renew().finally(() => {
        if (!done) next();
      });
    }, everyMs);
  };
  next();
  try {
    return await work();
  } finally {
    done = true;
    clearTimeout(timer);
    await renewing;
  }
}
