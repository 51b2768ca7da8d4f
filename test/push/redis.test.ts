/**
 * Several processes: two push servers sharing PostgreSQL (devices) and Redis (call-response
 * routing). First two Fastify apps in this process, each with its own Redis connections; then
 * a second real OS process.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, before, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pino from 'pino';
import { createRedisCoordinator } from '../../src/push/wake.ts';
import type { Database } from '../../src/store/db.ts';
import { startProxy } from '../bus/helpers.ts';
import { until } from '../serve/helpers.ts';
import {
  basic,
  dropSchema,
  type FakeApns,
  fakeApp,
  metricValue,
  openTestDb,
  type PushServer,
  postForm,
  REDIS_URL,
  startFakeApns,
  startPushProcess,
  startPushServer,
  tempDir,
  testPushConfig,
} from './fakes.ts';

const ALICE = basic('alice', 'alice-password');
const SIP = '123456789';

/** NAKs with `reason` answered by the push server at `url` so far (the reason, not a time, tells "at once"). */
async function naks(url: string, reason: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return metricValue(text, 'switchboard_push_answers_total', { status: 'NAK', reason });
}

describe('two processes sharing Redis and PostgreSQL', () => {
  const dir = tempDir();
  const schema = `push_redis_${process.pid}_${Date.now().toString(36)}`;
  const keyPrefix = `sbtest:${randomBytes(4).toString('hex')}:`;
  let apns: FakeApns;
  let dbA: Database;
  let dbB: Database;
  let a: PushServer;
  let b: PushServer;

  before(async () => {
    apns = await startFakeApns(dir);
    dbA = await openTestDb('postgres', schema);
    dbB = await openTestDb('postgres', schema);
    // A long budget: no test waits it out, and a loaded machine must not end a held call early.
    const config = testPushConfig({ apns: apns.config, budgetMs: 15_000 });
    a = await startPushServer({ config, db: dbA, redis: { url: REDIS_URL, keyPrefix } });
    b = await startPushServer({ config, db: dbB, redis: { url: REDIS_URL, keyPrefix } });
  });

  after(async () => {
    await a.close();
    await b.close();
    await apns.close();
    await dbA.close();
    await dbB.close();
    await dropSchema(schema);
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    apns.pushes.length = 0;
    apns.onPush = undefined;
    await dbA.db.deleteFrom('push_device' as never).execute();
  });

  const incoming = (url: string, fields: Record<string, string> = {}) =>
    postForm(`${url}/api/incoming-call/`, {
      sip_user_id: SIP,
      phonenumber: '0501234567',
      ...fields,
    });

  test('device registered on B, call held by A, app answers B: A answers ACK', async () => {
    const reg = await postForm(
      `${b.url}/api/apns-device/`,
      { sip_user_id: SIP, token: 'iphone', app: 'com.x' },
      { authorization: ALICE },
    );
    assert.equal(reg.status, 201);
    let appStatus = 0;
    fakeApp(apns, {
      delayMs: 20,
      url: () => `${b.url}/api/call-response/`,
      onAnswer: (status) => (appStatus = status),
    });
    const answer = await incoming(a.url);
    assert.equal(answer.body, 'status=ACK');
    await sleep(20);
    assert.equal(appStatus, 202);
    // Round trip recorded by the holder (A), with the platform.
    const metrics = await (await fetch(`${a.url}/metrics`)).text();
    assert.equal(
      metricValue(metrics, 'switchboard_push_wakeup_roundtrip_seconds_count', {
        platform: 'apns',
      }),
      1,
    );
    // The key is released: a late answer on either process is 404.
    const push = apns.pushes[0];
    for (const url of [a.url, b.url]) {
      const late = await postForm(`${url}/api/call-response/`, {
        unique_key: String(push?.payload.unique_key),
        message_start_time: String(push?.payload.message_start_time),
      });
      assert.equal(late.status, 404);
    }
  });

  test('unavailable answered on B: A answers NAK at once', async () => {
    await a.push.devices.register({ platform: 'apns', sipUserId: SIP, token: 'x', app: 'com.x' });
    fakeApp(apns, { url: () => `${b.url}/api/call-response/`, available: () => false });
    const unavailable = await naks(a.url, 'unavailable');
    assert.equal((await incoming(a.url)).body, 'status=NAK');
    assert.equal(await naks(a.url, 'unavailable'), unavailable + 1, "B's answer reached A");
  });

  test('caller hangup seen by B releases the call held by A', async () => {
    await a.push.devices.register({ platform: 'apns', sipUserId: SIP, token: 'x', app: 'com.x' });
    const pending = incoming(a.url, { call_id: 'call-77' });
    await sleep(150);
    const hungUp = await naks(a.url, 'caller_hangup');
    b.push.wake.callerHungUp('call-77');
    assert.equal((await pending).body, 'status=NAK');
    assert.equal(await naks(a.url, 'caller_hangup'), hungUp + 1, "B's hangup reached A");
  });

  test('one call_id held for two SIP accounts on two processes: each answer reaches its own call', async () => {
    const other = '987654321';
    await a.push.devices.register({
      platform: 'apns',
      sipUserId: SIP,
      token: 'phone-x',
      app: 'com.x',
    });
    await a.push.devices.register({
      platform: 'apns',
      sipUserId: other,
      token: 'phone-y',
      app: 'com.x',
    });
    // Phone Y answers through A, which holds the other account's call under the same key;
    // phone X stays silent.
    const answers: number[] = [];
    fakeApp(apns, {
      url: () => `${a.url}/api/call-response/`,
      available: (p) => (p.token === 'phone-y' ? true : undefined),
      extra: () => ({ sip_user_id: other }),
      onAnswer: (status) => answers.push(status),
    });
    const x = incoming(a.url, { call_id: 'queue-1' });
    await until(() => apns.pushes.some((p) => p.token === 'phone-x'), 'X pushed');
    const y = incoming(b.url, { call_id: 'queue-1', sip_user_id: other });
    assert.equal((await y).body, 'status=ACK');
    assert.deepEqual(answers, [202]);
    assert.equal(a.push.wake.heldCount, 1, "X's call is still waiting on A");
    const keys = apns.pushes
      .filter((p) => p.payload.type === 'call')
      .map((p) => p.payload.unique_key);
    assert.deepEqual([...new Set(keys)], ['queue-1']);
    b.push.wake.callerHungUp('queue-1');
    assert.equal((await x).body, 'status=NAK');
  });

  test('a flood of random keys on B changes nothing; the real answer still works', async () => {
    await a.push.devices.register({ platform: 'apns', sipUserId: SIP, token: 'x', app: 'com.x' });
    let key = '';
    apns.onPush = (p) => {
      if (p.payload.type === 'call') key = String(p.payload.unique_key);
    };
    const pending = incoming(a.url);
    await sleep(100);
    const statuses = await Promise.all(
      Array.from({ length: 300 }, () =>
        postForm(`${b.url}/api/call-response/`, {
          unique_key: randomBytes(16).toString('hex'),
          message_start_time: String(Date.now() / 1000),
        }).then((r) => r.status),
      ),
    );
    assert.ok(statuses.every((s) => s === 404));
    assert.equal(a.push.wake.heldCount, 1);
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${keyPrefix}*`);
    await redis.quit();
    assert.equal(keys.length, 1, 'only the held call is in Redis');
    const ok = await postForm(`${b.url}/api/call-response/`, {
      unique_key: key,
      message_start_time: String(Date.now() / 1000),
    });
    assert.equal(ok.status, 202);
    assert.equal((await pending).body, 'status=ACK');
  });

  test('a second OS process: call held there, app answers this process', async () => {
    const child = await startPushProcess({
      push: testPushConfig({ apns: apns.config, budgetMs: 2000 }),
      schema,
      keyPrefix,
    });
    try {
      const reg = await postForm(
        `${child.url}/api/apns-device/`,
        { sip_user_id: SIP, token: 'iphone', app: 'com.x' },
        { authorization: ALICE },
      );
      assert.equal(reg.status, 201);
      fakeApp(apns, { delayMs: 20, url: () => `${a.url}/api/call-response/` });
      assert.equal((await incoming(child.url)).body, 'status=ACK');
      // And the other way round: held here, answered in the child.
      fakeApp(apns, { delayMs: 20, url: () => `${child.url}/api/call-response/` });
      assert.equal((await incoming(a.url)).body, 'status=ACK');
    } finally {
      await child.stop();
    }
  });
});

describe('redis coordinator: fire-and-forget commands that fail are logged', () => {
  test('a hangup broadcast and a release with Redis unreachable: one warning each, with the call', async () => {
    const proxy = await startProxy(Number(new URL(REDIS_URL).port || 6379));
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino(
      { level: 'warn' },
      { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const coordinator = createRedisCoordinator({
      url: `redis://127.0.0.1:${proxy.port}`,
      keyPrefix: `sbtest:${randomBytes(4).toString('hex')}:`,
      commandTimeoutMs: 300,
      logger,
    });
    try {
      await coordinator.start({ onHangup() {}, onResponse: () => false });
      await coordinator.hold('key-1', 10_000);
      await proxy.cut();
      coordinator.broadcastHangup('call-1');
      coordinator.release('key-1');
      const warned = (field: string, value: string) =>
        lines.some((line) => line[field] === value && /push: cannot/.test(String(line.msg)));
      await until(
        () => warned('callId', 'call-1') && warned('uniqueKey', 'key-1'),
        'a warning for the broadcast and one for the release',
      );
      const broadcast = lines.find((line) => line.callId === 'call-1');
      assert.match(String(broadcast?.msg), /no cancel push/);
    } finally {
      await coordinator.stop();
      await proxy.close();
    }
  });
});
