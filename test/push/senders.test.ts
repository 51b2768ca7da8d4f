/** APNs and FCM senders against local fakes speaking the real protocols. */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { createApnsSender } from '../../src/push/senders/apns.ts';
import { createFcmSender, fcmStartTime } from '../../src/push/senders/fcm.ts';
import { type FakeApns, type FakeFcm, startFakeApns, startFakeFcm, tempDir } from './fakes.ts';

const PAYLOAD = { type: 'call', unique_key: 'k1', attempt: 1, message_start_time: 1.5 };

describe('APNs sender (HTTP/2 + TLS, ES256 provider token)', () => {
  const dir = tempDir();
  let apns: FakeApns;
  before(async () => {
    apns = await startFakeApns(dir);
  });
  after(async () => {
    await apns.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('VoIP push with the required headers; one provider token reused; hosts per device', async () => {
    const sender = createApnsSender(apns.config);
    const target = { token: 'abc', app: 'com.example.app', sandbox: false };
    assert.deepEqual(await sender.send(target, PAYLOAD), { ok: true });
    assert.deepEqual(await sender.send({ ...target, sandbox: true }, PAYLOAD), { ok: true });
    const [prod, sandbox] = apns.pushes.slice(-2);
    assert.equal(prod?.authority, `127.0.0.1:${apns.port}`);
    assert.equal(sandbox?.authority, `localhost:${apns.port}`);
    assert.equal(prod?.headers['apns-push-type'], 'voip');
    assert.equal(prod?.headers['apns-priority'], '10');
    assert.equal(prod?.headers['apns-expiration'], '0');
    assert.equal(prod?.headers['apns-topic'], 'com.example.voip-app.voip');
    assert.deepEqual(prod?.payload, { aps: {}, ...PAYLOAD }, 'custom keys beside an empty aps');
    assert.equal(apns.providerTokens.size, 1);
    await sender.close();
  });

  test('topic from the device app when push.apns.topic is empty; a target topic wins', async () => {
    const sender = createApnsSender({ ...apns.config, topic: '' });
    await sender.send({ token: 't', app: 'com.voipgrid.vialer', sandbox: false }, PAYLOAD);
    assert.equal(apns.pushes.at(-1)?.headers['apns-topic'], 'com.voipgrid.vialer.voip');
    await sender.send(
      { token: 't', app: 'com.voipgrid.vialer', sandbox: false, topic: 'nl.partner.app' },
      PAYLOAD,
    );
    assert.equal(apns.pushes.at(-1)?.headers['apns-topic'], 'nl.partner.app.voip');
    await sender.close();
  });

  test('410 Unregistered and 400 BadDeviceToken → rejected; 500 → transient error', async () => {
    const sender = createApnsSender(apns.config);
    apns.behaviour.set('gone', 'unregistered');
    apns.behaviour.set('bad', 'invalid');
    apns.behaviour.set('flaky', 'error');
    const t = (token: string) => ({ token, app: 'a', sandbox: false });
    assert.equal((await sender.send(t('gone'), PAYLOAD)).ok === false, true);
    assert.deepEqual(await sender.send(t('gone'), PAYLOAD), {
      ok: false,
      reason: 'rejected',
      detail: '410 Unregistered',
    });
    assert.deepEqual(await sender.send(t('bad'), PAYLOAD), {
      ok: false,
      reason: 'rejected',
      detail: '400 BadDeviceToken',
    });
    const flaky = await sender.send(t('flaky'), PAYLOAD);
    assert.equal(flaky.ok ? '' : flaky.reason, 'error');
    await sender.close();
  });

  test('ExpiredProviderToken: a new token is made and the push retried once', async () => {
    const sender = createApnsSender({ ...apns.config, tokenRefreshMs: 60 * 60_000 });
    await sender.send({ token: 'x', app: 'a', sandbox: false }, PAYLOAD);
    const before = apns.providerTokens.size;
    apns.expireNext = 1;
    await new Promise((r) => setTimeout(r, 1100)); // iat changes with the second
    assert.deepEqual(await sender.send({ token: 'x', app: 'a', sandbox: false }, PAYLOAD), {
      ok: true,
    });
    assert.equal(apns.providerTokens.size, before + 1);
    await sender.close();
  });

  test('not configured, or APNs unreachable: failure results, no throw', async () => {
    const none = createApnsSender({ ...apns.config, keyFile: '', certFile: '' });
    const r1 = await none.send({ token: 'x', app: 'a', sandbox: false }, PAYLOAD);
    assert.equal(r1.ok ? '' : r1.reason, 'not_configured');
    const down = createApnsSender({ ...apns.config, port: 1 });
    const r2 = await down.send({ token: 'x', app: 'a', sandbox: false }, PAYLOAD);
    assert.equal(r2.ok ? '' : r2.reason, 'error');
    assert.ok(r2.ok || !r2.detail.includes('x/'), 'no token in the detail');
    await down.close();
  });
});

describe('APNs sender with certificate authentication', () => {
  const dir = tempDir();
  let apns: FakeApns;
  before(async () => {
    apns = await startFakeApns(dir, { requestCert: true });
  });
  after(async () => {
    await apns.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('presents the client certificate, no authorization header', async () => {
    const sender = createApnsSender({
      ...apns.config,
      keyFile: '',
      certFile: apns.config.caFile,
      certKeyFile: apns.config.caFile.replace('apns-cert.pem', 'apns-key.pem'),
    });
    assert.deepEqual(await sender.send({ token: 'c', app: 'a', sandbox: false }, PAYLOAD), {
      ok: true,
    });
    assert.equal(apns.pushes.at(-1)?.headers.authorization, undefined);
    assert.ok(apns.clientCerts >= 1);
    await sender.close();
  });
});

describe('message_start_time for FCM (the Vialer Android app parses it)', () => {
  test('seven decimals from whole ms: the app reads back the same ms, so do we', () => {
    // VialerStatistics.calculateTimeToInitialResponse: Long.parseLong(new BigDecimal(s)
    // .toPlainString().replace(".", "")) / 10000 — integer division, as Java's long.
    const androidMs = (value: string) => BigInt(value.replace('.', '')) / 10_000n;
    for (const ms of [1_700_000_000_123, 1_700_000_000_000, 1_700_000_000_007, 1_799_999_999_999]) {
      const value = fcmStartTime(ms / 1000);
      assert.match(value, /^\d{10}\.\d{7}$/);
      assert.equal(androidMs(value), BigInt(ms), value);
      assert.equal(Math.round(Number(value) * 1000), ms, 'the round trip is exact to the ms');
    }
    assert.equal(fcmStartTime(1_700_000_000.123), '1700000000.1230000');
  });
});

describe('FCM HTTP v1 sender (service-account JWT → OAuth2 token)', () => {
  const dir = tempDir();
  let fcm: FakeFcm;
  before(async () => {
    fcm = await startFakeFcm(dir);
  });
  after(async () => {
    await fcm.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('data push, high priority, TTL 0; the access token is cached until expiry', async () => {
    const sender = createFcmSender(fcm.config);
    const requests = fcm.tokenRequests;
    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        sender.send({ token: `t${i}`, app: 'a', sandbox: false }, PAYLOAD),
      ),
    );
    assert.ok(results.every((r) => r.ok));
    assert.equal(fcm.tokenRequests - requests, 1, 'one token request for concurrent sends');
    const push = fcm.pushes.at(-1);
    assert.deepEqual(push?.payload, {
      type: 'call',
      unique_key: 'k1',
      attempt: '1',
      message_start_time: '1.5000000',
    });
    assert.deepEqual(JSON.parse(push?.headers.android ?? ''), { priority: 'HIGH', ttl: '0s' });
    await sender.send({ token: 'again', app: 'a', sandbox: false }, PAYLOAD);
    assert.equal(fcm.tokenRequests - requests, 1);
  });

  test('a token about to expire is renewed; 401 → new token and one retry', async () => {
    fcm.expiresInS = 30; // less than the 60 s margin: never reused
    const sender = createFcmSender(fcm.config);
    const requests = fcm.tokenRequests;
    await sender.send({ token: 'a', app: 'a', sandbox: false }, PAYLOAD);
    await sender.send({ token: 'b', app: 'a', sandbox: false }, PAYLOAD);
    assert.equal(fcm.tokenRequests - requests, 2);
    fcm.expiresInS = 3600;
    const sender2 = createFcmSender(fcm.config);
    await sender2.send({ token: 'a', app: 'a', sandbox: false }, PAYLOAD);
    fcm.unauthorizedNext = 1;
    const before = fcm.tokenRequests;
    assert.deepEqual(await sender2.send({ token: 'a', app: 'a', sandbox: false }, PAYLOAD), {
      ok: true,
    });
    assert.equal(fcm.tokenRequests - before, 1);
  });

  test('404 UNREGISTERED and 400 INVALID_ARGUMENT on the token → rejected; 500 → error', async () => {
    const sender = createFcmSender(fcm.config);
    fcm.behaviour.set('gone', 'unregistered');
    fcm.behaviour.set('bad', 'invalid');
    fcm.behaviour.set('flaky', 'error');
    const t = (token: string) => ({ token, app: 'a', sandbox: false });
    assert.deepEqual(await sender.send(t('gone'), PAYLOAD), {
      ok: false,
      reason: 'rejected',
      detail: '404 NOT_FOUND',
    });
    assert.deepEqual(await sender.send(t('bad'), PAYLOAD), {
      ok: false,
      reason: 'rejected',
      detail: '400 INVALID_ARGUMENT',
    });
    const flaky = await sender.send(t('flaky'), PAYLOAD);
    assert.equal(flaky.ok ? '' : flaky.reason, 'error');
  });

  test('not configured, or the token endpoint down: failure results', async () => {
    const none = createFcmSender({ ...fcm.config, serviceAccountFile: '' });
    const r1 = await none.send({ token: 'x', app: 'a', sandbox: false }, PAYLOAD);
    assert.equal(r1.ok ? '' : r1.reason, 'not_configured');
    const down = createFcmSender({ ...fcm.config, tokenUrl: 'http://127.0.0.1:1/token' });
    const r2 = await down.send({ token: 'x', app: 'a', sandbox: false }, PAYLOAD);
    assert.equal(r2.ok ? '' : r2.reason, 'error');
  });
});
