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
  type CompiledQuery,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  Kysely,
  PostgresDialect,
  type QueryResult,
  type RawBuilder,
  SqliteAdapter,
  type SqliteDatabase,
  SqliteDialect,
  sql,
  type TransactionSettings,
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
  /**
   * PostgreSQL: longest wait for a connection, in ms (default 5000): a new one (TCP connect
   * + startup), or a free one of the pool. Without it, a server that does not answer (a cut
   * network) held every query and API request forever.
   */
  connectTimeoutMs?: number;
  /** `Retry-After` carried by {@link DatabaseUnavailableError}, in seconds (default 5). */
  retryAfterS?: number;
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
  /**
   * Whether the database answered, as last observed by any query of any module (no I/O):
   * `ok` false from the first query that failed with a {@link DatabaseUnavailableError}
   * until the next one that succeeded.
   */
  readonly health: DatabaseHealth;
  /**
   * The `/readyz` check: reachable or not, probing when in doubt. PostgreSQL probes with
   * `SELECT 1` while marked unreachable or when no query succeeded for 10 s; SQLite, while
   * marked unreachable, takes and releases the write lock on a connection of its own without
   * waiting (a file locked by another process, a full disk or an I/O error make it fail;
   * reads keep working in WAL mode, so only writes tell). Never throws.
   */
  check(): Promise<{ ok: boolean; detail?: string }>;
  /** Closes the pool / file. */
  close(): Promise<void>;
}

/** See {@link Database.health}. */
export interface DatabaseHealth {
  /** False while the database is unreachable. */
  readonly ok: boolean;
  /** Since when (epoch ms) the state holds. */
  readonly sinceMs: number;
  /** While unreachable: the reason (an error code such as `ECONNREFUSED` or `SQLITE_BUSY`). */
  readonly reason: string | undefined;
  /** The last successful query (epoch ms; 0 before the first). */
  readonly lastOkMs: number;
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

// ---------------------------------------------------------------------------------------------
// Reachability
// ---------------------------------------------------------------------------------------------

/**
 * The database could not be reached (PostgreSQL: no connection, connection lost, server
 * shutting down or out of resources; SQLite: the file is locked by another process for longer
 * than `busy_timeout`, the disk is full, an I/O error): the statement was not executed, or
 * its transaction was rolled back, and may succeed later. Thrown by every query of a
 * {@link Database} in place of the driver's error (kept as `cause`); the HTTP layer answers
 * it 503 with `Retry-After` (`src/http/errors.ts`). Constraint violations and bad statements
 * keep their own errors: retrying them cannot help.
 */
export class DatabaseUnavailableError extends Error {
  /** What a client should wait before retrying, in seconds (`Retry-After`). */
  readonly retryAfterS: number;
  /** The driver's error code (`ECONNREFUSED`, `57P01`, `SQLITE_BUSY`, ...) or error name. */
  readonly reason: string;
  constructor(cause: unknown, retryAfterS = 5) {
    const reason = errorCode(cause);
    super(`database unavailable (${reason})`, { cause });
    this.name = 'DatabaseUnavailableError';
    this.retryAfterS = retryAfterS;
    this.reason = reason;
  }
}

function errorCode(error: unknown): string {
  const e = error as { code?: unknown; name?: unknown } | undefined;
  if (typeof e?.code === 'string' && /^[A-Za-z0-9_]{1,40}$/.test(e.code)) return e.code;
  if (typeof e?.name === 'string' && e.name !== 'Error') return e.name;
  return 'connection error';
}

/** Network errors of node:net / dns, as `code`. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * SQLite result codes meaning "not now" (https://www.sqlite.org/rescode.html): the lock is
 * held elsewhere (`BUSY`, `LOCKED`), the disk or file is unusable (`IOERR`, `FULL`,
 * `CANTOPEN`, `READONLY`, `PROTOCOL`). Extended codes (`SQLITE_BUSY_SNAPSHOT`, ...) count
 * with their primary code.
 */
const SQLITE_UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|PROTOCOL)(_|$)/;

/**
 * PostgreSQL SQLSTATE classes meaning "not now" (https://www.postgresql.org/docs/current/errcodes-appendix.html):
 * 08 connection exception, 53 insufficient resources, 57 operator intervention (admin
 * shutdown, cannot connect now, statement timeout), 58 system error. Class 23 (constraint
 * violation), 22 (data exception) and 42 (syntax, undefined table) are not retryable.
 */
