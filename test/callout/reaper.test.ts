// The callout reaper (issue 13 §7): an attempt whose lease ran out without an outcome becomes
// `unknown`, its person "no answer" (3) and its event due now, in ONE transaction: when the
// state change fails, the attempt is not reaped either (and is reaped, whole, by a later
// round). On SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { sql } from 'kysely';
import {
  type AttemptRow,
  calloutDb,
  calloutMigrations,
  type EventRow,
  insertEvents,
  type PersonRow,
  reapExpiredAttempts,
} from '../../src/callout/repository.ts';
import { EVENT_STATUS } from '../../src/callout/rule.ts';
import { type Database, migrate, openDatabase } from '../../src/store/db.ts';
import { type Kind, testDb } from './helpers.ts';

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function open(kind: Kind): Promise<Database> {
  const db = testDb(kind);
  cleanups.push(() => db.drop());
  const database = await openDatabase(db.url, db.schema ? { schema: db.schema } : {});
  cleanups.push(() => database.close());
  await migrate(database, [calloutMigrations]);
  return database;
}

/** An event in progress with one person called once, whose attempt's lease ended at `leaseUntil`. */
async function seed(database: Database, leaseUntil: number) {
  const event: EventRow = {
    id: 'e1',
    status: EVENT_STATUS.inProgress,
    testflg: 0,
    provider: 'asterisk',
    hostname: 'db1',
    operator: 'test',
    calltype: 1,
    frequency: 2,
    language: 'en',
    message: 'Disk full',
    headid: 2,
    footid: 1,
    headmsg: 'Head',
    footmsg: 'Foot',
    last_order: 1,
    created_at: leaseUntil - 60_000,
    started_at: leaseUntil - 60_000,
    finished_at: null,
    due_at: leaseUntil + 3_600_000,
    lease_until: null,
    lease_owner: null,
  };
  const person: PersonRow = {
    id: 'p1',
    event_id: 'e1',
    numorder: 1,
    ghid: 'a',
    name: 'A',
    telno: '501',
    sleep_s: 1,
    calls: 1,
    latest_at: leaseUntil - 60_000,
    status: null,
  };
  const attempt: AttemptRow = {
    id: 'a1',
    event_id: 'e1',
    person_id: 'p1',
    n: 1,
    state: 'dialing',
    outcome: null,
    digit: null,
    provider: 'asterisk',
    provider_call_id: null,
    placed_at: leaseUntil - 60_000,
    due_at: leaseUntil - 60_000,
    ended_at: null,
    lease_until: leaseUntil,
    lease_owner: 'dead-worker',
  };
  const db = calloutDb(database);
  await db.transaction().execute((trx) => insertEvents(trx, [{ event, people: [person] }]));
  await db.insertInto('callout_attempt').values(attempt).execute();
}

async function rows(database: Database) {
  const db = calloutDb(database);
  return {
    attempt: await db.selectFrom('callout_attempt').selectAll().executeTakeFirstOrThrow(),
    person: await db.selectFrom('callout_person').selectAll().executeTakeFirstOrThrow(),
    event: await db.selectFrom('callout_event').selectAll().executeTakeFirstOrThrow(),
  };
}

/** Makes every update of `callout_person` fail (a refused state change). */
async function refusePersonUpdates(database: Database): Promise<() => Promise<void>> {
  if (database.dialect === 'sqlite') {
    await sql`create trigger refuse_person before update on callout_person
      begin select raise(abort, 'refused by test'); end`.execute(database.db);
    return async () => {
      await sql`drop trigger refuse_person`.execute(database.db);
    };
  }
  await sql`create function refuse_person() returns trigger language plpgsql as
    $$ begin raise exception 'refused by test'; end $$`.execute(database.db);
  await sql`create trigger refuse_person before update on callout_person
    for each row execute function refuse_person()`.execute(database.db);
  return async () => {
    await sql`drop trigger refuse_person on callout_person`.execute(database.db);
  };
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`callout reaper (${kind})`, () => {
    test('reaping an attempt and the state change are one transaction', async () => {
      const database = await open(kind);
      const now = Date.now();
      await seed(database, now - 1_000);
      const allow = await refusePersonUpdates(database);
      await assert.rejects(reapExpiredAttempts(database, now), /refused by test/);
      // nothing of it happened: the attempt is still dialing, not unknown with its person
      // and event untouched
      let state = await rows(database);
      assert.equal(state.attempt.state, 'dialing');
      assert.equal(state.attempt.outcome, null);
      assert.equal(state.person.status, null);
      assert.equal(Number(state.event.due_at), now - 1_000 + 3_600_000);
      await allow();
      const reaped = await reapExpiredAttempts(database, now);
      assert.deepEqual(
        reaped.map((a) => [a.id, a.state, a.outcome]),
        [['a1', 'unknown', 'unknown']],
      );
      state = await rows(database);
      assert.equal(state.attempt.state, 'unknown');
      assert.equal(state.person.status, 3);
      assert.equal(Number(state.event.due_at), now);
      // a second round finds nothing more
      assert.deepEqual(await reapExpiredAttempts(database, now + 1), []);
    });

    test('an attempt whose lease has not run out is not reaped', async () => {
      const database = await open(kind);
      const now = Date.now();
      await seed(database, now + 60_000);
      assert.deepEqual(await reapExpiredAttempts(database, now), []);
      const state = await rows(database);
      assert.equal(state.attempt.state, 'dialing');
      assert.equal(state.person.status, null);
    });
  });
}
