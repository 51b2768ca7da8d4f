/**
 * The original middleware's behavioural tests (VoIPGRID vialer-middleware `api/tests/`:
 * `test_views.py`, `test_authentication.py`, `test_serializers.py`), ported to HTTP against
 * `serve` (createService with the feature modules, on a free port), with the fakes: APNs over
 * HTTP/2 + TLS, FCM, and the VoIPGRID account API in its real shapes (the original bypassed
 * authentication in its tests; here every app request goes through the account API). Bodies
 * are multipart, as the original's test client (DRF `APIClient`) sends them; then the
 * requests of the current Vialer apps (`Token` header, form and JSON bodies).
 *
 * Timing: the original waits 4000 ms with a re-send every 1000 ms and its app answers after
 * 1.5 s (2 pushes, ACK) or after 5 s (3 pushes, 404, NAK). Here the interval is I, the budget
 * 4 I and the fake app answers 1.5 I or 5 I after the first push; the tests count the pushes
 * the fake push service received and read the answer, they measure no time.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { createLogger } from '../../src/http/server.ts';
import type { PushTables } from '../../src/push/devices.ts';
import { featureModules } from '../../src/serve/modules.ts';
import { createService, type Service } from '../../src/serve/service.ts';
import { testConfig, until } from '../serve/helpers.ts';
import {
  basic,
  type FakeAccountApi,
  type FakeApns,
  type FakeFcm,
  type FakePushService,
  fakeApp,
  logSink,
  metricValue,
  postForm,
  postJson,
  postMultipart,
  type ReceivedPush,
  startFakeAccountApi,
  startFakeApns,
  startFakeFcm,
  tempDir,
  tokenHeader,
} from './fakes.ts';

/** The re-send interval I (the original: 1000 ms); the budget is 4 I as the original's. */
const INTERVAL_MS = 500;
const BUDGET_MS = 4 * INTERVAL_MS;

const ALICE = tokenHeader('alice@example.com', 'api-token-alice');
const BOB = basic('bob@example.com', 'bob-password');
const CAROL = 'Bearer carol-oauth-token';
const TOKEN = 'a652aee84bdec6c2859eec89a6e5b1a42c400fba43070f404148f27b502610b6';
const VIALER = 'com.voipgrid.vialer';

