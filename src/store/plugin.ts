/**
 * `switchboard-store`: the database as a shared Fastify plugin. Opens it at registration
 * (`openDatabase`), decorates `app.db` and `app.store` (features declare their tables with
 * `app.store.addMigrations(set)` and their retention rules with `app.store.addRetention(rule)`
 * while they register), applies every declared set together
 * in the first `onReady` hook (before any feature's worker starts), adds the `database`
 * readiness check, and closes the database in `onClose` (the last one to run: it is
 * registered first).
 */
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import type { Readiness } from '../http/server.ts';
import {
  type Database,
  type MigrationSet,
  migrate,
  type OpenDatabaseOptions,
  openDatabase,
} from './db.ts';
import type { RetentionRule } from './retention.ts';

/** Options of {@link storePlugin}. */
export interface StorePluginOptions {
  /** `database.url` (a SQLite path or `:memory:`, or a PostgreSQL URL). */
  url: string;
  /** Options of `openDatabase` (pool size, timeouts, PostgreSQL schema). */
  open: OpenDatabaseOptions;
  readiness: Readiness;
  logger: Logger;
  /** Called once the migrations are applied (names applied now). */
  onMigrated?: (database: Database, applied: readonly string[]) => void;
}

/** The database plugin (name `switchboard-store`). */
export const storePlugin = fp<StorePluginOptions>(
  async (app, options) => {
    const db = await openDatabase(options.url, options.open);
    const sets: MigrationSet[] = [];
    const rules: RetentionRule[] = [];
    app.decorate('db', db);
    app.decorate('store', {
      addMigrations(...more: readonly MigrationSet[]) {
        sets.push(...more);
      },
      addRetention(rule: RetentionRule) {
        rules.push(rule);
      },
      retentionRules: () => rules,
    });
    options.readiness.add('database', () => db.check());
    app.addHook('onReady', async () => {
      const applied = await migrate(db, sets);
      options.onMigrated?.(db, applied);
    });
    app.addHook('onClose', async () => {
      await db
        .close()
        .catch((error: unknown) => options.logger.warn({ err: error }, 'database close failed'));
    });
  },
  { name: 'switchboard-store', fastify: '5.x' },
);