const PG_UNAVAILABLE = /^(08|53|57|58)[0-9A-Z]{3}$/;

/** Messages of `pg` / `pg-pool` for a lost or impossible connection (they carry no code). */
const PG_CONNECTION_MESSAGES = [
  /connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /is not queryable/i,
  /connection (was )?(closed|ended)/i,
];

/**
 * Whether `error` means the database cannot be reached now (see
 * {@link DatabaseUnavailableError}); true for that error itself.
 */
export function isUnavailableError(error: unknown): boolean {
  if (error instanceof DatabaseUnavailableError) return true;
  const e = error as { code?: unknown; message?: unknown } | undefined;
  if (e === null || typeof e !== 'object') return false;
  const code = typeof e.code === 'string' ? e.code : '';
  if (NETWORK_CODES.has(code) || SQLITE_UNAVAILABLE.test(code) || PG_UNAVAILABLE.test(code)) {
    return true;
  }
  if (code !== '') return false;
  const message = typeof e.message === 'string' ? e.message : '';
  return PG_CONNECTION_MESSAGES.some((re) => re.test(message));
}

/** The mutable side of {@link DatabaseHealth}. */
class HealthState implements DatabaseHealth {
  ok = true;
  sinceMs = Date.now();
  reason: string | undefined = undefined;
  lastOkMs = 0;

  up(): void {
    this.lastOkMs = Date.now();
    if (this.ok) return;
    this.ok = true;
    this.sinceMs = this.lastOkMs;
    this.reason = undefined;
  }

  down(reason: string): void {
    if (!this.ok) return;
    this.ok = false;
    this.sinceMs = Date.now();
    this.reason = reason;
  }
}

/**
 * A Kysely driver around another that records every query's reachability in `health` and
 * turns the driver's "not reachable" errors ({@link isUnavailableError}) into
 * {@link DatabaseUnavailableError}s.
 */
class ObservedDriver implements Driver {
  readonly #inner: Driver;
  readonly #health: HealthState;
  readonly #retryAfterS: number;
  readonly #readsProve: boolean;
  readonly #connections = new WeakMap<DatabaseConnection, DatabaseConnection>();

  /**
   * @param readsProve whether a successful read shows the database reachable (PostgreSQL);
   *   false for SQLite, where reads keep working while another process holds the write
   *   lock: there only writes and commits do.
   */
  constructor(inner: Driver, health: HealthState, retryAfterS: number, readsProve: boolean) {
    this.#inner = inner;
    this.#health = health;
    this.#retryAfterS = retryAfterS;
    this.#readsProve = readsProve;
  }

  async #observe<T>(run: () => Promise<T>, proves = true): Promise<T> {
    try {
      const result = await run();
      if (proves) this.#health.up();
      return result;
    } catch (error) {
      if (!isUnavailableError(error)) throw error;
      const unavailable =
        error instanceof DatabaseUnavailableError
          ? error
          : new DatabaseUnavailableError(error, this.#retryAfterS);
      this.#health.down(unavailable.reason);
      throw unavailable;
    }
  }

  #proves(query: CompiledQuery): boolean {
    if (this.#readsProve) return true;
    const kind = query.query.kind;
    if (kind === 'SelectQueryNode') return false;
    return !(kind === 'RawNode' && /^\s*(select|with|pragma)\b/i.test(query.sql));
  }

  #unwrap(connection: DatabaseConnection): DatabaseConnection {
    return this.#connections.get(connection) ?? connection;
  }

  init(): Promise<void> {
    return this.#observe(() => this.#inner.init(), false);
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const inner = await this.#observe(() => this.#inner.acquireConnection(), this.#readsProve);
    const wrapped: DatabaseConnection = {
      executeQuery: <R>(query: CompiledQuery): Promise<QueryResult<R>> =>
        this.#observe(() => inner.executeQuery<R>(query), this.#proves(query)),
      streamQuery: <R>(query: CompiledQuery, chunkSize: number) =>
        inner.streamQuery<R>(query, chunkSize),
    };
    this.#connections.set(wrapped, inner);
    return wrapped;
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return this.#observe(
      () => this.#inner.beginTransaction(this.#unwrap(connection), settings),
      this.#readsProve,
    );
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#observe(() => this.#inner.commitTransaction(this.#unwrap(connection)));
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#observe(
      () => this.#inner.rollbackTransaction(this.#unwrap(connection)),
      this.#readsProve,
    );
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.#inner.releaseConnection(this.#unwrap(connection));
  }

  destroy(): Promise<void> {
    return this.#inner.destroy();
  }
}

