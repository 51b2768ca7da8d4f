// Issue 10, §3: a key or an outcome that arrived while the database was unreachable was
// dropped after one retry: the escalation stalled for the attempt's lease and then counted the
// press as no answer. The APIs answered 500. Now:
//
// - results are kept in memory, in order, and written when the database is back: the
//   escalation finishes as if nothing happened (nobody else is called);
// - the APIs answer 503 with `Retry-After` in each API's error shape (Barista: error 2; Gong:
//   `{error, code}`; push: text), and `/readyz` says the database is not ready, then ready
//   again by itself.
//
// PostgreSQL: the real server behind a TCP proxy that is cut and restored (the server itself
// is never stopped). SQLite: "unreachable" is the file locked by another process's write
// transaction for longer than `database.busyTimeoutMs` (reads keep working in WAL mode).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import SQLite from 'better-sqlite3';
import type { AmiEvent } from '../../src/ami/message.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { featureModules } from '../../src/serve/modules.ts';
import { createService, type Service } from '../../src/serve/service.ts';
import { type Simulator, startSimulator } from '../../src/sim/index.ts';
import { metricValue, startProxy } from '../bus/helpers.ts';
import {
  calloutConfig,
  calloutDialplan,
  getHistory,
  postCurlStyle,
  startServe,
  type TestDb,
  tempDir,
  testDb,
  until,
  waitHistory,
} from './helpers.ts';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
});

const request = (people: string[]) =>
  [
    ['testflg', '0'],
    ['hostname', 'db1'],
    ['operator', 'zabbix'],
    ['calltype', '1'],
    ['frequency', '1'],
    ['language', 'en'],
    ['message', 'Disk full'],
    ['headid', '2'],
    ['footid', '1'],
    ...people.map((p) => ['addressee', p]),
  ] as Array<[string, string]>;

/** A simulator where 801 answers and presses 1 after 2 s (then hangs up), 802 presses 1 at once. */
async function simulator(): Promise<Simulator> {
  const sim = await startSimulator({
    port: 0,
    dtmfDurationMs: 10,
    dialplan: calloutDialplan(10_000),
    scripts: {
      '801': { answerAfterMs: 50, dtmf: '1', dtmfAfterMs: 2_000, hangupAfterMs: 8_000 },
      '802': { answerAfterMs: 50, dtmf: '1', dtmfAfterMs: 50, hangupAfterMs: 5_000 },
    },
  });
  cleanups.push(() => sim.close());
  return sim;
}

/** Resolves once the simulator has sent the key and the hang-up of the call to `number`. */
function keyAndHangup(sim: Simulator): { done: () => boolean } {
  let key = false;
  let hangup = false;
  sim.on('event', (event: AmiEvent) => {
    if (event.Event === 'UserEvent' && event.UserEvent === 'SwitchboardDTMF') key = true;
    if (key && event.Event === 'Hangup') hangup = true;
  });
  return { done: () => key && hangup };
}

