/**
 * The store: one Kysely database for every module, SQLite (better-sqlite3) by default and
 * PostgreSQL (pg Pool) when configured, plus a migrations runner and lease-based row claiming.
 *
 * Conventions every module follows, so that the same code runs on both dialects:
 *
 * - **Time** is stored as integer epoch milliseconds (`bigint` columns; SQLite INTEGER) named
 *   `*_at` / `*_until` (e.g. `due_at`, `lease_until`). Never `timestamp` columns: the two
 *   dialects disagree on time zones and types. PostgreSQL `bigint` (int8) values are returned
 *   as JS numbers by this module's pool (safe below 2^53, i.e. for any epoch ms).
 * - **Ids** are text primary keys made by {@link newId} (time-ordered, unique across
 *   processes without coordination). Where a seed API needs an integer id (Gong's message id),
 *   use {@link autoIncrementId} in the migration.
 * - **Booleans** are `integer` 0/1 (SQLite has no boolean type).
 * - **Tables** are prefixed with the module name (`callout_event`, `announce_message`); a module
 *   never reads another module's tables.
 * - **Claiming work** across processes uses leases: see {@link claimDue}.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import SQLite from 'better-sqlite3';
import {
  type ColumnDefinitionBuilder,
  type DialectAdapter,
  Kysely,
  PostgresDialect,
  type RawBuilder,
  SqliteAdapter,
  type SqliteDatabase,
  SqliteDialect,
  sql,
} from 'kysely';
import {
  type Migration,
  type MigrationProvider,
  type MigrationResultSet,
  Migrator,
} from 'kysely/migration';
import pg from 'pg';

/** The two supported SQL dialects. */
export type Dialect = 'sqlite' | 'postgres';

/** Options of {@link openDatabase}. */
export interface OpenDatabaseOptions {
  /**
   * PostgreSQL only: schema used for every unqualified table (set as `search_path`, created if
   * missing). Tests use a unique schema per run; production leaves it unset (`public`).
   */
  schema?: string;
  /** PostgreSQL pool size (default 10). */
  poolSize?: number;
  /** SQLite: how long a writer waits for the lock, in ms (default 5000). */
  busyTimeoutMs?: number;
}

/** An open database: the Kysely instance, its dialect, and how to close it. */
export interface Database<DB = unknown> {
  /** The Kysely instance (typed by each module with its own table interfaces). */
  db: Kysely<DB>;
  /** Which dialect the URL selected. */
  dialect: Dialect;
  /** PostgreSQL schema in use (`search_path`), if one was given. */
  schema?: string;
  /** SQLite file (absolute path, or `:memory:`); undefined on PostgreSQL. */
  file?: string;
  /** Closes the pool / file. */
  close(): Promise<void>;
}

/**
 * Which dialect a `database.url` selects: `postgres://` / `postgresql://` → postgres;
 * a file path, `sqlite:PATH`, `sqlite://PATH` or `:memory:` → sqlite.
 */
export function dialectOf(url: string): Dialect {
  return /^postgres(ql)?:\/\//i.test(url) ? 'postgres' : 'sqlite';
}

function sqlitePath(url: string): string {
  if (url === ':memory:' || url === 'sqlite::memory:') return ':memory:';
  return url.replace(/^sqlite:(\/\/)?/, '');
}

const INT8_OID = 20;

/**
 * SQLite does run DDL inside transactions; Kysely's adapter says otherwise (to be safe with
 * drivers that cannot). Saying so lets each migration step be atomic, and lets {@link migrate}
 * hand the migrator a transaction that already holds the write lock.
 */
class TransactionalSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

class SwitchboardSqliteDialect extends SqliteDialect {
  override createAdapter(): DialectAdapter {
    return new TransactionalSqliteAdapter();
  }
}

