import assert from 'node:assert/strict';
import { generateKeyPairSync, verify } from 'node:crypto';
import { describe, test } from 'node:test';
import { Counter, Registry } from 'prom-client';
import { backoffMs } from '../../src/util/backoff.ts';
import { isCidr } from '../../src/util/cidr.ts';
import { signJwt } from '../../src/util/jwt.ts';
import { reuseMetric } from '../../src/util/metrics.ts';
import { TimeoutError, withTimeout } from '../../src/util/timeout.ts';

describe('backoffMs', () => {
  test('full jitter: uniform below the ceiling, which doubles up to maxMs', () => {
    const top = { initialMs: 100, maxMs: 1000, random: () => 0.999999 };
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map((n) => backoffMs(n, top)),
      [99, 199, 399, 799, 999, 999],
    );
    assert.equal(backoffMs(3, { initialMs: 100, maxMs: 1000, random: () => 0 }), 0);
  });

  test('±f jitter stays within [1-f, 1+f) of the ceiling and never above maxMs', () => {
    const options = { initialMs: 100, maxMs: 1000, jitter: 0.2 };
    assert.equal(backoffMs(0, { ...options, random: () => 0 }), 80);
    assert.equal(backoffMs(0, { ...options, random: () => 0.999999 }), 119);
    assert.equal(backoffMs(10, { ...options, random: () => 0.999999 }), 1000);
  });

  test('no jitter: exactly the ceiling; a bad attempt number throws', () => {
    assert.deepEqual(
      [0, 1, 2, 10].map((n) => backoffMs(n, { initialMs: 1000, maxMs: 60_000, jitter: 0 })),
      [1000, 2000, 4000, 60_000],
    );
    assert.throws(() => backoffMs(-1, { initialMs: 1, maxMs: 1 }), RangeError);
  });
});

describe('withTimeout', () => {
  test('settles as the promise does', async () => {
    assert.equal(await withTimeout(Promise.resolve(7), 1000, 'seven'), 7);
    await assert.rejects(withTimeout(Promise.reject(new Error('no')), 1000, 'x'), /no/);
  });

  test('a promise that never settles: TimeoutError naming what was waited for', async () => {
    await assert.rejects(
      withTimeout(new Promise(() => {}), 10, 'login'),
      (error: unknown) =>
        error instanceof TimeoutError &&
        error.timeoutMs === 10 &&
        error.message === 'no answer within 10 ms (login)',
    );
  });
});

describe('reuseMetric', () => {
  test('the second build on one registry gets the first metric; without a registry, a new one', () => {
    const registry = new Registry();
    const make = () => new Counter({ name: 'x_total', help: 'x', registers: [registry] });
    const first = reuseMetric(registry, 'x_total', make);
    assert.equal(
      reuseMetric(registry, 'x_total', make),
      first,
      'no "already registered" error, the same counter',
    );
    const loose = () => new Counter({ name: 'y_total', help: 'y', registers: [] });
    assert.notEqual(
      reuseMetric(undefined, 'y_total', loose),
      reuseMetric(undefined, 'y_total', loose),
    );
  });
});

describe('signJwt', () => {
  const decode = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));

  test('ES256 (APNs): header alg set, claims kept, a raw r||s signature that verifies', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const jwt = signJwt('ES256', { kid: 'KEY123' }, { iss: 'TEAM', iat: 1 }, pem);
    const [header = '', claims = '', signature = ''] = jwt.split('.');
    assert.deepEqual(decode(header), { kid: 'KEY123', alg: 'ES256' });
    assert.deepEqual(decode(claims), { iss: 'TEAM', iat: 1 });
    const raw = Buffer.from(signature, 'base64url');
    assert.equal(raw.length, 64, 'IEEE P1363, not DER');
    assert.ok(
      verify(
        'sha256',
        Buffer.from(`${header}.${claims}`),
        { key: publicKey, dsaEncoding: 'ieee-p1363' },
        raw,
      ),
    );
  });

  test('RS256 (FCM): a PKCS#1 v1.5 signature that verifies; a key that is none throws', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const jwt = signJwt('RS256', { typ: 'JWT' }, { aud: 'https://oauth2.example/token' }, pem);
    const [header = '', claims = '', signature = ''] = jwt.split('.');
    assert.deepEqual(decode(header), { typ: 'JWT', alg: 'RS256' });
    assert.ok(
      verify(
        'sha256',
        Buffer.from(`${header}.${claims}`),
        publicKey,
        Buffer.from(signature, 'base64url'),
      ),
    );
    assert.throws(() => signJwt('RS256', {}, {}, 'not a key'));
  });
});

describe('isCidr', () => {
  test('addresses and networks of both families; bad prefixes and non-addresses refused', () => {
    for (const good of [
      '10.0.0.0/8',
      '192.168.1.7',
      '::1/128',
      'fd00::/8',
      '::ffff:10.0.0.0/104',
    ]) {
      assert.ok(isCidr(good), good);
    }
    for (const bad of [
      '10.0.0.0/33',
      '::1/129',
      '10.0.0.0/8/1',
      'example.com',
      '10.0.0/8',
      '1.2.3.4/x',
    ]) {
      assert.ok(!isCidr(bad), bad);
    }
  });
});