async function readyz(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${url}/readyz`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

function registryOf(service: Service) {
  const registry = service.context?.metrics.registry;
  assert.ok(registry);
  return registry;
}

/**
 * The escalation of the test: 801 answers; then the database becomes unreachable (`cut`);
 * 801 presses 1 and hangs up; `during()` runs; the database comes back (`restore`). The key
 * must count and 802 must never be called.
 */
async function escalationAcrossOutage(options: {
  service: Service;
  url: string;
  sim: Simulator;
  cut: () => Promise<void> | void;
  restore: () => Promise<void> | void;
  during: () => Promise<void>;
}): Promise<void> {
  const { service, url, sim } = options;
  const client = service.context?.ami.clients[0];
  assert.ok(client);
  await until(() => client.connected);
  let answered = false;
  client.on('event', (event: AmiEvent) => {
    if (event.Event === 'OriginateResponse' && event.Reason === '4') answered = true;
  });
  const call = keyAndHangup(sim);
  const response = await postCurlStyle(url, request(['1:a:801:A:1', '2:b:802:B:1']));
  assert.equal(response.status, 200);
  const { eventid } = (await response.json()) as { eventid: string };
  await until(() => answered);
  await options.cut();
  const registry = registryOf(service);
  const pending = () => metricValue(registry, 'switchboard_callout_results_pending', {});
  // The key and the hang-up arrive during the outage; the key is kept, not written.
  await until(async () => call.done() && (await pending()) >= 1, 20_000);
  await options.during();
  assert.ok((await pending()) >= 1, 'the key is still waiting for the database');
  await options.restore();
  const h = await waitHistory(url, eventid, (x) => x.eventstatus === '2', 30_000);
  assert.deepEqual(
    h.result.map((r) => [r.numofcall, r.status]),
    [
      ['1', '1'], // pressed during the outage, written after it
      ['0', ''], // so never called
    ],
  );
  assert.equal(sim.originates().filter((o) => o.number === '802').length, 0);
  await until(async () => (await pending()) === 0);
  const attempts = await service.context?.db.db
    .selectFrom('callout_attempt' as never)
    .select(['state', 'outcome', 'digit'] as never[])
    .execute();
  assert.deepEqual(attempts, [{ state: 'done', outcome: 'answered', digit: '1' }]);
  for (const reason of ['rejected', 'queue_full']) {
    assert.equal(
      await metricValue(registry, 'switchboard_callout_results_dropped_total', { reason }),
      0,
    );
  }
  await until(async () => (await readyz(url)).status === 200, 20_000);
}

test('PostgreSQL cut behind a proxy: keys kept and written after, 503 + Retry-After in every API shape, /readyz not ready then ready', {
  timeout: 120_000,
}, async () => {
  const proxy = await startProxy(5432);
  cleanups.push(() => proxy.close());
  const db: TestDb = testDb('postgres');
  cleanups.push(() => db.drop());
  const sim = await simulator();
  const dir = tempDir();
  mkdirSync(join(dir, 'spool', 'outgoing'), { recursive: true });
  const config: Config = loadConfig({
    text: [
      'announce:',
      `  soundsDir: ${join(dir, 'sounds')}`,
      `  spoolDir: ${join(dir, 'spool', 'outgoing')}`,
      'push:',
      '  users:',
      '    - {username: alice, password: alice-password, sipUserIds: ["123456789"]}',
    ].join('\n'),
    env: {},
    overrides: {
      listen: '127.0.0.1:0',
      database: `postgres://postgres@127.0.0.1:${proxy.port}/test`,
      ami: [sim.url()],
    },
  });
  config.log.level = 'silent';
  config.database.connectTimeoutMs = 1_000;
  config.database.retryAfterS = 7;
  config.callout.pollIntervalMs = 20;
  config.callout.timeScale = 0.01;
  config.callout.attemptLeaseMs = 60_000;
  config.callout.mediaDir = join(dir, 'media');
  for (const server of config.ami.servers) {
    server.reconnectMinMs = 20;
    server.reconnectMaxMs = 100;
    server.pingIntervalMs = 0;
  }
  const service = createService({
    config,
    modules: featureModules(),
    ...(db.schema ? { database: { schema: db.schema } } : {}),
  });
  const { url } = await service.start();
  cleanups.push(() => service.stop());
  assert.equal((await readyz(url)).status, 200);

  await escalationAcrossOutage({
    service,
    url,
    sim,
    cut: () => proxy.cut(),
    restore: () => proxy.restore(),
    async during() {
      // Barista: error 2 (system error), 503, Retry-After
      const post = await postCurlStyle(url, request(['1:a:801:A:1']));
      assert.equal(post.status, 503);
      assert.equal(post.headers.get('retry-after'), '7');
      const postBody = (await post.json()) as Record<string, string>;
      assert.equal(postBody.success, 'false');
      assert.equal(postBody.error, '2');
      assert.match(postBody.message ?? '', /database/);
      const get = await fetch(`${url}/api/v1/call?eventid=01ARZ3NDEKTSV4RRFFQ69G5FAV`);
      assert.equal(get.status, 503);
      assert.equal(get.headers.get('retry-after'), '7');
      assert.deepEqual(
        { ...((await get.json()) as Record<string, string>), message: undefined },
        { success: 'false', error: '2', message: undefined },
      );
      // Gong: {error, code}
      const gong = await fetch(`${url}/messages`);
      assert.equal(gong.status, 503);
      assert.equal(gong.headers.get('retry-after'), '7');
      const gongBody = (await gong.json()) as Record<string, string>;
      assert.equal(gongBody.code, 'unavailable');
      assert.match(gongBody.error ?? '', /database/);
      // push middleware: text
      const push = await fetch(`${url}/api/apns-device/`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from('alice:alice-password').toString('base64')}`,
        },
        body: new URLSearchParams({
          sip_user_id: '123456789',
          token: 'a'.repeat(64),
          app: 'com.voipgrid.vialer',
        }).toString(),
      });
      assert.equal(push.status, 503);
      assert.equal(push.headers.get('retry-after'), '7');
      assert.equal(await push.text(), 'service unavailable');
      // readiness: the database check fails
      const ready = await readyz(url);
      assert.equal(ready.status, 503, JSON.stringify(ready.body));
      assert.equal(
        (ready.body.checks as Record<string, { ok: boolean }>).database?.ok,
        false,
        JSON.stringify(ready.body),
      );
    },
  });
});

test('SQLite locked by another process longer than busyTimeoutMs: keys kept and written after, POST 503, /readyz not ready then ready', {
  timeout: 120_000,
}, async () => {
  const db = testDb('sqlite');
  const sim = await simulator();
  const config = calloutConfig(db, '', sim.url());
  config.database.busyTimeoutMs = 50;
  config.callout.attemptLeaseMs = 60_000;
  const { service, url } = await startServe(config, db);
  cleanups.push(() => service.stop());
  // Another connection to the file (as another process would hold it: sqlite3 shell, backup).
  const locker = new SQLite(db.url);
  cleanups.push(() => locker.close());
  await escalationAcrossOutage({
    service,
    url,
    sim,
    cut: () => {
      locker.exec('BEGIN IMMEDIATE');
    },
    restore: () => {
      locker.exec('ROLLBACK');
    },
    async during() {
      const post = await postCurlStyle(url, request(['1:a:801:A:1']));
      assert.equal(post.status, 503);
      assert.equal(post.headers.get('retry-after'), '5');
      const body = (await post.json()) as Record<string, string>;
      assert.equal(body.error, '2');
      const ready = await readyz(url);
      assert.equal(ready.status, 503, JSON.stringify(ready.body));
      assert.match(
        String((ready.body.checks as Record<string, { detail?: string }>).database?.detail),
        /SQLITE_BUSY/,
      );
      // reads still work (WAL): the history answers, without the key yet
      const eventid = (
        (await service.context?.db.db
          .selectFrom('callout_event' as never)
          .select('id' as never)
          .executeTakeFirst()) as { id: string } | undefined
      )?.id;
      assert.ok(eventid);
      const h = await getHistory(url, eventid);
      assert.equal(h.result[0]?.status, '', 'the key is not written yet');
    },
  });
});
