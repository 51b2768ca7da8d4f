// The two databases the store's tests run on, each as a target that can open several
// connections ("processes") to one database and remove it afterwards: a SQLite file in a
// temporary directory, a PostgreSQL schema of its own on the test server.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type Database, openDatabase } from '../../src/store/db.ts';

/** The test PostgreSQL (README, Requirements). */
export const PG_URL =
  process.env.SWITCHBOARD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** One database of a test. */
export interface Target {
  name: string;
  /** Opens one more connection ("process") to the same database. */
  open(): Promise<Database>;
  cleanup(): Promise<void>;
}

/** A SQLite file at `relativePath` under a new temporary directory named `prefix…`. */
export function sqliteTarget(prefix: string, relativePath = 'switchboard.db'): Target {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const file = join(dir, relativePath);
  return {
    name: 'sqlite',
    open: () => openDatabase(file, { busyTimeoutMs: 5000 }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A PostgreSQL schema `<prefix>_<pid>_<random>` on {@link PG_URL}, dropped by `cleanup`. */
export function postgresTarget(prefix: string): Target {
  const schema = `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
  return {
    name: 'postgres',
    open: () => openDatabase(PG_URL, { schema, poolSize: 4 }),
    cleanup: async () => {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    },
  };
}