describe('the original middleware tests against serve', () => {
  const dir = tempDir();
  let apns: FakeApns;
  let fcm: FakeFcm;
  let api: FakeAccountApi;
  let service: Service;
  let url: string;
  let db: Kysely<PushTables>;
  const logs = logSink();

  before(async () => {
    apns = await startFakeApns(dir);
    fcm = await startFakeFcm(dir);
    api = await startFakeAccountApi([
      { authorization: ALICE, sipUserId: '123456789' },
      { authorization: BOB, sipUserId: '234567890' },
      { authorization: CAROL, sipUserId: '987654321' },
      { authorization: tokenHeader('noapp@example.com', 't'), sipUserId: null },
    ]);
    const a = apns.config;
    const f = fcm.config;
    const yaml = [
      'callout: {enabled: false}',
      'announce: {enabled: false}',
      'push:',
      `  budgetMs: ${BUDGET_MS}`,
      `  intervalMs: ${INTERVAL_MS}`,
      '  maxPushes: 3',
      `  accountApi: {baseUrl: "${api.url}", cacheTtlS: 0}`,
      `  apns: {keyFile: "${a.keyFile}", keyId: "${a.keyId}", teamId: "${a.teamId}", host: "${a.host}", sandboxHost: "${a.sandboxHost}", port: ${a.port}, caFile: "${a.caFile}"}`,
      `  fcm: {serviceAccountFile: "${f.serviceAccountFile}", baseUrl: "${f.baseUrl}", tokenUrl: "${f.tokenUrl}"}`,
    ].join('\n');
    service = createService({
      config: testConfig({}, yaml),
      logger: createLogger('info', logs.stream),
      modules: featureModules(),
    });
    ({ url } = await service.start());
    db = service.context?.db.db as unknown as Kysely<PushTables>;
  });

  after(async () => {
    await service.stop();
    await apns.close();
    await fcm.close();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    for (const fake of [apns, fcm]) {
      fake.pushes.length = 0;
      fake.behaviour.clear();
      fake.onPush = undefined;
    }
    api.status = 0;
    api.accountStatus = 0;
    api.appAccount = undefined;
    await db.deleteFrom('push_device').execute();
  });

  const metrics = async () => (await fetch(`${url}/metrics`)).text();
  const devices = () => db.selectFrom('push_device').selectAll().execute();

  const DEVICE = {
    name: 'test device',
    token: TOKEN,
    sip_user_id: '123456789',
    os_version: '8.3',
    client_version: '1.0',
    app: VIALER,
    remote_logging_id: 'a1b2c3d4e5',
  };

  // -------------------------------------------------------------------------------------------
  // RegisterDeviceTest
  // -------------------------------------------------------------------------------------------

  test('register an APNs device: create, again, other token, other SIP account, unregister', async () => {
    const ios = `${url}/api/apns-device/`;
    const data = { ...DEVICE };
    assert.equal((await postMultipart(ios, data, { authorization: ALICE })).status, 201, 'create');
    assert.equal((await postMultipart(ios, data, { authorization: ALICE })).status, 200, 'again');
    data.token = 'b652aee84bdec6c2859eec89a6e5b1a42c400fba43070f404148f27b502610b6';
    assert.equal(
      (await postMultipart(ios, data, { authorization: ALICE })).status,
      200,
      'other token: update',
    );
    const [device, ...others] = await devices();
    assert.deepEqual(others, []);
    assert.equal(device?.name, data.name);
    assert.equal(device?.token, data.token);
    assert.equal(device?.os_version, data.os_version);
    assert.equal(device?.client_version, data.client_version);
    assert.equal(device?.platform, 'apns');
    assert.equal(device?.app, VIALER);
    // The same token for another SIP account (its owner's credential): created there.
    data.sip_user_id = '234567890';
    assert.equal((await postMultipart(ios, data, { authorization: BOB })).status, 201);
    const gone = { token: data.token, sip_user_id: '234567890', app: data.app };
    assert.equal((await postMultipart(ios, gone, { authorization: BOB }, 'DELETE')).status, 200);
    assert.equal((await postMultipart(ios, gone, { authorization: BOB }, 'DELETE')).status, 404);
  });

  test('register an Android device and unregister it', async () => {
    const android = `${url}/api/android-device/`;
    assert.equal((await postMultipart(android, DEVICE, { authorization: ALICE })).status, 201);
    const [device] = await devices();
    assert.equal(device?.name, DEVICE.name);
    assert.equal(device?.token, DEVICE.token);
    assert.equal(device?.os_version, DEVICE.os_version);
    assert.equal(device?.client_version, DEVICE.client_version);
    assert.equal(device?.platform, 'fcm');
    assert.equal(device?.app, VIALER);
    const remove = { token: DEVICE.token, sip_user_id: DEVICE.sip_user_id, app: DEVICE.app };
    const removed = await postMultipart(android, remove, { authorization: ALICE }, 'DELETE');
    assert.equal(removed.status, 200);
  });

  test('register an app that does not exist: 404 on both platforms', async () => {
    const data = { ...DEVICE, app: 'com.myapp.doesnotexists' };
    for (const path of ['apns-device', 'android-device', 'gcm-device']) {
      const r = await postMultipart(`${url}/api/${path}/`, data, { authorization: ALICE });
      assert.equal(r.status, 404, path);
    }
    assert.deepEqual(await devices(), []);
  });

  for (const [from, to] of [
    ['apns-device', 'android-device'],
    ['android-device', 'apns-device'],
  ] as const) {
    test(`switch a SIP account from ${from} to ${to}: one updated device`, async () => {
      const first = await postMultipart(`${url}/api/${from}/`, DEVICE, { authorization: ALICE });
      assert.equal(first.status, 201);
      const switched = { ...DEVICE, token: `${to}-4bdec6c2859eec89a6e5b1a42c400fba43070f404148f` };
      const second = await postMultipart(`${url}/api/${to}/`, switched, { authorization: ALICE });
      assert.equal(second.status, 200, 'update');
      const rows = await devices();
      assert.equal(rows.length, 1, 'there should be only one updated device');
      assert.equal(rows[0]?.platform, to === 'apns-device' ? 'apns' : 'fcm');
    });
  }

  // -------------------------------------------------------------------------------------------
  // IOSIncomingCallTest, AndroidIncomingCallTest
  // -------------------------------------------------------------------------------------------

  /**
   * The test's app: `delayMs` after the first call push of `callId` it posts the
   * call-response as the original's test does (multipart, `unique_key` = the call id,
   * `message_start_time` = now, not echoed). Resolves with the call-response's status.
   */
  function answerAfter(
    fake: FakePushService,
    callId: string,
    delayMs: number,
    fields: Record<string, string> = {},
    messageStartTime?: () => number,
  ): Promise<number> {
    return new Promise((resolve, reject) => {
      fake.onPush = (push) => {
        if (push.payload.type !== 'call' || push.payload.unique_key !== callId) return;
        fake.onPush = undefined;
        setTimeout(() => {
          postMultipart(`${url}/api/call-response/`, {
            unique_key: callId,
            message_start_time: String(messageStartTime?.() ?? Date.now() / 1000),
            ...fields,
          }).then((r) => resolve(r.status), reject);
        }, delayMs);
      };
    });
  }

  const callPushes = (fake: FakePushService, callId: string) =>
    fake.pushes.filter((p) => p.payload.type === 'call' && p.payload.unique_key === callId);

  for (const [label, path, platform] of [
    ['iOS', 'apns-device', 'apns'],
    ['Android', 'android-device', 'fcm'],
  ] as const) {
    const fake = () => (platform === 'apns' ? apns : fcm);
    const callId =
      platform === 'apns'
        ? 'sduiqayduiryqwuioeryqwer76789'
        : 'asdr2378945auhfjkasdghf897eoiehajklh';
    const CALL = { sip_user_id: '123456789', caller_id: 'Test name', phonenumber: '0123456789' };
    const register = async () => {
      const r = await postMultipart(`${url}/api/${path}/`, DEVICE, { authorization: ALICE });
      assert.equal(r.status, 201);
    };

    test(`${label}: available incoming call — NAK without a device, then ACK after 2 pushes`, async () => {
      const none = await postMultipart(`${url}/api/incoming-call/`, CALL);
      assert.equal(none.body, 'status=NAK');
      await register();
      const app = answerAfter(fake(), callId, 1.5 * INTERVAL_MS);
      const pbx = await postMultipart(`${url}/api/incoming-call/`, { ...CALL, call_id: callId });
      assert.equal(pbx.body, 'status=ACK');
      assert.equal(await app, 202);
      assert.deepEqual(
        callPushes(fake(), callId).map((p) => Number(p.payload.attempt)),
        [1, 2],
      );
    });

    test(`${label}: not available incoming call — NAK after 2 pushes`, async () => {
      await register();
      const app = answerAfter(fake(), callId, 1.5 * INTERVAL_MS, { available: 'False' });
      const pbx = await postMultipart(`${url}/api/incoming-call/`, { ...CALL, call_id: callId });
      assert.equal(pbx.body, 'status=NAK');
      assert.equal(await app, 202);
      assert.deepEqual(
        callPushes(fake(), callId).map((p) => Number(p.payload.attempt)),
        [1, 2],
      );
    });

    test(`${label}: too late — 404 for the app, NAK after 3 pushes`, async () => {
      await register();
      const start = Date.now() / 1000;
      const app = answerAfter(fake(), callId, 5 * INTERVAL_MS, {}, () => start);
      const pbx = await postMultipart(`${url}/api/incoming-call/`, { ...CALL, call_id: callId });
      assert.equal(pbx.body, 'status=NAK');
      assert.equal(await app, 404);
      assert.deepEqual(
        callPushes(fake(), callId).map((p) => Number(p.payload.attempt)),
        [1, 2, 3],
      );
      // One device per account (the default), as the original: no cancel push.
      assert.deepEqual(
        fake().pushes.filter((p) => p.payload.type !== 'call'),
        [],
      );
    });

    test(`${label}: the round trip is recorded (the original's ResponseLog)`, async () => {
      await register();
      const before = await metrics();
      const series = { platform };
      const start = Date.now() / 1000;
      const app = answerAfter(fake(), callId, INTERVAL_MS, {}, () => start);
      const pbx = await postMultipart(`${url}/api/incoming-call/`, { ...CALL, call_id: callId });
      assert.equal(await app, 202);
      assert.equal(pbx.body, 'status=ACK');
      const now = await metrics();
      const name = 'switchboard_push_wakeup_roundtrip_seconds_count';
      assert.equal(metricValue(now, name, series) - metricValue(before, name, series), 1);
      const os = platform === 'apns' ? 'apns' : 'android';
      const success = 'vialer_middleware_push_notification_success_total';
      assert.equal(
        metricValue(now, success, { os }) - metricValue(before, success, { os }),
        1,
        'the original exporter series',
      );
    });
  }

  test('the original exporter counts incoming calls, unavailable and late answers', async () => {
    const before = await metrics();
    const CALL = { sip_user_id: '123456789', phonenumber: '0123456789' };
    assert.equal((await postMultipart(`${url}/api/incoming-call/`, CALL)).body, 'status=NAK');
    await postMultipart(`${url}/api/apns-device/`, DEVICE, { authorization: ALICE });
    const unavailable = answerAfter(apns, 'c-1', 0, { available: 'false' });
    await postMultipart(`${url}/api/incoming-call/`, { ...CALL, call_id: 'c-1' });
    assert.equal(await unavailable, 202);
    assert.equal(
      (await postMultipart(`${url}/api/incoming-call/`, { ...CALL, call_id: 'c-2' })).body,
      'status=NAK',
    );
    const now = await metrics();
    const delta = (name: string, labels: Record<string, string>) =>
      metricValue(now, name, labels) - metricValue(before, name, labels);
    assert.equal(
      delta('vialer_middleware_incoming_call_failed_total', {
        action: 'Received',
        failed_reason: 'failed no sip_user_id',
        os: 'Middleware',
      }),
      1,
    );
    assert.equal(
      delta('vialer_middleware_incoming_call_success_total', {
        action: 'Received',
        os: 'Middleware',
      }),
      2,
    );
    const failed = 'vialer_middleware_push_notification_failed_total';
    const labels = { direction: 'Incoming', os: 'apns' };
    assert.equal(delta(failed, { ...labels, failed_reason: 'Device not available' }), 1);
    assert.equal(
      delta(failed, { ...labels, failed_reason: 'Unable to get response from phone' }),
      1,
    );
  });

  // -------------------------------------------------------------------------------------------
  // HangupReasonTest
  // -------------------------------------------------------------------------------------------

  test('hangup-reason: the reason is logged with the key and platform; reason optional', async () => {
    await postMultipart(`${url}/api/apns-device/`, DEVICE, { authorization: ALICE });
    const data = {
      sip_user_id: '123456789',
      unique_key: 'sduiqayduiryqwuioeryqwer76789',
      reason: 'Device did not now answer',
    };
    const r = await postMultipart(`${url}/api/hangup-reason/`, data, { authorization: ALICE });
    assert.equal(r.status, 200);
    const line = logs.lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'push: hangup reason');
    assert.equal(line?.uniqueKey, data.unique_key);
    assert.equal(line?.platform, 'apns');
    assert.equal(line?.reason, data.reason);
    const { reason: _reason, ...noReason } = data;
    const without = await postMultipart(`${url}/api/hangup-reason/`, noReason, {
      authorization: ALICE,
    });
    assert.equal(without.status, 200, 'reason is optional');
  });

  test('hangup-reason for a SIP account without a device: 404', async () => {
    await postMultipart(`${url}/api/apns-device/`, DEVICE, { authorization: ALICE });
    const r = await postMultipart(
      `${url}/api/hangup-reason/`,
      { sip_user_id: '987654321', unique_key: 'k', reason: 'Device did not now answer' },
      { authorization: CAROL },
    );
    assert.equal(r.status, 404);
    assert.ok(logs.lines.some((l) => l.includes('hangup reason, no device')));
  });

  // -------------------------------------------------------------------------------------------
  // LogMetricsTest
  // -------------------------------------------------------------------------------------------

  const BASE_METRICS = {
    sip_user_id: '123456789',
    os: 'iOS',
    os_version: '5.0.1',
    app_version: '2.0',
    connection_type: 'TLS',
    direction: 'Incoming',
  };

  test('log-metrics: a successful call counts in vialer_call_success_total', async () => {
    const data = {
      ...BASE_METRICS,
      network: 'WiFi',
      call_setup_successful: 'true',
      codec: 'OPUS',
      mos: '4.50',
    };
    const r = await postMultipart(`${url}/api/log-metrics/`, data, { authorization: ALICE });
    assert.equal(r.status, 200);
    assert.equal(
      metricValue(await metrics(), 'vialer_call_success_total', {
        app_version: '2.0',
        codec: 'OPUS',
        connection_type: 'TLS',
        direction: 'Incoming',
        mos: '4.5',
        network: 'WiFi',
        network_operator: '',
        os: 'iOS',
        os_version: '5.0.1',
      }),
      1,
    );
  });

  test('log-metrics: a failed call counts in vialer_call_failure_total', async () => {
    const data = { ...BASE_METRICS, network: 'WiFi', call_setup_successful: 'false' };
    for (const failed_reason of ['70% packet loss', 'DECLINED', '486']) {
      const r = await postMultipart(
        `${url}/api/log-metrics/`,
        { ...data, failed_reason },
        { authorization: ALICE },
      );
      assert.equal(r.status, 200);
    }
    const text = await metrics();
    const labels = {
      app_version: '2.0',
      connection_type: 'TLS',
      direction: 'Incoming',
      network: 'WiFi',
      network_operator: '',
      os: 'iOS',
      os_version: '5.0.1',
    };
    // Free text is not a label value (a series per sentence): the apps' constants and SIP
    // codes are kept, anything else is `other`.
    for (const failed_reason of ['other', 'DECLINED', '486']) {
      assert.equal(
        metricValue(text, 'vialer_call_failure_total', { ...labels, failed_reason }),
        1,
        failed_reason,
      );
    }
  });

  test('log-metrics: a hangup reason counts in vialer_hangup_reason_total', async () => {
    const data = {
      ...BASE_METRICS,
      network: '4G',
      network_operator: 'T-Mobile',
      hangup_reason: 'REMOTE',
    };
    const r = await postMultipart(`${url}/api/log-metrics/`, data, { authorization: ALICE });
    assert.equal(r.status, 200);
    assert.equal(
      metricValue(await metrics(), 'vialer_hangup_reason_total', {
        app_version: '2.0',
        connection_type: 'TLS',
        direction: 'Incoming',
        hangup_reason: 'REMOTE',
        network: '4G',
        network_operator: 'T-Mobile',
        os: 'iOS',
        os_version: '5.0.1',
      }),
      1,
    );
  });

  test('log-metrics: label values from outside are bounded', async () => {
    for (let i = 0; i < 80; i += 1) {
      await postJson(
        `${url}/api/log-metrics/`,
        { ...BASE_METRICS, os: `os-${i}`, os_version: `v${i}`, hangup_reason: `r${i}` },
        { authorization: ALICE },
      );
    }
    const lines = (await metrics())
      .split('\n')
      .filter((l) => l.startsWith('vialer_hangup_reason_total{'));
    assert.ok(lines.length <= 52, `${lines.length} series`);
    assert.ok(lines.some((l) => l.includes('os="other"') && l.includes('hangup_reason="other"')));
  });

  // -------------------------------------------------------------------------------------------
  // CheckInTest
  // -------------------------------------------------------------------------------------------

  test('check-in: last_seen of the device is updated; 404 when none', async () => {
    await postMultipart(`${url}/api/apns-device/`, DEVICE, { authorization: ALICE });
    const lastSeen = Date.UTC(2018, 0, 1);
    await db.updateTable('push_device').set({ last_seen_at: lastSeen }).execute();
    const r = await postMultipart(
      `${url}/api/check-in/`,
      { sip_user_id: '123456789' },
      { authorization: ALICE },
    );
    assert.equal(r.status, 200);
    assert.ok(Number((await devices())[0]?.last_seen_at) > lastSeen);
    await db.updateTable('push_device').set({ last_seen_at: lastSeen }).execute();
    const none = await postMultipart(
      `${url}/api/check-in/`,
      { sip_user_id: '987654321' },
      { authorization: CAROL },
    );
    assert.equal(none.status, 404);
    assert.equal(Number((await devices())[0]?.last_seen_at), lastSeen);
  });

  // -------------------------------------------------------------------------------------------
  // VoipgridAuthenticationTestCase: the header goes to the account API, its answer decides
  // -------------------------------------------------------------------------------------------

  test('authentication: any scheme forwarded as it came; 401 and 403 pass through; others 503', async () => {
    const ios = `${url}/api/apns-device/`;
    for (const [authorization, sip] of [
      [ALICE, '123456789'],
      [BOB, '234567890'],
      [CAROL, '987654321'],
    ] as const) {
      api.requests.length = 0;
      const r = await postMultipart(ios, { ...DEVICE, sip_user_id: sip }, { authorization });
      assert.equal(r.status, 201, authorization.split(' ')[0]);
      assert.deepEqual(
        api.requests.map((q) => q.authorization),
        [authorization, authorization],
        'profile and app account, each with the header unchanged',
      );
    }
    const none = await fetch(ios, { method: 'POST', body: new FormData() });
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Basic realm="push"');
    assert.match(none.headers.get('content-type') ?? '', /^text\/plain/);
    const wrong = await postMultipart(ios, DEVICE, { authorization: 'Token alice@example.com:x' });
    assert.equal(wrong.status, 401);
    const other = await postMultipart(ios, DEVICE, { authorization: BOB });
    assert.equal(other.status, 403, "bob's credential for alice's SIP account");
    const noApp = await postMultipart(ios, DEVICE, {
      authorization: tokenHeader('noapp@example.com', 't'),
    });
    assert.equal(noApp.status, 403, 'a user without an app account');
    for (const [forced, expected] of [
      [401, 401],
      [403, 403],
      [500, 503],
      [404, 503],
    ] as const) {
      api.status = forced;
      const r = await postMultipart(ios, DEVICE, { authorization: ALICE });
      assert.equal(r.status, expected, `account API ${forced}`);
    }
    api.status = 0;
    api.appAccount = `http://127.0.0.1:${apns.port}/elsewhere/`;
    const ssrf = await postMultipart(ios, DEVICE, { authorization: ALICE });
    assert.equal(ssrf.status, 503, 'an app_account elsewhere is not followed');
    // The credential is never a log field, a label or an error.
    const text = `${logs.text()}\n${await metrics()}`;
    for (const secret of ['api-token-alice', 'carol-oauth-token', BOB.slice(6)]) {
      assert.ok(!text.includes(secret), `${secret} leaked`);
    }
  });

  test('authentication: every app endpoint asks the account API for its sip_user_id', async () => {
    await postMultipart(`${url}/api/apns-device/`, DEVICE, { authorization: ALICE });
    const requests: Array<[string, Record<string, string>, string]> = [
      ['hangup-reason', { sip_user_id: '123456789', unique_key: 'k' }, 'POST'],
      ['log-metrics', { sip_user_id: '123456789' }, 'POST'],
      ['check-in', { sip_user_id: '123456789' }, 'POST'],
      ['apns-device', { sip_user_id: '123456789', token: TOKEN, app: VIALER }, 'DELETE'],
    ];
    for (const [path, fields, method] of requests) {
      const refused = await postMultipart(
        `${url}/api/${path}/`,
        fields,
        { authorization: BOB },
        method,
      );
      assert.equal(refused.status, 403, path);
      const noCredential = await postMultipart(`${url}/api/${path}/`, fields, {}, method);
      assert.equal(noCredential.status, 401, path);
      const ok = await postMultipart(
        `${url}/api/${path}/`,
        fields,
        { authorization: ALICE },
        method,
      );
      assert.equal(ok.status, 200, path);
    }
  });

  // -------------------------------------------------------------------------------------------
  // Serializers: the rules of each field, through the endpoints
  // -------------------------------------------------------------------------------------------

  test('serializers: token, sip_user_id, device, call-response, incoming-call rules', async () => {
    const ios = `${url}/api/apns-device/`;
    const auth = { authorization: ALICE };
    const status = async (u: string, fields: Record<string, string>, h = auth) =>
      (await postMultipart(u, fields, h)).status;
    // TokenSerializer: required, no whitespace.
    assert.equal(
      await status(ios, { sip_user_id: '123456789', app: VIALER, no_token: 'blaat' }),
      400,
    );
    assert.equal(
      await status(ios, { sip_user_id: '123456789', app: VIALER, token: 'foo bar' }),
      400,
    );
    assert.equal(await status(ios, { sip_user_id: '123456789', app: VIALER, token: 'blaat' }), 201);
    // SipUserIdSerializer: required, 9 digits (100000000–999999999).
    assert.equal(await status(ios, { no_sip_user_id: '123456789', app: VIALER, token: 'b' }), 400);
    assert.equal(await status(ios, { sip_user_id: '1234567890986', app: VIALER, token: 'b' }), 400);
    assert.equal(await status(ios, { sip_user_id: '99999999', app: VIALER, token: 'b' }), 400);
    // DeviceSerializer: app required; sandbox false by default, 'True' is true.
    assert.equal(await status(ios, { sip_user_id: '123456789', token: 'b', no_app_id: 'x' }), 400);
    assert.equal(await status(ios, { sip_user_id: '123456789', token: 'b', app: VIALER }), 200);
    assert.equal(Number((await devices())[0]?.sandbox), 0);
    assert.equal(
      await status(ios, { sip_user_id: '123456789', token: 'b', app: VIALER, sandbox: 'True' }),
      200,
    );
    assert.equal(Number((await devices())[0]?.sandbox), 1);
    // CallResponseSerializer: unique_key and message_start_time required (a float).
    const response = `${url}/api/call-response/`;
    const now = String(Date.now() / 1000);
    assert.equal(await status(response, { no_unique_key: 'agh', message_start_time: now }), 400);
    assert.equal(await status(response, { unique_key: 'agh', no_message_start_time: '8' }), 400);
    assert.equal(
      await status(response, { unique_key: 'agh', message_start_time: 'yesterday' }),
      400,
    );
    for (const time of [now, '1.79E9', '1.7000000001234567E9', '1700000000']) {
      assert.equal(
        await status(response, { unique_key: 'agh', message_start_time: time }),
        404,
        time,
      );
    }
    // IncomingCallSerializer: phonenumber required, caller_id optional (may be blank).
    const incoming = `${url}/api/incoming-call/`;
    const sip = { sip_user_id: '234567890' };
    assert.equal(await status(incoming, { ...sip, caller_id: 'aghadgf' }), 400);
    assert.equal(
      (await postMultipart(incoming, { ...sip, phonenumber: '0123456789' })).status,
      200,
    );
    assert.equal(
      (await postMultipart(incoming, { ...sip, caller_id: '', phonenumber: '0123456789' })).status,
      200,
    );
    assert.equal(await status(incoming, { ...sip, phonenumber: '0123456789avb' }), 400);
  });

  test('phonenumber: the characters the original strips pass, the ones it rejects do not', async () => {
    const incoming = `${url}/api/incoming-call/`;
    const code = async (phonenumber: string) =>
      (await postForm(incoming, { sip_user_id: '111111111', phonenumber })).status;
    for (const ok of ['+31 (0)50 1234567', '050–1234567', '0031x501234567', ' 0501234567 ']) {
      assert.equal(await code(ok), 200, ok);
    }
    // Its pattern [\+\(\)– - x] has " - " as a range from space to space: no hyphen-minus.
    for (const refused of ['050-1234567', '+', 'x', 'anonymous', '1'.repeat(33), '0501234567#']) {
      assert.equal(await code(refused), 400, refused);
    }
  });

  // -------------------------------------------------------------------------------------------
  // The current Vialer apps' requests
  // -------------------------------------------------------------------------------------------

  test('Vialer Android: Token header, form register, FCM push it parses, form DELETE', async () => {
    const android = `${url}/api/android-device/`;
    // Middleware.register: @FormUrlEncoded name, token, sip_user_id, os_version, client_version, app, remote_logging_id.
    const registration = {
      name: 'Alice Example',
      token: 'fcm-registration-token:APA91bH',
      sip_user_id: '123456789',
      os_version: 'REL',
      client_version: '11',
      app: VIALER,
      remote_logging_id: 'b2c3d4',
    };
    assert.equal((await postForm(android, registration, { authorization: ALICE })).status, 201);
    let seen: ReceivedPush | undefined;
    const answers: number[] = [];
    // FcmMessagingService.replyServer: form unique_key, available, message_start_time (as
    // received), sip_user_id.
    fakeApp(fcm, {
      delayMs: 10,
      extra: (push) => {
        seen = push;
        return { sip_user_id: '123456789' };
      },
      onAnswer: (status) => answers.push(status),
    });
    const pbx = await postForm(`${url}/api/incoming-call/`, {
      sip_user_id: '123456789',
      phonenumber: '+31501234567',
      caller_id: 'Bob',
      call_id: '1700000000.42',
    });
    assert.equal(pbx.body, 'status=ACK');
    await until(() => answers.length > 0, 'the app answered');
    assert.deepEqual(answers, [202]);
    const data = seen?.payload ?? {};
    // Every FCM data value is a string; RemoteMessageData reads these keys.
    for (const name of [
      'type',
      'unique_key',
      'phonenumber',
      'caller_id',
      'response_api',
      'attempt',
    ]) {
      assert.equal(typeof data[name], 'string', name);
    }
    assert.equal(data.unique_key, '1700000000.42');
    assert.equal(Number.parseInt(String(data.attempt), 10), 1);
    // VialerStatistics: Long.parseLong(new BigDecimal(t).toPlainString().replace(".", "")) / 10000 = ms.
    const startTime = String(data.message_start_time);
    const androidMs = Number(BigInt(startTime.replace('.', '')) / 10_000n);
    assert.ok(Math.abs(androidMs - Date.now()) < 60_000, `${startTime} → ${androidMs}`);
    // Middleware.metrics: a JSON map of strings.
    const metric = await postJson(
      `${url}/api/log-metrics/`,
      {
        os: 'Android',
        os_version: '11',
        app_version: '6.8.2',
        network: 'WiFi',
        direction: 'incoming',
        connection_type: 'TLS',
        call_setup_successful: 'true',
        codec: 'opus',
        mos: '4.1',
        sip_user_id: '123456789',
        middleware_unique_key: '1700000000.42',
        time_to_initial_response: '812',
        device_manufacturer: 'google',
        device_model: 'pixel 5',
      },
      { authorization: ALICE },
    );
    assert.equal(metric.status, 200);
    // Middleware.unregister: DELETE with a form body.
    const removed = await postForm(
      android,
      { token: registration.token, sip_user_id: '123456789', app: VIALER },
      { authorization: ALICE },
      'DELETE',
    );
    assert.equal(removed.status, 200);
    assert.deepEqual(await devices(), []);
  });

  test('Vialer iOS: Token header, JSON register, APNs payload with aps {}, JSON DELETE', async () => {
    const ios = `${url}/api/apns-device/`;
    // MiddlewareRequestOperationManager.updateDeviceRecordWithAPNSToken (AFJSONRequestSerializer).
    const registered = await postJson(
      ios,
      {
        sip_user_id: '123456789',
        token: TOKEN,
        app: VIALER,
        name: "Alice's iPhone",
        os_version: 'iOS 17.1',
        client_version: '7.3 (1234)',
        sandbox: true,
        push_profile: 'once',
        remote_logging_id: 'c3d4e5',
      },
      { authorization: ALICE },
    );
    assert.equal(registered.status, 201);
    const answers: number[] = [];
    let seen: ReceivedPush | undefined;
    // sentCallResponseToMiddleware: JSON unique_key and message_start_time from the payload,
    // available "True", sip_user_id.
    fakeApp(apns, {
      delayMs: 10,
      encoding: 'json',
      extra: (push) => {
        seen = push;
        return { available: 'True', sip_user_id: '123456789' };
      },
      onAnswer: (status) => answers.push(status),
    });
    const pbx = await postForm(`${url}/api/incoming-call/`, {
      sip_user_id: '123456789',
      phonenumber: '+31501234567',
      caller_id: 'Bob',
      call_id: '1700000000.43',
    });
    assert.equal(pbx.body, 'status=ACK');
    await until(() => answers.length > 0, 'the app answered');
    assert.deepEqual(answers, [202]);
    assert.equal(seen?.authority, `localhost:${apns.port}`, 'sandbox device, sandbox host');
    assert.equal(seen?.headers['apns-topic'], `${VIALER}.voip`);
    // VoIPPushPayloadTransformer reads the top-level keys; apns2 sent an empty aps beside them.
    const payload = seen?.payload ?? {};
    assert.deepEqual(payload.aps, {});
    assert.equal(payload.unique_key, '1700000000.43');
    assert.equal(payload.phonenumber, '+31501234567');
    assert.equal(typeof payload.response_api, 'string');
    assert.equal(typeof payload.message_start_time, 'number');
    // deleteDeviceRecordWithAPNSToken: DELETE with a JSON body.
    const removed = await postJson(
      ios,
      { sip_user_id: '123456789', token: TOKEN, app: VIALER },
      { authorization: ALICE },
      'DELETE',
    );
    assert.equal(removed.status, 200);
    assert.deepEqual(await devices(), []);
  });
});
