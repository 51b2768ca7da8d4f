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
 *
 * This file opens the database (dialects, driver, reachability); the migrations runner is in
 * migrations.ts, ids in ids.ts, lease claiming in claim.ts, the unreachable-database errors in
 * unavailable.ts, all re-exported here so importers use `store/db.ts` only.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import SQLite from 'better-sqlite3';
import {
  type CompiledQuery,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  Kysely,
  PostgresDialect,
  type QueryResult,
  SqliteAdapter,
  type SqliteDatabase,
  SqliteDialect,
  sql,
  type TransactionSettings,
} from 'kysely';
import pg from 'pg';
import { DatabaseUnavailableError, errorCode, isUnavailableError } from './unavailable.ts';

export { type ClaimOptions, claimDue } from './claim.ts';
export { newId } from './ids.ts';
export {
  autoIncrementId,
  autoIncrementType,
  defineMigrations,
  MIGRATION_TABLE,
  type MigrationContext,
  type MigrationSet,
  type ModuleMigration,
  migrate,
  migrationName,
} from './migrations.ts';
export { DatabaseUnavailableError, isUnavailableError } from './unavailable.ts';

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
