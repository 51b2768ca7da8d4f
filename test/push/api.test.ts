/**
 * The seed's whole flow against a real HTTP server with the push module, in one process:
 * fake PBX (HTTP client), fake APNs (HTTP/2 + TLS), fake FCM (OAuth + send), fake app
 * (answers pushes with call-responses), SQLite store.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, before, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Database } from '../../src/store/db.ts';
import { until } from '../serve/helpers.ts';
import {
  basic,
  type FakeApns,
  type FakeFcm,
  fakeApp,
  metricValue,
  openTestDb,
  type PushServer,
  postForm,
  startFakeApns,
  startFakeFcm,
  startPushServer,
  tempDir,
  testPushConfig,
} from './fakes.ts';

const ALICE = basic('alice', 'alice-password');
const SIP = '123456789';

describe('push API in one process (fake PBX, APNs, FCM, app)', () => {
  const dir = tempDir();
  let apns: FakeApns;
  let fcm: FakeFcm;
  let db: Database;
  let s: PushServer;

  before(async () => {
    apns = await startFakeApns(dir);
    fcm = await startFakeFcm(dir);
    db = await openTestDb('sqlite');
    s = await startPushServer({
      config: testPushConfig({ apns: apns.config, fcm: fcm.config, devicesPerAccount: 'several' }),
      db,
    });
  });

  after(async () => {
    await s.close();
    await apns.close();
    await fcm.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    apns.pushes.length = 0;
    fcm.pushes.length = 0;
    apns.behaviour.clear();
    fcm.behaviour.clear();
    apns.onPush = undefined;
    fcm.onPush = undefined;
    await db.db.deleteFrom('push_device' as never).execute();
  });

  async function register(path: string, token: string, extra: Record<string, string> = {}) {
    return postForm(
      `${s.url}/api/${path}/`,
      { sip_user_id: SIP, token, app: 'com.example.app', ...extra },
      { authorization: ALICE },
    );
  }

  function incoming(fields: Record<string, string> = {}) {
    return postForm(`${s.url}/api/incoming-call/`, {
      sip_user_id: SIP,
      phonenumber: '+31 (0)50 1234567',
      caller_id: 'Bob',
      call_id: '1700000000.42',
      ...fields,
    });
  }

  /** How many NAKs with `reason` this server has answered so far (what "at once" means: the reason, not a time). */
  async function naks(reason: string): Promise<number> {
    const text = await (await fetch(`${s.url}/metrics`)).text();
    return metricValue(text, 'switchboard_push_answers_total', { status: 'NAK', reason });
  }

  test('register an APNs device, incoming call, push, call-response, status=ACK', async () => {
    assert.equal((await register('apns-device', 'apns-token-1', { sandbox: 'true' })).status, 201);
    assert.equal((await register('apns-device', 'apns-token-1', { sandbox: 'true' })).status, 200);
    let appAnswer = 0;
    fakeApp(apns, { delayMs: 50, onAnswer: (status) => (appAnswer = status) });
    const answer = await incoming();
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'status=ACK');
    assert.match(answer.contentType, /^text\/plain/);
    await sleep(20);
    assert.equal(appAnswer, 202);
    assert.equal(apns.pushes.length, 1);
    const push = apns.pushes[0];
    assert.ok(push);
    assert.equal(push.authority, `localhost:${apns.port}`, 'sandbox device → sandbox host');
    assert.equal(push.headers['apns-topic'], 'com.example.voip-app.voip');
    assert.deepEqual(Object.keys(push.payload).sort(), [
      'aps',
      'attempt',
      'caller_id',
      'message_start_time',
      'phonenumber',
      'response_api',
      'type',
      'unique_key',
    ]);
    assert.deepEqual(push.payload.aps, {}, 'an empty aps dictionary, as apns2 sent');
    assert.equal(push.payload.type, 'call');
    assert.equal(push.payload.unique_key, '1700000000.42', "the PBX's call_id is the key");
    assert.equal(push.payload.phonenumber, '+31 (0)50 1234567');
    assert.equal(push.payload.caller_id, 'Bob');
    assert.equal(push.payload.attempt, 1);
    assert.equal(push.payload.response_api, `${s.url}/api/call-response/`);
    assert.equal(typeof push.payload.message_start_time, 'number');
    // The same key again: the call is over → 404.
    const late = await postForm(`${s.url}/api/call-response/`, {
      unique_key: String(push.payload.unique_key),
      message_start_time: String(push.payload.message_start_time),
    });
    assert.equal(late.status, 404);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.ok(metricValue(metrics, 'switchboard_push_answers_total', { status: 'ACK' }) >= 1);
    assert.ok(
      metricValue(metrics, 'switchboard_push_wakeup_roundtrip_seconds_count', {
        platform: 'apns',
      }) >= 1,
    );
    assert.ok(
      metricValue(metrics, 'switchboard_push_notifications_sent_total', {
        platform: 'apns',
        kind: 'call',
      }) >= 1,
    );
  });

  test('FCM device (android-device and gcm-device) gets a high-priority TTL-0 data push', async () => {
    assert.equal((await register('android-device', 'fcm-token-1')).status, 201);
    fakeApp(fcm, { delayMs: 10 });
    assert.equal((await incoming()).body, 'status=ACK');
    const push = fcm.pushes[0];
    assert.ok(push);
    assert.deepEqual(JSON.parse(push.headers.android ?? '{}'), { priority: 'HIGH', ttl: '0s' });
    assert.equal(push.payload.type, 'call');
    assert.equal(push.payload.attempt, '1');
    assert.match(String(push.payload.message_start_time), /^\d{10}\.\d{3}0000$/);
    assert.equal((await register('gcm-device', 'fcm-token-2')).status, 201);
  });

  test('each step logs one info line with its ids, never the device token', async () => {
    s.logs.lines.length = 0;
    assert.equal((await register('apns-device', 'apns-token-logged-never')).status, 201);
    fakeApp(apns, { delayMs: 10 });
    assert.equal((await incoming()).body, 'status=ACK');
    await until(() => s.logs.text().includes('"push: ACK"'), 'the ACK line');
    const entries = () =>
      s.logs.lines.map((line) => JSON.parse(line) as Record<string, unknown> & { msg: string });
    const one = (msg: string) => {
      const found = entries().filter((e) => e.msg === msg);
      assert.equal(found.length, 1, `${msg}: ${s.logs.text()}`);
      return found[0] as Record<string, unknown>;
    };
    const sent = one('push: notification sent');
    assert.deepEqual(
      [sent.uniqueKey, sent.platform, sent.kind, sent.attempt, typeof sent.device],
      ['1700000000.42', 'apns', 'call', 1, 'string'],
    );
    const answered = one('push: app answered');
    assert.deepEqual(
      [answered.uniqueKey, answered.device, answered.available],
      ['1700000000.42', sent.device, true],
    );
    const ack = one('push: ACK');
    assert.deepEqual([ack.uniqueKey, ack.reason, ack.level], ['1700000000.42', 'available', 30]);
    await db.db.deleteFrom('push_device' as never).execute();
    assert.equal((await incoming({ call_id: '1700000000.43' })).body, 'status=NAK');
    const nak = one('push: NAK');
    assert.deepEqual([nak.uniqueKey, nak.reason], ['1700000000.43', 'no_device']);
    assert.ok(!s.logs.text().includes('apns-token-logged-never'), 'no device token in the logs');
  });

  test('no device: NAK at once', async () => {
    const before = await naks('no_device');
    assert.equal((await incoming()).body, 'status=NAK');
    assert.equal(await naks('no_device'), before + 1);
    assert.equal(apns.pushes.length + fcm.pushes.length, 0);
  });

  test('app answers unavailable: NAK at once', async () => {
    await register('apns-device', 'apns-token-1');
    fakeApp(apns, { delayMs: 20, available: () => false });
    const [unavailable, timeout] = [await naks('unavailable'), await naks('timeout')];
    assert.equal((await incoming()).body, 'status=NAK');
    assert.equal(await naks('unavailable'), unavailable + 1, 'answered by the app');
    assert.equal(await naks('timeout'), timeout, 'not by the budget');
  });

  test('nobody answers: pushes re-sent every interval (max 3), NAK at the budget', async () => {
    await register('apns-device', 'apns-token-1');
    const timeout = await naks('timeout');
    assert.equal((await incoming()).body, 'status=NAK');
    assert.equal(await naks('timeout'), timeout + 1, 'NAK at the budget');
    const calls = apns.pushes.filter((p) => p.payload.type === 'call');
    assert.deepEqual(
      calls.map((p) => p.payload.attempt),
      [1, 2, 3],
    );
    assert.equal(new Set(calls.map((p) => p.payload.message_start_time)).size, 3);
    await sleep(100);
    // Abandoned: the woken device is told to stop ringing.
    assert.equal(apns.pushes.filter((p) => p.payload.type === 'cancel').length, 1);
  });

  test('several devices: ACK on the first available, cancel push to the others', async () => {
    await register('apns-device', 'iphone');
    await register('apns-device', 'ipad');
    await register('android-device', 'pixel');
    fakeApp(apns, { delayMs: 30, available: (p) => (p.token === 'ipad' ? true : undefined) });
    assert.equal((await incoming()).body, 'status=ACK');
    await sleep(150);
    const cancels = [...apns.pushes, ...fcm.pushes].filter((p) => p.payload.type === 'cancel');
    assert.deepEqual(cancels.map((p) => p.token).sort(), ['iphone', 'pixel']);
    assert.equal(cancels[0]?.payload.reason, 'answered_elsewhere');
  });

  test('token rejected (APNs 410 / FCM 404 UNREGISTERED): device removed, NAK at once', async () => {
    await register('apns-device', 'dead-apns');
    await register('gcm-device', 'dead-fcm');
    apns.behaviour.set('dead-apns', 'unregistered');
    fcm.behaviour.set('dead-fcm', 'invalid');
    const timeout = await naks('timeout');
    assert.equal((await incoming()).body, 'status=NAK');
    assert.equal(await naks('timeout'), timeout, 'not waiting out the budget');
    const left = await s.push.devices.listBySipUser(SIP);
    assert.equal(left.length, 0);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.ok(
      metricValue(metrics, 'switchboard_push_answers_total', {
        status: 'NAK',
        reason: 'token_rejected',
      }) >= 1,
    );
    for (const platform of ['apns', 'fcm']) {
      assert.ok(metricValue(metrics, 'switchboard_push_devices_removed_total', { platform }) >= 1);
    }
  });

  test('one token rejected, another device answers: ACK', async () => {
    await register('apns-device', 'dead-apns');
    await register('apns-device', 'good-apns');
    apns.behaviour.set('dead-apns', 'invalid');
    fakeApp(apns, { delayMs: 50 });
    assert.equal((await incoming()).body, 'status=ACK');
    const left = await s.push.devices.listBySipUser(SIP);
    assert.deepEqual(
      left.map((d) => d.token),
      ['good-apns'],
    );
  });

  test('caller hangs up before anyone answers: NAK and cancel push', async () => {
    await register('apns-device', 'iphone');
    const pending = incoming({ call_id: '1700000001.7' });
    await sleep(150);
    s.push.handleCallEvent({
      event: 'hangup',
      reason: 'cancelled',
      caller: {
        name: 'PJSIP/trunk-00000001',
        uniqueid: '1700000001.7',
        linkedid: '1700000001.7',
        state: 4,
        accountCode: '',
        callerId: { name: '', num: '' },
        connectedLine: { name: '', num: '' },
        exten: '',
        callingPres: null,
      },
    });
    assert.equal((await pending).body, 'status=NAK');
    await sleep(100);
    const cancel = apns.pushes.find((p) => p.payload.type === 'cancel');
    assert.equal(cancel?.payload.reason, 'caller_hangup');
  });

  test('a call_id that is the MD5 of the caller uniqueid (a key the iOS app takes) is hung up too', async () => {
    await register('apns-device', 'iphone');
    const uniqueid = '1700000002.9';
    const callId = createHash('md5').update(uniqueid).digest('hex');
    const hangups = async () =>
      metricValue(
        await (await fetch(`${s.url}/metrics`)).text(),
        'switchboard_push_answers_total',
        {
          reason: 'caller_hangup',
        },
      );
    const before = await hangups();
    const pending = incoming({ call_id: callId });
    await until(() => apns.pushes.some((p) => p.payload.unique_key === callId), 'pushed');
    s.push.handleCallEvent({
      event: 'hangup',
      reason: 'cancelled',
      caller: {
        name: 'PJSIP/trunk-00000002',
        uniqueid,
        linkedid: uniqueid,
        state: 4,
        accountCode: '',
        callerId: { name: '', num: '' },
        connectedLine: { name: '', num: '' },
        exten: '',
        callingPres: null,
      },
    });
    assert.equal((await pending).body, 'status=NAK');
    assert.equal((await hangups()) - before, 1, 'released by the hangup, not the budget');
  });

  test('JSON bodies are accepted too', async () => {
    const unknownApp = await fetch(`${s.url}/api/apns-device/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: ALICE },
      body: JSON.stringify({ sip_user_id: 123456789, token: 'json-token', app: 'com.unknown' }),
    });
    assert.equal(unknownApp.status, 404);
    const r = await fetch(`${s.url}/api/apns-device/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: ALICE },
      body: JSON.stringify({
        sip_user_id: 123456789,
        token: 'json-token',
        app: 'com.x',
        sandbox: false,
      }),
    });
    assert.equal(r.status, 201);
    fakeApp(apns, { delayMs: 5 });
    const answer = await fetch(`${s.url}/api/incoming-call/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sip_user_id: '123456789', phonenumber: '0501234567' }),
    });
    assert.equal(await answer.text(), 'status=ACK');
  });

  test('DELETE removes a device (body or query string); unknown → 404', async () => {
    await register('apns-device', 'to-delete');
    const fields = { sip_user_id: SIP, token: 'to-delete', app: 'com.example.app' };
    const del = await postForm(
      `${s.url}/api/apns-device/`,
      fields,
      { authorization: ALICE },
      'DELETE',
    );
    assert.equal(del.status, 200);
    const again = await fetch(`${s.url}/api/apns-device/?${new URLSearchParams(fields)}`, {
      method: 'DELETE',
      headers: { authorization: ALICE },
    });
    assert.equal(again.status, 404);
  });

  test('check-in, hangup-reason and log-metrics', async () => {
    await register('apns-device', 'iphone');
    const auth = { authorization: ALICE };
    assert.equal(
      (await postForm(`${s.url}/api/check-in/`, { sip_user_id: SIP, token: 'iphone' }, auth))
        .status,
      200,
    );
    assert.equal(
      (await postForm(`${s.url}/api/check-in/`, { sip_user_id: '987654321' }, auth)).status,
      404,
    );
    const hr = await postForm(
      `${s.url}/api/hangup-reason/`,
      { sip_user_id: SIP, unique_key: 'abc123', reason: 'Busy in GSM call' },
      auth,
    );
    assert.equal(hr.status, 200);
    const lm = await postForm(
      `${s.url}/api/log-metrics/`,
      {
        sip_user_id: SIP,
        os: 'Android',
        direction: 'incoming',
        call_setup_successful: 'false',
        failed_reason: 'no_audio',
        network: 'WiFi',
      },
      auth,
    );
    assert.equal(lm.status, 200);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.equal(
      metricValue(metrics, 'switchboard_push_hangup_reasons_total', { reason: 'busy_in_gsm_call' }),
      1,
    );
    assert.equal(
      metricValue(metrics, 'switchboard_push_app_calls_total', {
        result: 'failure',
        reason: 'no_audio',
        os: 'android',
      }),
      1,
    );
  });

  test('Basic auth: 401 missing or wrong, 403 someone else’s SIP account', async () => {
    const fields = { sip_user_id: SIP, token: 'tok', app: 'com.x' };
    const none = await postForm(`${s.url}/api/apns-device/`, fields);
    assert.equal(none.status, 401);
    const wrong = await postForm(`${s.url}/api/apns-device/`, fields, {
      authorization: basic('alice', 'not-her-password'),
    });
    assert.equal(wrong.status, 401);
    const other = await postForm(`${s.url}/api/apns-device/`, fields, {
      authorization: basic('bob', 'bob-password'),
    });
    assert.equal(other.status, 403);
    for (const path of ['hangup-reason', 'log-metrics', 'check-in']) {
      const r = await postForm(
        `${s.url}/api/${path}/`,
        { sip_user_id: SIP, unique_key: 'k', reason: 'x' },
        { authorization: basic('bob', 'bob-password') },
      );
      assert.equal(r.status, 403, path);
    }
  });

  test('malformed fields: 400 without saying which rule failed', async () => {
    const cases: Array<[string, Record<string, string>]> = [
      ['incoming-call', { sip_user_id: '12345678', phonenumber: '0501234567' }],
      ['incoming-call', { sip_user_id: '1234567890', phonenumber: '0501234567' }],
      ['incoming-call', { sip_user_id: '12345678a', phonenumber: '0501234567' }],
      ['incoming-call', { sip_user_id: SIP, phonenumber: '0501234567abc' }],
      ['incoming-call', { sip_user_id: SIP, phonenumber: '1'.repeat(33) }],
      ['incoming-call', { sip_user_id: SIP }],
      ['call-response', { unique_key: 'abc' }],
      ['call-response', { unique_key: 'a b', message_start_time: '1.5' }],
      ['call-response', { unique_key: 'abc', message_start_time: 'yesterday' }],
      ['call-response', { unique_key: 'abc', message_start_time: '1.5', available: 'maybe' }],
    ];
    for (const [path, fields] of cases) {
      const r = await postForm(`${s.url}/api/${path}/`, fields);
      assert.equal(r.status, 400, `${path} ${JSON.stringify(fields)}`);
      assert.equal(r.body, 'bad request');
    }
    const tokenCases: Array<Record<string, string>> = [
      { sip_user_id: SIP, token: 'a'.repeat(251), app: 'com.x' },
      { sip_user_id: SIP, token: 'has space', app: 'com.x' },
      { sip_user_id: SIP, token: 'tok' },
      { sip_user_id: '1', token: 'tok', app: 'com.x' },
    ];
    for (const fields of tokenCases) {
      const r = await postForm(`${s.url}/api/apns-device/`, fields, { authorization: ALICE });
      assert.equal(r.status, 400);
      assert.equal(r.body, 'bad request');
    }
    const badJson = await fetch(`${s.url}/api/call-response/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"unique_key":',
    });
    assert.equal(badJson.status, 400);
    assert.equal(await badJson.text(), 'bad request');
  });

  test('incoming-call from outside the PBX networks: 403', async () => {
    const r = await s.server.app.inject({
      method: 'POST',
      url: '/api/incoming-call/',
      remoteAddress: '203.0.113.9',
      payload: { sip_user_id: SIP, phonenumber: '0501234567' },
    });
    assert.equal(r.statusCode, 403);
    assert.equal(r.body, 'forbidden');
  });

  test('a flood of call-responses with random keys changes nothing', async () => {
    // Its own server with a long budget: the flood must not race the call's timeout.
    const patient = await startPushServer({
      config: testPushConfig({
        apns: apns.config,
        fcm: fcm.config,
        budgetMs: 30_000,
        intervalMs: 10_000,
      }),
      db,
    });
    const saved = s;
    s = patient;
    try {
      await register('apns-device', 'iphone');
      let key = '';
      apns.onPush = (p) => {
        if (p.payload.type === 'call') key = String(p.payload.unique_key);
      };
      const pending = incoming();
      await sleep(100);
      const before = await (await fetch(`${s.url}/metrics`)).text();
      const statuses = await Promise.all(
        Array.from({ length: 500 }, (_, i) =>
          postForm(`${s.url}/api/call-response/`, {
            unique_key: `${i.toString(16)}${Math.random().toString(16).slice(2)}`,
            message_start_time: String(Date.now() / 1000),
            available: 'true',
          }).then((r) => r.status),
        ),
      );
      assert.ok(statuses.every((st) => st === 404));
      const afterFlood = await (await fetch(`${s.url}/metrics`)).text();
      assert.equal(
        metricValue(afterFlood, 'switchboard_push_answers_total', { status: 'ACK' }),
        metricValue(before, 'switchboard_push_answers_total', { status: 'ACK' }),
      );
      assert.equal(s.push.wake.heldCount, 1, 'the held call is still waiting');
      // The real answer still works.
      const ok = await postForm(`${s.url}/api/call-response/`, {
        unique_key: key,
        message_start_time: String(Date.now() / 1000),
      });
      assert.equal(ok.status, 202);
      assert.equal((await pending).body, 'status=ACK');
    } finally {
      s = saved;
      await patient.close();
    }
  });

  test('tokens and credentials never appear in logs', async () => {
    const secretToken = 'SECRET-TOKEN-0123456789abcdef';
    await register('apns-device', secretToken);
    apns.behaviour.set(secretToken, 'unregistered');
    await incoming();
    await postForm(
      `${s.url}/api/apns-device/`,
      { sip_user_id: SIP, token: secretToken, app: 'x' },
      {
        authorization: basic('alice', 'wrong-password-xyz'),
      },
    );
    const logs = s.logs.text();
    assert.ok(logs.length > 0);
    for (const secret of [secretToken, 'alice-password', 'wrong-password-xyz', ALICE.slice(6)]) {
      assert.ok(!logs.includes(secret), `log contains ${secret}`);
    }
  });
});