/**
 * better-sqlite3 behind Kysely's `SqliteDatabase` interface with a cache of prepared
 * statements (least recently used first out, `size` entries, keyed by SQL text). Kysely's
 * SQLite driver prepares every query anew; preparing was the largest single cost of the
 * alert-call worker (13 % of its CPU in the 1,000-escalation benchmark), whose queries repeat
 * with new parameters. A statement still iterating (`busy`, Kysely's `stream()`) is never
 * handed out twice: a fresh one is prepared for the second caller. Statements longer than
 * `maxSqlLength` characters are not cached.
 */
export function cachingSqliteDatabase(
  sqlite: SQLite.Database,
  size = 500,
  maxSqlLength = 2048,
): SqliteDatabase {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => {
      cache.clear();
      sqlite.close();
    },
    prepare(sqlText: string) {
      const cached = cache.get(sqlText);
      if (cached) {
        if (cached.busy) return sqlite.prepare(sqlText);
        cache.delete(sqlText);
        cache.set(sqlText, cached);
        return cached;
      }
      const statement = sqlite.prepare(sqlText);
      // Long texts (multi-row INSERTs, long IN lists) rarely repeat exactly and their
      // programs are big: not cached.
      if (sqlText.length > maxSqlLength) return statement;
      cache.set(sqlText, statement);
      if (cache.size > size) cache.delete(cache.keys().next().value as string);
      return statement;
    },
  };
}

/** Identifier check for schema names that go into `search_path` / DDL. */
function assertIdentifier(name: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)) {
    throw new Error(`store: invalid schema name (letters, digits, _): ${JSON.stringify(name)}`);
  }
}

/**
 * Opens the database a URL names.
 *
 * SQLite: the file (and its directory) is created if missing; WAL journal, `busy_timeout`,
 * `foreign_keys = ON`, `synchronous = NORMAL`. PostgreSQL: a pg Pool whose `bigint` values are
 * JS numbers; with `options.schema`, that schema is created if missing and set as
 * `search_path` on every connection.
 *
 * @param url a file path, `sqlite:PATH`, `:memory:`, or `postgres://user:pass@host:port/db`.
 * @throws when the SQLite file cannot be opened, or (PostgreSQL) the server refuses the
 *   connection or the schema cannot be created. Error messages never contain the password.
 */
export async function openDatabase<DB = unknown>(
  url: string,
  options: OpenDatabaseOptions = {},
): Promise<Database<DB>> {
  if (dialectOf(url) === 'sqlite') {
    const file = sqlitePath(url);
    if (file !== ':memory:' && file !== '') mkdirSync(dirname(file), { recursive: true });
    const sqlite = new SQLite(file);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5000)}`);
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('synchronous = NORMAL');
    const db = new Kysely<DB>({
      dialect: new SwitchboardSqliteDialect({ database: cachingSqliteDatabase(sqlite) }),
    });
    return {
      db,
      dialect: 'sqlite',
      file: file === ':memory:' || file === '' ? ':memory:' : resolve(file),
      close: () => db.destroy(),
    };
  }

  const { schema } = options;
  if (schema !== undefined) assertIdentifier(schema);
  const types = {
    getTypeParser: ((oid: number, format?: string) =>
      oid === INT8_OID
        ? (value: string) => Number(value)
        : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
  };
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    types,
    ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
  });
  // An idle client's error (server restart) must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  try {
    if (schema !== undefined) {
      await pool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`).catch(async (error) => {
        // Two processes creating the schema at once: the loser gets a unique violation.
        if ((error as { code?: string }).code !== '23505') throw error;
      });
    } else {
      await pool.query('SELECT 1');
    }
  } catch (error) {
    await pool.end();
    const code = (error as { code?: string }).code;
    throw new Error(`store: cannot connect to PostgreSQL${code ? ` (${code})` : ''}`, {
      cause: error,
    });
  }
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    dialect: 'postgres',
    ...(schema === undefined ? {} : { schema }),
    close: () => db.destroy(),
  };
}

// ---------------------------------------------------------------------------------------------
// Migrations
// ---------------------------------------------------------------------------------------------

/** What a migration step receives besides the Kysely instance. */
export interface MigrationContext {
  /** The dialect, for the rare DDL that differs (prefer {@link autoIncrementId} etc.). */
  dialect: Dialect;
}

