// Errors of the callout service are never swallowed (issue 13 §7): a dial that fails is
// logged once with its attempt and the attempt ends `failed`; a stop that leaves calls in
// progress says so (how many; they become unknown after their lease). SQLite.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import pino from 'pino';
import type { CalloutProvider, DialRequest } from '../../src/callout/index.ts';
import { createDryRunProvider } from '../../src/callout/providers/dryrun.ts';
import { calloutMigrations, loadEvent } from '../../src/callout/repository.ts';
import { CalloutService, type CallRequest } from '../../src/callout/service.ts';
import { migrate, openDatabase } from '../../src/store/db.ts';
import { testDb, until } from './helpers.ts';

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

function request(): CallRequest {
  return {
    testflg: 0,
    hostname: 'db1',
    operator: 'test',
    calltype: 1,
    frequency: 1,
    language: 'en',
    message: 'Disk full',
    headid: 2,
    footid: 1,
    headmsg: 'Head',
    footmsg: 'Foot',
    addressees: [{ order: 1, userid: 'u1', telno: '701', name: 'A', intervalS: 0 }],
  };
}

/** A pino logger writing its lines (parsed) to `lines`. */
function capture(lines: Array<Record<string, unknown>>) {
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return pino({ level: 'info' }, stream);
}

async function service(provider: CalloutProvider, lines: Array<Record<string, unknown>>) {
  const db = testDb('sqlite');
  const database = await openDatabase(db.url);
  cleanups.push(() => database.close());
  await migrate(database, [calloutMigrations]);
  const s = new CalloutService({
    database,
    providers: {
      [provider.name]: provider,
      dryrun: createDryRunProvider({ delayMs: 1, answer: '1', numbers: {} }),
    },
    defaultProvider: provider.name,
    timeScale: 1,
    pollIntervalMs: 50,
    attemptLeaseMs: 60_000,
    ringTimeoutMs: 1000,
    batchSize: 10,
    logger: capture(lines),
  });
  return { s, database };
}

test('a dial that fails is logged once with its attempt, and the attempt ends failed', async () => {
  const lines: Array<Record<string, unknown>> = [];
  const provider: CalloutProvider = {
    name: 'broken',
    dial: async () => {
      throw new Error('trunk refused');
    },
  };
  const { s, database } = await service(provider, lines);
  cleanups.push(() => s.stop(0));
  s.start();
  const id = await s.createEvent(request());
  await until(() => lines.some((l) => l.msg === 'callout: call finished'));
  const history = await loadEvent(database, id);
  const attempt = history?.attempts[0];
  assert.equal(attempt?.state, 'done');
  assert.equal(attempt?.outcome, 'failed');
  const failed = lines.filter((l) => l.msg === 'callout: dial failed');
  assert.equal(failed.length, 1);
  assert.equal(failed[0]?.attempt, attempt?.id);
  assert.equal((failed[0]?.err as { message?: string })?.message, 'trunk refused');
});

test('a stop that leaves calls in progress logs how many', async () => {
  const lines: Array<Record<string, unknown>> = [];
  const dialled: DialRequest[] = [];
  const provider: CalloutProvider = {
    name: 'endless',
    // the call never ends while the test runs
    dial: (req) => {
      dialled.push(req);
      return new Promise<void>(() => {});
    },
  };
  const { s } = await service(provider, lines);
  s.start();
  await s.createEvent(request());
  await until(() => dialled.length === 1);
  await s.stop(0);
  const left = lines.filter((l) =>
    String(l.msg).startsWith('callout: stopped with calls in progress'),
  );
  assert.equal(left.length, 1);
  assert.equal(left[0]?.calls, 1);
});
