import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { type Database, defineMigrations, migrate } from '../../src/store/db.ts';
import { claimDue, keepLease, renewLeases, Worker } from '../../src/store/worker.ts';
import { until } from '../support/cli.ts';
import { postgresTarget, sqliteTarget } from '../support/db-targets.ts';

interface JobRow {
  id: string;
  due_at: number;
  lease_until: number | null;
  lease_owner: string | null;
  state: string;
  done_by: string | null;
}

const jobMigrations = defineMigrations('workertest', [
  {
    name: 'create_job',
    async up(db) {
      await db.schema
        .createTable('wt_job')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('due_at', 'bigint', (c) => c.notNull())
        .addColumn('lease_until', 'bigint')
        .addColumn('lease_owner', 'text')
        .addColumn('state', 'text', (c) => c.notNull().defaultTo('pending'))
        .addColumn('done_by', 'text')
        .execute();
    },
  },
]);

/** A promise and its resolver. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open: () => void = () => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

/** Polls the async `condition` every 10 ms until true, or throws after `timeoutMs`. */
async function eventually(
  condition: () => Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

for (const makeTarget of [() => sqliteTarget('sb-worker-'), () => postgresTarget('sb_worker')]) {
  const target = makeTarget();
  describe(`worker on ${target.name}`, () => {
    let a: Database;
    let b: Database;
    const jobs = () => a.db as Kysely<{ wt_job: JobRow }>;

    before(async () => {
      a = await target.open();
      b = await target.open();
      await migrate(a, [jobMigrations]);
    });

    after(async () => {
      await a?.close();
      await b?.close();
      await target.cleanup();
    });

    beforeEach(async () => {
      await jobs().deleteFrom('wt_job').execute();
    });

    const addJob = (id: string, dueAt = Date.now()) =>
      jobs()
        .insertInto('wt_job')
        .values({ id, due_at: dueAt, lease_until: null, lease_owner: null, state: 'pending' })
        .execute();

    /** One round of worker `owner` on `database`: claims due jobs, `work`s each, marks them done. */
    const claimRound =
      (database: Database, owner: string, leaseMs: number, work = async (_id: string) => {}) =>
      async () => {
        const rows = await claimDue<JobRow>(database, {
          table: 'wt_job',
          owner,
          leaseMs,
          limit: 10,
        });
        for (const row of rows) {
          await work(row.id);
          await (database.db as Kysely<{ wt_job: JobRow }>)
            .updateTable('wt_job')
            .set({ state: 'done', done_by: owner, lease_until: null })
            .where('id', '=', row.id)
            .where('lease_owner', '=', owner)
            .execute();
        }
        return { again: rows.length === 10 };
      };

    test('a wake-up during a round is not lost: the next round follows at once', async () => {
      const first = gate();
      let rounds = 0;
      const inner = claimRound(a, 'w1', 60_000);
      const worker = new Worker({
        name: 'test',
        // an hour: a lost wake-up would leave the job waiting far beyond the test's timeout
        intervalMs: 3_600_000,
        round: async () => {
          rounds += 1;
          if (rounds === 1) await first.promise;
          return inner();
        },
      });
      worker.start();
      await until(() => rounds === 1, 'the first round');
      await addJob('late');
      worker.wake();
      first.open();
      const row = async () =>
        jobs().selectFrom('wt_job').selectAll().where('id', '=', 'late').executeTakeFirst();
      await eventually(async () => (await row())?.state === 'done', 'the late job to be done');
      await worker.stop();
      assert.equal(rounds, 2);
    });

    test("a long job's lease is renewed: a second worker does not take it", async () => {
      await addJob('long');
      const leaseMs = 1_500;
      const [claimed] = await claimDue<JobRow>(a, {
        table: 'wt_job',
        owner: 'w1',
        leaseMs,
        limit: 1,
      });
      assert.ok(claimed);
      const firstLease = Number(claimed.lease_until);
      const release = gate();
      const taken: JobRow[] = [];
      const running = keepLease(
        a,
        [claimed.id],
        { table: 'wt_job', owner: 'w1', leaseMs, renewEveryMs: 100 },
        async () => {
          // past the first lease, the second worker tries
          while (Date.now() <= firstLease + 200) {
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          taken.push(
            ...(await claimDue<JobRow>(b, { table: 'wt_job', owner: 'w2', leaseMs, limit: 1 })),
          );
          await release.promise;
          return 'finished';
        },
      );
      await until(() => Date.now() > firstLease + 200, 'the first lease to end', 30_000);
      release.open();
      assert.equal(await running, 'finished');
      assert.deepEqual(taken, []);
      const row = await jobs()
        .selectFrom('wt_job')
        .selectAll()
        .where('id', '=', 'long')
        .executeTakeFirstOrThrow();
      assert.equal(row.lease_owner, 'w1');
      assert.ok(Number(row.lease_until) > firstLease, 'the lease was extended');
    });

    test("a crashed worker's lease expires and another worker takes the job", async () => {
      await addJob('orphan');
      // worker 1 claims and dies: it never finishes nor renews
      const [claimed] = await claimDue<JobRow>(a, {
        table: 'wt_job',
        owner: 'w1',
        leaseMs: 300,
        limit: 1,
      });
      assert.equal(claimed?.id, 'orphan');
      const worker = new Worker({
        name: 'test',
        intervalMs: 50,
        round: claimRound(b, 'w2', 60_000),
      });
      worker.start();
      let row: JobRow | undefined;
      await eventually(
        async () => {
          row = await jobs()
            .selectFrom('wt_job')
            .selectAll()
            .where('id', '=', 'orphan')
            .executeTakeFirst();
          return row?.state === 'done';
        },
        'the second worker to take the job',
        30_000,
      );
      await worker.stop();
      assert.equal(row?.done_by, 'w2');
    });

    test('graceful stop waits for the running work, and no round starts after it', async () => {
      await addJob('slow');
      const release = gate();
      const order: string[] = [];
      let started = 0;
      const worker = new Worker({
        name: 'test',
        intervalMs: 20,
        round: claimRound(a, 'w1', 60_000, async () => {
          started += 1;
          await release.promise;
          order.push('work finished');
        }),
      });
      worker.start();
      await until(() => started === 1, 'the job to start');
      const stopping = worker.stop().then(() => order.push('stop resolved'));
      for (let i = 0; i < 5; i += 1) await turn();
      assert.deepEqual(order, []);
      assert.equal(worker.busy, true);
      release.open();
      await stopping;
      assert.deepEqual(order, ['work finished', 'stop resolved']);
      const row = await jobs()
        .selectFrom('wt_job')
        .selectAll()
        .where('id', '=', 'slow')
        .executeTakeFirstOrThrow();
      assert.equal(row.state, 'done');
      await addJob('after-stop');
      worker.wake();
      await turn();
      assert.equal(worker.busy, false);
      assert.equal(worker.running, false);
    });

    test('renewal is fenced on the owner: a row another worker holds is reported lost', async () => {
      await addJob('stolen');
      await claimDue(a, { table: 'wt_job', owner: 'w1', leaseMs: 60_000, limit: 1 });
      await jobs().updateTable('wt_job').set({ lease_owner: 'w2' }).execute();
      assert.deepEqual(
        await renewLeases(a, ['stolen'], { table: 'wt_job', owner: 'w1', leaseMs: 60_000 }),
        [],
      );
      const lost: Array<string | number> = [];
      const release = gate();
      const running = keepLease(
        a,
        ['stolen'],
        {
          table: 'wt_job',
          owner: 'w1',
          leaseMs: 60_000,
          renewEveryMs: 10,
          onLost: (id) => {
            lost.push(id);
            release.open();
          },
        },
        () => release.promise,
      );
      await running;
      assert.deepEqual(lost, ['stolen']);
    });

    test('an error in a round is reported and the loop goes on', async () => {
      const errors: unknown[] = [];
      let rounds = 0;
      const worker = new Worker({
        name: 'test',
        intervalMs: 10,
        onError: (error) => errors.push(error),
        round: async () => {
          rounds += 1;
          if (rounds === 1) throw new Error('boom');
          return undefined;
        },
      });
      worker.start();
      await until(() => rounds >= 2, 'a second round');
      await worker.stop();
      assert.equal((errors[0] as Error).message, 'boom');
    });
  });
}
