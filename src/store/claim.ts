/**
 * Lease-based claiming of due rows across processes ({@link claimDue}). Re-exported by
 * `db.ts`.
 *
 * @module
 */
import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { Database } from './db.ts';

/** Options of {@link claimDue}. Column names default to the store conventions. */
export interface ClaimOptions {
  /** Table holding the work rows (unqualified; PostgreSQL uses the search_path). */
  table: string;
  /** Identifier of this worker (e.g. instance uuid + pid), written to `ownerColumn`. */
  owner: string;
  /** How long the claim lasts, in ms; after it, another worker may claim the row again. */
  leaseMs: number;
  /** Most rows claimed by one call. */
  limit: number;
  /** "Now" in epoch ms (default `Date.now()`); rows with `dueColumn <= nowMs` are due. */
  nowMs?: number;
  /** Primary key column (default `id`). */
  idColumn?: string;
  /** Epoch-ms column saying when the row is due (default `due_at`); NULL = never due. */
  dueColumn?: string;
  /** Epoch-ms column: the lease expiry (default `lease_until`); NULL = never leased. */
  leaseColumn?: string;
  /** Text column: who holds the lease (default `lease_owner`). */
  ownerColumn?: string;
  /** Extra condition on candidate rows, e.g. sql`state = 'pending'` (unqualified columns). */
  where?: RawBuilder<unknown>;
}

/**
 * Claims up to `limit` due rows for this worker and returns them (all columns, with the new
 * lease). A row is claimable when `due_at <= now` and its lease is free (`lease_until IS NULL`
 * or `lease_until <= now`); claiming sets `lease_until = now + leaseMs` and
 * `lease_owner = owner`. Oldest due first.
 *
 * One statement on both dialects, so two workers never both get a row:
 * - PostgreSQL: `UPDATE t SET ... WHERE id IN (SELECT id ... ORDER BY due_at LIMIT n
 *   FOR UPDATE SKIP LOCKED) RETURNING *`: concurrent claimers skip each other's rows instead
 *   of waiting.
 * - SQLite: the same `UPDATE ... RETURNING` without the locking clause: an UPDATE takes the
 *   database's single write lock before it reads (waiting up to `busy_timeout`), so claims are
 *   serialized.
 *
 * The worker then does the work and finishes the row with a *fenced* update that only applies
 * while it still holds the lease, e.g.
 * `UPDATE t SET state = 'done', lease_until = NULL WHERE id = ? AND lease_owner = ? AND
 * lease_until > now`; if it affects no row, the lease expired and another worker owns the row.
 * Pick `leaseMs` longer than the work takes; in-memory timers are only wake-up hints.
 *
 * @returns the claimed rows (possibly empty), typed by the caller.
 */
export async function claimDue<Row = Record<string, unknown>>(
  database: Database,
  options: ClaimOptions,
): Promise<Row[]> {
  const now = Math.trunc(options.nowMs ?? Date.now());
  const table = sql.table(options.table);
  const id = sql.ref(options.idColumn ?? 'id');
  const due = sql.ref(options.dueColumn ?? 'due_at');
  const lease = sql.ref(options.leaseColumn ?? 'lease_until');
  const owner = sql.ref(options.ownerColumn ?? 'lease_owner');
  const extra = options.where ? sql`and (${options.where})` : sql``;
  const lock = database.dialect === 'postgres' ? sql`for update skip locked` : sql``;
  const limit = Math.max(0, Math.trunc(options.limit));
  const until = now + Math.max(1, Math.trunc(options.leaseMs));
  const query = sql<Row>`
    update ${table} set ${lease} = ${until}, ${owner} = ${options.owner}
    where ${id} in (
      select ${id} from ${table}
      where ${due} <= ${now} and (${lease} is null or ${lease} <= ${now}) ${extra}
      order by ${due}, ${id}
      limit ${limit}
      ${lock}
    )
    returning *`;
  const result = await query.execute(database.db as Kysely<unknown>);
  return result.rows;
}
