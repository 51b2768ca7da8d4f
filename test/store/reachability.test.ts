// Issue 10, §3: the database unreachable is told apart from a bad statement. Every query of a
// `Database` then throws DatabaseUnavailableError (the APIs answer 503 with Retry-After), the
// health goes down, and `check()` (the `/readyz` check) reports it and recovers by itself.
// PostgreSQL: the real server behind a TCP proxy that is cut (the server is never stopped);
// SQLite: the file locked by another connection's write transaction beyond busy_timeout.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { DatabaseUnavailableError, isUnavailableError, openDatabase } from '../../src/store/db.ts';
import { startProxy } from '../bus/helpers.ts';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
});

test('what counts as unreachable: connection and lock errors, not constraint or syntax errors', () => {
  const error = (fields: Record<string, unknown>) => Object.assign(new Error('x'), fields);
  for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', '57P01', '08006', '53300']) {
    assert.equal(isUnavailableError(error({ code })), true, code);
  }
  for (const code of [
    'SQLITE_BUSY',
    'SQLITE_BUSY_SNAPSHOT',
    'SQLITE_LOCKED',
    'SQLITE_FULL',
    'SQLITE_IOERR_WRITE',
  ]) {
    assert.equal(isUnavailableError(error({ code })), true, code);
  }
  assert.equal(isUnavailableError(new Error('Connection terminated unexpectedly')), true);
  assert.equal(isUnavailableError(new Error('timeout exceeded when trying to connect')), true);
  for (const code of [
    '23505',
    '23503',
    '42P01',
    '22P02',
    'SQLITE_CONSTRAINT_UNIQUE',
    'SQLITE_ERROR',
  ]) {
    assert.equal(isUnavailableError(error({ code })), false, code);
  }
  assert.equal(isUnavailableError(new Error('syntax error')), false);
  assert.equal(isUnavailableError(undefined), false);
});

test('PostgreSQL behind a cut proxy: DatabaseUnavailableError, check() not ready, then ready again', async () => {
  const proxy = await startProxy(5432);
  cleanups.push(() => proxy.close());
  const schema = `reach_${process.pid}_${Date.now().toString(36)}`;
  const db = await openDatabase(`postgres://postgres@127.0.0.1:${proxy.port}/test`, {
    schema,
    connectTimeoutMs: 1000,
    retryAfterS: 9,
  });
  cleanups.push(async () => {
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(db.db).catch(() => {});
    await db.close();
  });
  await sql`create table t (id integer primary key)`.execute(db.db);
  assert.deepEqual(await db.check(), { ok: true });

  // a transaction holds a pooled connection when the network goes
  const inTransaction = db.db.transaction().execute(async (trx) => {
    await sql`insert into t values (1)`.execute(trx);
    await proxy.cut();
    await sql`insert into t values (2)`.execute(trx);
  });
  await assert.rejects(inTransaction, DatabaseUnavailableError);
  const refused = await sql`select 1`.execute(db.db).catch((e: unknown) => e);
  assert.ok(refused instanceof DatabaseUnavailableError, String(refused));
  assert.equal(refused.retryAfterS, 9);
  assert.equal(refused.reason, 'ECONNREFUSED');
  assert.equal(db.health.ok, false);
  assert.deepEqual(await db.check(), { ok: false, detail: 'database unreachable (ECONNREFUSED)' });

  // a duplicate key is the statement's fault, not an outage
  await proxy.restore();
  assert.deepEqual(await db.check(), { ok: true });
  assert.equal(db.health.ok, true);
  await sql`insert into t values (3)`.execute(db.db);
  const duplicate = await sql`insert into t values (3)`.execute(db.db).catch((e: unknown) => e);
  assert.equal((duplicate as { code?: string }).code, '23505');
  assert.equal(duplicate instanceof DatabaseUnavailableError, false);
  assert.equal(db.health.ok, true);
  // the transaction cut in the middle left nothing
  const rows = await sql<{ id: number }>`select id from t order by id`.execute(db.db);
  assert.deepEqual(rows.rows, [{ id: 3 }]);
});

test('SQLite locked by another connection beyond busy_timeout: writes unavailable, reads fine, check() not ready, then ready', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'reach-')), 'db.sqlite');
  const db = await openDatabase(file, { busyTimeoutMs: 20 });
  cleanups.push(() => db.close());
  await sql`create table t (id integer primary key)`.execute(db.db);
  await sql`insert into t values (1)`.execute(db.db);
  assert.deepEqual(await db.check(), { ok: true });
  const locker = new SQLite(file);
  cleanups.push(() => locker.close());
  locker.exec('BEGIN IMMEDIATE');
  const write = await sql`insert into t values (2)`.execute(db.db).catch((e: unknown) => e);
  assert.ok(write instanceof DatabaseUnavailableError, String(write));
  assert.equal(write.reason, 'SQLITE_BUSY');
  // reads work in WAL mode, and do not count as "reachable again"
  const rows = await sql<{ id: number }>`select id from t`.execute(db.db);
  assert.deepEqual(rows.rows, [{ id: 1 }]);
  assert.equal(db.health.ok, false);
  assert.deepEqual(await db.check(), { ok: false, detail: 'database unreachable (SQLITE_BUSY)' });
  locker.exec('ROLLBACK');
  assert.deepEqual(await db.check(), { ok: true });
  await sql`insert into t values (2)`.execute(db.db);
});