/** One migration step of a module. */
export interface ModuleMigration {
  /** Short name, unique in the module, e.g. `create_event`. */
  name: string;
  /** Applies the step (runs in a transaction on both dialects). */
  up(db: Kysely<unknown>, context: MigrationContext): Promise<void>;
  /** Reverts the step (optional: Switchboard only migrates up at start). */
  down?(db: Kysely<unknown>, context: MigrationContext): Promise<void>;
}

/** A module's migrations, as returned by {@link defineMigrations}. */
export interface MigrationSet {
  /** Module name: lowercase letters, digits, `_` (e.g. `callout`). */
  module: string;
  /** Steps in order. */
  migrations: readonly ModuleMigration[];
}

/**
 * Declares a module's migrations. Each step is recorded as `<module>/<NNNN>_<name>` (NNNN =
 * 1-based position), so steps of one module run in the order given and modules never
 * collide. Append new steps; never reorder or edit applied ones.
 *
 * @throws when the module or a step name is not `[a-z0-9_]+`, or a name repeats.
 */
export function defineMigrations(module: string, migrations: ModuleMigration[]): MigrationSet {
  if (!/^[a-z][a-z0-9_]*$/.test(module)) throw new Error(`store: invalid module name ${module}`);
  const names = new Set<string>();
  for (const m of migrations) {
    if (!/^[a-z0-9_]+$/.test(m.name)) throw new Error(`store: invalid migration name ${m.name}`);
    if (names.has(m.name)) throw new Error(`store: duplicate migration ${module}/${m.name}`);
    names.add(m.name);
  }
  return { module, migrations };
}

/** The name a step is recorded under: `callout/0001_create_event`. */
export function migrationName(module: string, index: number, name: string): string {
  return `${module}/${String(index + 1).padStart(4, '0')}_${name}`;
}

/** Table recording applied migrations (and its lock table). */
export const MIGRATION_TABLE = 'switchboard_migration';

/**
 * Applies every pending migration of `sets`, in name order (module, then position).
 *
 * Safe when several processes start at once against PostgreSQL: Kysely's migrator takes an
 * advisory lock and runs in a transaction, so each step is applied exactly once. SQLite is a
 * one-process store (the file is shared by the threads of one process only).
 * Modules may be added later in any order (unordered migrations are allowed across modules).
 *
 * @returns the names of the steps applied by this call (empty when up to date).
 * @throws the first failing step's error (that step's transaction is rolled back), or on
 *   duplicate module names.
 */
export async function migrate(
  database: Database,
  sets: readonly MigrationSet[],
): Promise<string[]> {
  const modules = new Set<string>();
  const all: Record<string, Migration> = {};
  const context: MigrationContext = { dialect: database.dialect };
  for (const set of sets) {
    if (modules.has(set.module)) throw new Error(`store: module ${set.module} registered twice`);
    modules.add(set.module);
    set.migrations.forEach((step, index) => {
      const down = step.down;
      all[migrationName(set.module, index, step.name)] = {
        up: (db) => step.up(db as Kysely<unknown>, context),
        ...(down ? { down: (db: Kysely<unknown>) => down(db as Kysely<unknown>, context) } : {}),
      };
    });
  }
  const provider: MigrationProvider = { getMigrations: async () => all };
  const props = {
    provider,
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: `${MIGRATION_TABLE}_lock`,
    allowUnorderedMigrations: true,
    ...(database.schema === undefined ? {} : { migrationTableSchema: database.schema }),
  };
  let result: MigrationResultSet;
  if (database.dialect === 'postgres') {
    result = await new Migrator({ db: database.db as Kysely<unknown>, ...props }).migrateToLatest();
  } else {
    result = await withFileLock(database.file ?? ':memory:', () =>
      migrateSqlite(database.db as Kysely<unknown>, props),
    );
  }
  if (result.error) throw result.error;
  return (result.results ?? [])
    .filter((r) => r.status === 'Success' && r.direction === 'Up')
    .map((r) => r.migrationName);
}

const fileLocks = new Map<string, Promise<unknown>>();

