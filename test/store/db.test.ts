import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import {
  autoIncrementId,
  autoIncrementType,
  cachingSqliteDatabase,
  claimDue,
  type Database,
  defineMigrations,
  dialectOf,
  MIGRATION_TABLE,
  migrate,
  newId,
  openDatabase,
} from '../../src/store/db.ts';
import { postgresTarget, sqliteTarget } from '../support/db-targets.ts';

interface JobTable {
  id: string;
  due_at: number;
  lease_until: number | null;
  lease_owner: string | null;
  state: string;
}

/** The worked example: a module `demo` with a job table claimed with leases. */
const demoMigrations = defineMigrations('demo', [
  {
    name: 'create_job',
    async up(db) {
      await db.schema
        .createTable('demo_job')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('due_at', 'bigint', (c) => c.notNull())
        .addColumn('lease_until', 'bigint')
        .addColumn('lease_owner', 'text')
        .addColumn('state', 'text', (c) => c.notNull().defaultTo('pending'))
        .execute();
      await db.schema.createIndex('demo_job_due').on('demo_job').columns(['due_at']).execute();
    },
  },
  {
    name: 'create_counter',
    async up(db, { dialect }) {
      await db.schema
        .createTable('demo_counter')
        .addColumn('id', autoIncrementType(dialect), autoIncrementId(dialect))
        .addColumn('note', 'text')
        .execute();
      // Data step: proves the step ran exactly once even when several processes migrate.
      await sql`insert into demo_counter (note) values ('migrated')`.execute(db);
    },
  },
]);

const otherModule = defineMigrations('alpha', [
  {
    name: 'create_thing',
    async up(db) {
      await db.schema.createTable('alpha_thing').addColumn('id', 'text').execute();
    },
  },
]);

