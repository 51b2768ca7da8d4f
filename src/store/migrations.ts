/**
 * The store's migrations runner: each module declares its steps ({@link defineMigrations}),
 * {@link migrate} applies the pending ones at start, once across processes. Column helpers
 * for seed APIs with integer ids: {@link autoIncrementId}, {@link autoIncrementType}.
 * Re-exported by `db.ts`.
 *
 * @module
 */
import { type ColumnDefinitionBuilder, type Kysely, sql } from 'kysely';
import {
  type Migration,
  type MigrationProvider,
  type MigrationResultSet,
  Migrator,
} from 'kysely/migration';
import type { Database, Dialect } from './db.ts';

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