/** Runs `fn` after every earlier call for the same SQLite file (in this process) settled. */
async function withFileLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const previous = fileLocks.get(file) ?? Promise.resolve();
  const next = previous.then(fn, fn);
  const settled = next.catch(() => undefined);
  fileLocks.set(file, settled);
  try {
    return await next;
  } finally {
    if (fileLocks.get(file) === settled) fileLocks.delete(file);
  }
}

/**
 * SQLite: Kysely's migration lock is a no-op there, so the migrator runs inside a transaction
 * whose first statement is a write: SQLite takes the write lock (waiting up to busy_timeout
 * for another process) before the migrator reads which steps are applied. Calls from the same
 * process are serialized by {@link withFileLock} first (a synchronous busy wait there would
 * block the holder).
 */
async function migrateSqlite(
  db: Kysely<unknown>,
  props: Omit<ConstructorParameters<typeof Migrator>[0], 'db'>,
): Promise<MigrationResultSet> {
  const lockTable = sql.table(`${MIGRATION_TABLE}_sqlite_lock`);
  await sql`create table if not exists ${lockTable} (id integer primary key)`.execute(db);
  const trx = await db.startTransaction().execute();
  try {
    await sql`delete from ${lockTable}`.execute(trx);
    const result = await new Migrator({ db: trx, ...props }).migrateToLatest();
    if (result.error) await trx.rollback().execute();
    else await trx.commit().execute();
    return result;
  } catch (error) {
    await trx.rollback().execute();
    throw error;
  }
}

/**
 * Column builder for an integer primary key generated by the database (for seed APIs with
 * integer ids): PostgreSQL `bigint generated by default as identity`, SQLite
 * `integer primary key autoincrement`. Use with the column type from {@link autoIncrementType}.
 *
 * @example
 * db.schema.createTable('announce_message')
 *   .addColumn('id', autoIncrementType(dialect), autoIncrementId(dialect))
 */
export function autoIncrementId(dialect: Dialect) {
  return (col: ColumnDefinitionBuilder): ColumnDefinitionBuilder =>
    dialect === 'postgres'
      ? col.primaryKey().generatedByDefaultAsIdentity()
      : col.primaryKey().autoIncrement();
}

/** The column type to pair with {@link autoIncrementId}: `bigint` (PG) or `integer` (SQLite). */
export function autoIncrementType(dialect: Dialect): 'bigint' | 'integer' {
  return dialect === 'postgres' ? 'bigint' : 'integer';
}

// ---------------------------------------------------------------------------------------------
// Ids and time
// ---------------------------------------------------------------------------------------------

/** Current time as integer epoch milliseconds: the only time representation in the store. */
export function nowMs(): number {
  return Date.now();
}

let lastIdMs = 0;
let idSequence = 0;

/**
 * A new text id: 26 characters, Crockford base32, the first 10 encoding epoch ms (so ids sort
 * by creation time within a process and roughly across processes), the rest random (80 bits,
 * with a per-millisecond counter so ids of one process are strictly increasing). ULID layout.
 */
export function newId(atMs: number = Date.now()): string {
  const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  let ms = Math.max(atMs, lastIdMs);
  if (ms === lastIdMs) idSequence += 1;
  else idSequence = 0;
  lastIdMs = ms;
  let time = '';
  for (let i = 0; i < 10; i += 1) {
    time = alphabet[ms % 32] + time;
    ms = Math.floor(ms / 32);
  }
  const random = randomBytes(10);
  // The first 2 bytes carry the sequence, keeping ids of one millisecond ordered.
  random.writeUInt16BE(idSequence & 0xffff, 0);
  let bits = 0n;
  for (const byte of random) bits = (bits << 8n) | BigInt(byte);
  let tail = '';
  for (let i = 0; i < 16; i += 1) {
    tail = alphabet[Number(bits & 31n)] + tail;
    bits >>= 5n;
  }
  return time + tail;
}

// ---------------------------------------------------------------------------------------------
// Leases
// ---------------------------------------------------------------------------------------------

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