for (const makeTarget of [
  () => sqliteTarget('sb-store-', join('nested', 'switchboard.db')),
  () => postgresTarget('sb_test'),
]) {
  const target = makeTarget();
  describe(`store on ${target.name}`, () => {
    let a: Database;
    let b: Database;

    before(async () => {
      a = await target.open();
      b = await target.open();
    });

    after(async () => {
      await a?.close();
      await b?.close();
      await target.cleanup();
    });

    test('opens the right dialect', () => {
      assert.equal(a.dialect, target.name);
    });

    test('two processes migrating at once apply each step exactly once', async () => {
      const [ra, rb] = await Promise.all([
        migrate(a, [demoMigrations, otherModule]),
        migrate(b, [demoMigrations, otherModule]),
      ]);
      const applied = [...ra, ...rb].sort();
      assert.deepEqual(applied, [
        'alpha/0001_create_thing',
        'demo/0001_create_job',
        'demo/0002_create_counter',
      ]);
      const rows = await sql<{ n: number }>`select count(*) as n from demo_counter`.execute(a.db);
      assert.equal(Number(rows.rows[0]?.n), 1);
      const recorded = await sql<{
        name: string;
      }>`select name from ${sql.table(MIGRATION_TABLE)} order by name`.execute(b.db);
      assert.deepEqual(
        recorded.rows.map((r) => r.name),
        applied,
      );
    });

    test('migrating again is a no-op', async () => {
      assert.deepEqual(await migrate(a, [demoMigrations, otherModule]), []);
    });

    test('a module added later is applied even though its names sort earlier', async () => {
      const early = defineMigrations('aaa', [
        {
          name: 'create_x',
          async up(db) {
            await db.schema.createTable('aaa_x').addColumn('id', 'text').execute();
          },
        },
      ]);
      assert.deepEqual(await migrate(a, [demoMigrations, otherModule, early]), [
        'aaa/0001_create_x',
      ]);
    });

    test('a failing step is rolled back and reported', async () => {
      const broken = defineMigrations('broken', [
        {
          name: 'half_done',
          async up(db) {
            await db.schema.createTable('broken_t').addColumn('id', 'text').execute();
            await sql`select * from no_such_table_anywhere`.execute(db);
          },
        },
      ]);
      await assert.rejects(migrate(a, [broken]));
      const tables = await a.db.introspection.getTables();
      assert.ok(!tables.some((t) => t.name === 'broken_t'), 'DDL rolled back');
    });

    test('epoch-ms bigint columns read back as numbers', async () => {
      const db = a.db.withTables<{ demo_job: JobTable }>();
      const dueAt = Date.UTC(2030, 0, 1, 12, 0, 0, 123);
      const id = newId();
      await db.insertInto('demo_job').values({ id, due_at: dueAt, state: 'x' }).execute();
      const row = await db
        .selectFrom('demo_job')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      assert.equal(row.due_at, dueAt);
      assert.equal(typeof row.due_at, 'number');
      await db.deleteFrom('demo_job').execute();
    });

    test('two processes racing to claim the same rows never both get one', async () => {
      const db = a.db.withTables<{ demo_job: JobTable }>();
      const now = Date.now();
      const total = 200;
      const ids = Array.from({ length: total }, () => newId());
      await db
        .insertInto('demo_job')
        .values(ids.map((id, i) => ({ id, due_at: now - 1000 + (i % 10), state: 'pending' })))
        .execute();
      // Not due yet, and done: never claimed.
      await db
        .insertInto('demo_job')
        .values([
          { id: newId(), due_at: now + 60_000, state: 'pending' },
          { id: newId(), due_at: now - 5, state: 'done' },
        ])
        .execute();

      const claimed = new Map<string, string>();
      const worker = async (database: Database, owner: string) => {
        for (;;) {
          const rows = await claimDue<JobTable>(database, {
            table: 'demo_job',
            owner,
            leaseMs: 60_000,
            limit: 7,
            nowMs: now,
            where: sql`state = 'pending'`,
          });
          if (rows.length === 0) return;
          for (const row of rows) {
            assert.ok(
              !claimed.has(row.id),
              `${row.id} claimed by ${claimed.get(row.id)} and ${owner}`,
            );
            assert.equal(row.lease_owner, owner);
            assert.equal(row.lease_until, now + 60_000);
            claimed.set(row.id, owner);
          }
        }
      };
      await Promise.all([worker(a, 'A1'), worker(b, 'B1'), worker(a, 'A2'), worker(b, 'B2')]);
      assert.equal(claimed.size, total);
      assert.deepEqual([...claimed.keys()].sort(), [...ids].sort());
      const owners = new Set(claimed.values());
      assert.ok(owners.size >= 2, `work was split (${[...owners].join(',')})`);
    });

    test('an expired lease can be claimed again; a live one cannot', async () => {
      const db = a.db.withTables<{ demo_job: JobTable }>();
      await db.deleteFrom('demo_job').execute();
      const now = Date.now();
      const id = newId();
      await db
        .insertInto('demo_job')
        .values({ id, due_at: now - 1, state: 'pending' })
        .execute();
      const first = await claimDue<JobTable>(a, {
        table: 'demo_job',
        owner: 'A',
        leaseMs: 1000,
        limit: 10,
        nowMs: now,
      });
      assert.deepEqual(
        first.map((r) => r.id),
        [id],
      );
      const during = await claimDue<JobTable>(b, {
        table: 'demo_job',
        owner: 'B',
        leaseMs: 1000,
        limit: 10,
        nowMs: now + 999,
      });
      assert.deepEqual(during, []);
      const afterExpiry = await claimDue<JobTable>(b, {
        table: 'demo_job',
        owner: 'B',
        leaseMs: 1000,
        limit: 10,
        nowMs: now + 1000,
      });
      assert.deepEqual(
        afterExpiry.map((r) => [r.id, r.lease_owner]),
        [[id, 'B']],
      );
      // Fenced completion: A's lease is gone, so A's update affects nothing; B's succeeds.
      const fenced = (owner: string) =>
        db
          .updateTable('demo_job')
          .set({ state: 'done', lease_until: null })
          .where('id', '=', id)
          .where('lease_owner', '=', owner)
          .where('lease_until', '>', now + 1000)
          .executeTakeFirst();
      assert.equal(Number((await fenced('A')).numUpdatedRows), 0);
      assert.equal(Number((await fenced('B')).numUpdatedRows), 1);
    });
  });
}