class SwitchboardSqliteDialect extends SqliteDialect {
  readonly #health: HealthState;
  readonly #retryAfterS: number;

  constructor(
    config: ConstructorParameters<typeof SqliteDialect>[0],
    health: HealthState,
    retryAfterS: number,
  ) {
    super(config);
    this.#health = health;
    this.#retryAfterS = retryAfterS;
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalSqliteAdapter();
  }

  override createDriver(): Driver {
    return new ObservedDriver(super.createDriver(), this.#health, this.#retryAfterS, false);
  }
}

class SwitchboardPostgresDialect extends PostgresDialect {
  readonly #health: HealthState;
  readonly #retryAfterS: number;

  constructor(
    config: ConstructorParameters<typeof PostgresDialect>[0],
    health: HealthState,
    retryAfterS: number,
  ) {
    super(config);
    this.#health = health;
    this.#retryAfterS = retryAfterS;
  }

  override createDriver(): Driver {
    return new ObservedDriver(super.createDriver(), this.#health, this.#retryAfterS, true);
  }
}

/** How long without a successful query before {@link Database.check} probes anyway, in ms. */
const CHECK_IDLE_MS = 10_000;

/**
 * {@link Database.check}: the observed state, probing while marked unreachable, and (when
 * `probeWhenIdle`) when no query succeeded for {@link CHECK_IDLE_MS}.
 */
function checker(
  health: HealthState,
  probe: () => Promise<void>,
  probeWhenIdle: boolean,
): () => Promise<{ ok: boolean; detail?: string }> {
  return async () => {
    if (health.ok && (!probeWhenIdle || Date.now() - health.lastOkMs < CHECK_IDLE_MS)) {
      return { ok: true };
    }
    try {
      await probe();
      health.up();
      return { ok: true };
    } catch (error) {
      const reason = error instanceof DatabaseUnavailableError ? error.reason : errorCode(error);
      health.down(reason);
      return { ok: false, detail: `database unreachable (${reason})` };
    }
  };
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
  const health = new HealthState();
  const retryAfterS = Math.max(1, Math.trunc(options.retryAfterS ?? 5));
  if (dialectOf(url) === 'sqlite') {
    const file = sqlitePath(url);
    const memory = file === ':memory:' || file === '';
    if (!memory) mkdirSync(dirname(file), { recursive: true });
    const sqlite = new SQLite(file);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5000)}`);
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('synchronous = NORMAL');
    const db = new Kysely<DB>({
      dialect: new SwitchboardSqliteDialect(
        { database: cachingSqliteDatabase(sqlite) },
        health,
        retryAfterS,
      ),
    });
    // The probe's own connection, opened when first needed: the main one may be inside a
    // transaction of the service.
    let probeDb: SQLite.Database | undefined;
    const probe = async () => {
      if (memory) return;
      probeDb ??= new SQLite(file, { fileMustExist: true, timeout: 0 });
      probeDb.exec('BEGIN IMMEDIATE');
      probeDb.exec('ROLLBACK');
    };
    return {
      db,
      dialect: 'sqlite',
      file: memory ? ':memory:' : resolve(file),
      health,
      check: checker(health, probe, false),
      close: async () => {
        probeDb?.close();
        await db.destroy();
      },
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
    connectionTimeoutMillis: Math.max(1, Math.trunc(options.connectTimeoutMs ?? 5000)),
    types,
    ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
  });
  // A client's error (server restart, connection cut) must not crash the process: idle
  // clients are the pool's ('error' on the pool, which replaces them); a client checked out
  // but between queries emits it on itself (its next query fails, and the pool drops it).
  pool.on('error', () => {});
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
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
  const db = new Kysely<DB>({
    dialect: new SwitchboardPostgresDialect({ pool }, health, retryAfterS),
  });
  health.up();
  return {
    db,
    dialect: 'postgres',
    ...(schema === undefined ? {} : { schema }),
    health,
    check: checker(
      health,
      async () => {
        await sql`select 1`.execute(db);
      },
      true,
    ),
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

// Time in the store is integer epoch milliseconds (`Date.now()`), its only representation.

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