describe('store helpers', () => {
  test('dialectOf', () => {
    assert.equal(dialectOf('./data/switchboard.db'), 'sqlite');
    assert.equal(dialectOf(':memory:'), 'sqlite');
    assert.equal(dialectOf('sqlite:/tmp/x.db'), 'sqlite');
    assert.equal(dialectOf('postgres://u@h/db'), 'postgres');
    assert.equal(dialectOf('postgresql://u@h/db'), 'postgres');
  });

  test('openDatabase creates the SQLite directory and sets WAL and foreign keys', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-store-'));
    const file = join(dir, 'a', 'b', 'x.db');
    const database = await openDatabase(`sqlite:${file}`);
    try {
      assert.ok(existsSync(file));
      const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(database.db);
      assert.equal(mode.rows[0]?.journal_mode, 'wal');
      const fk = await sql<{ foreign_keys: number }>`pragma foreign_keys`.execute(database.db);
      assert.equal(fk.rows[0]?.foreign_keys, 1);
    } finally {
      await database.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('SQLite prepared statements are cached by SQL text, bounded, never shared while iterating', () => {
    const sqlite = new SQLite(':memory:');
    let prepared = 0;
    const prepare = sqlite.prepare.bind(sqlite);
    sqlite.prepare = ((text: string) => {
      prepared++;
      return prepare(text);
    }) as typeof sqlite.prepare;
    const database = cachingSqliteDatabase(sqlite, 2);
    database.prepare('create table t (n integer)').run([]);
    const insert = database.prepare('insert into t (n) values (?)');
    for (let n = 1; n <= 3; n++) database.prepare('insert into t (n) values (?)').run([n]);
    assert.equal(database.prepare('insert into t (n) values (?)'), insert);
    assert.equal(prepared, 2, 'the insert was prepared once');
    // A statement still iterating is not handed out again: a fresh one reads alongside.
    const rows = database.prepare('select n from t order by n').iterate([]);
    assert.deepEqual(rows.next().value, { n: 1 });
    const again = database.prepare('select n from t order by n');
    assert.deepEqual(again.all([]), [{ n: 1 }, { n: 2 }, { n: 3 }]);
    assert.deepEqual([...rows], [{ n: 2 }, { n: 3 }]);
    // Bounded: the least recently used statement is dropped (prepared again when asked).
    const before = prepared;
    database.prepare('select 1');
    database.prepare('select 2');
    database.prepare('insert into t (n) values (?)');
    assert.equal(prepared, before + 3);
    // Long texts (multi-row inserts, long IN lists) are not cached.
    const long = `select n from t where n in (${Array.from({ length: 700 }, () => '?').join(', ')})`;
    const beforeLong = prepared;
    database.prepare(long);
    database.prepare(long);
    assert.equal(prepared, beforeLong + 2);
    database.close();
  });

  test('a wrong PostgreSQL password never appears in the error', async () => {
    const url = 'postgres://nosuchuser:pw-secret-123@127.0.0.1:1/test';
    await assert.rejects(openDatabase(url), (error: Error) => {
      assert.match(error.message, /cannot connect to PostgreSQL/);
      assert.ok(!error.message.includes('pw-secret-123'));
      return true;
    });
  });

  test('defineMigrations refuses bad and duplicate names', () => {
    assert.throws(() => defineMigrations('Bad-Name', []));
    const up = async () => {};
    assert.throws(
      () =>
        defineMigrations('x', [
          { name: 'a', up },
          { name: 'a', up },
        ]),
      /duplicate/,
    );
  });

  test('newId is 26 characters, unique and increasing', () => {
    const ids = Array.from({ length: 1000 }, () => newId());
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids) assert.match(id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.deepEqual([...ids].sort(), ids);
  });
});

describe('store on sqlite across real processes', () => {
  test('two OS processes claiming from one file never both get a row', async () => {
    const { spawn } = await import('node:child_process');
    const dir = mkdtempSync(join(tmpdir(), 'sb-store-proc-'));
    const file = join(dir, 'shared.db');
    const database = await openDatabase(file);
    try {
      await migrate(database, [demoMigrations]);
      const db = database.db.withTables<{ demo_job: JobTable }>();
      const now = Date.now();
      const ids = Array.from({ length: 400 }, () => newId());
      await db
        .insertInto('demo_job')
        .values(ids.map((id) => ({ id, due_at: now - 10, state: 'pending' })))
        .execute();
      const dbModule = new URL('../../src/store/db.ts', import.meta.url).href;
      const script = `
        const { openDatabase, claimDue } = await import(${JSON.stringify(dbModule)});
        const database = await openDatabase(${JSON.stringify(file)});
        const got = [];
        for (;;) {
          const rows = await claimDue(database, { table: 'demo_job', owner: process.argv[1], leaseMs: 60000, limit: 3, nowMs: ${now} });
          if (rows.length === 0) break;
          got.push(...rows.map((r) => r.id));
        }
        await database.close();
        process.stdout.write(JSON.stringify(got));`;
      const run = (owner: string) =>
        new Promise<string[]>((resolve, reject) => {
          const child = spawn(process.execPath, ['--input-type=module', '-e', script, owner], {
            stdio: ['ignore', 'pipe', 'inherit'],
          });
          let out = '';
          child.stdout.on('data', (chunk) => {
            out += chunk;
          });
          child.on('error', reject);
          child.on('exit', (code) =>
            code === 0 ? resolve(JSON.parse(out) as string[]) : reject(new Error(`exit ${code}`)),
          );
        });
      const [p1, p2] = await Promise.all([run('P1'), run('P2')]);
      const overlap = p1.filter((id) => p2.includes(id));
      assert.deepEqual(overlap, []);
      assert.deepEqual([...p1, ...p2].sort(), [...ids].sort());
    } finally {
      await database.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
