/** Device store on SQLite and PostgreSQL; account checks (static users, account API). */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  accountApiLocation,
  createAccountApi,
  createStaticAccounts,
  followUrl,
} from '../../src/push/accounts.ts';
import { createDeviceStore, pushMigrations } from '../../src/push/devices.ts';
import { type Database, migrate } from '../../src/store/db.ts';
import { basic, dropSchema, openTestDb, startFakeAccountApi, tokenHeader } from './fakes.ts';

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`device store (${kind})`, () => {
    const schema = `push_store_${process.pid}_${Date.now().toString(36)}`;
    let db: Database;
    before(async () => {
      db = await openTestDb(kind, schema);
      assert.deepEqual(await migrate(db, [pushMigrations]), [], 'migrations are idempotent');
    });
    after(async () => {
      await db.close();
      if (kind === 'postgres') await dropSchema(schema);
    });

    test('devicesPerAccount several: register, update, several devices per account, unregister, remove, check-in', async () => {
      const store = createDeviceStore(db, { devicesPerAccount: 'several' });
      const base = { platform: 'apns' as const, sipUserId: '111111111', app: 'com.x' };
      const a = await store.register({ ...base, token: 'tok-a', name: 'iPhone', sandbox: true });
      assert.equal(a.created, true);
      assert.equal(a.device.sandbox, true);
      const again = await store.register({ ...base, token: 'tok-a', osVersion: '17.1' });
      assert.equal(again.created, false);
      assert.equal(again.device.id, a.device.id);
      assert.equal(again.device.osVersion, '17.1');
      assert.equal(again.device.sandbox, false);
      await store.register({ ...base, platform: 'fcm', token: 'tok-b' });
      // The same token registered for another account moves there.
      await store.register({ ...base, token: 'tok-c', sipUserId: '222222222' });
      const moved = await store.register({ ...base, token: 'tok-c' });
      assert.equal(moved.created, true, 'new for this account');
      const list = await store.listBySipUser('111111111');
      assert.deepEqual(
        list.map((d) => `${d.platform}:${d.token}`),
        ['apns:tok-a', 'fcm:tok-b', 'apns:tok-c'],
      );
      assert.equal((await store.listBySipUser('222222222')).length, 0);
      assert.equal(await store.checkIn('111111111', 'tok-a'), 1);
      assert.equal(await store.checkIn('111111111'), 3);
      assert.equal(await store.checkIn('999999999'), 0);
      assert.equal(await store.unregister('apns', '111111111', 'tok-b', 'com.x'), false);
      assert.equal(await store.unregister('fcm', '111111111', 'tok-b', 'com.x'), true);
      assert.equal(await store.remove(a.device.id), true);
      assert.equal(await store.remove(a.device.id), false);
      assert.equal((await store.listBySipUser('111111111')).length, 1);
    });

    test('devicesPerAccount one (default, the original): a registration replaces the device', async () => {
      const store = createDeviceStore(db);
      const sip = '333333333';
      const base = { platform: 'apns' as const, sipUserId: sip, app: 'com.voipgrid.vialer' };
      const first = await store.register({ ...base, token: 'one-a', name: 'iPhone' });
      assert.equal(first.created, true);
      assert.equal((await store.register({ ...base, token: 'one-a' })).created, false);
      const other = await store.register({ ...base, token: 'one-b', osVersion: '17.2' });
      assert.equal(other.created, false, 'another token: updated');
      assert.equal(other.device.id, first.device.id);
      const android = await store.register({ ...base, platform: 'fcm', token: 'one-c' });
      assert.equal(android.created, false, 'the other platform: updated');
      let list = await store.listBySipUser(sip);
      assert.deepEqual(
        list.map((d) => `${d.platform}:${d.token}:${d.osVersion}`),
        ['fcm:one-c:'],
      );
      // A known token registered for another account moves there: created for that one.
      const moved = await store.register({
        ...base,
        platform: 'fcm',
        token: 'one-c',
        sipUserId: '444444444',
      });
      assert.equal(moved.created, true);
      assert.equal((await store.listBySipUser(sip)).length, 0);
      assert.equal((await store.listBySipUser('444444444')).length, 1);
      // Account 444 has a device; 333 registers 444's token: 444 loses it, 333 gets it.
      await store.register({ ...base, token: 'one-d' });
      const back = await store.register({ ...base, platform: 'fcm', token: 'one-c' });
      assert.equal(back.created, false);
      list = await store.listBySipUser(sip);
      assert.deepEqual(
        list.map((d) => `${d.platform}:${d.token}`),
        ['fcm:one-c'],
      );
      assert.equal((await store.listBySipUser('444444444')).length, 0);
      // Accounts left with several devices by the other mode get one again at the next registration.
      const several = createDeviceStore(db, { devicesPerAccount: 'several' });
      await several.register({ ...base, token: 'one-e' });
      assert.equal((await store.listBySipUser(sip)).length, 2);
      await store.register({ ...base, token: 'one-f' });
      assert.deepEqual(
        (await store.listBySipUser(sip)).map((d) => d.token),
        ['one-f'],
      );
    });

    test('concurrent registrations of one account keep one device', async () => {
      const store = createDeviceStore(db);
      const sip = '555555555';
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          store.register({ platform: 'apns', sipUserId: sip, app: 'com.x', token: `race-${i}` }),
        ),
      );
      assert.equal(results.filter((r) => r.created).length, 1);
      assert.equal((await store.listBySipUser(sip)).length, 1);
    });
  });
}

describe('accounts', () => {
  test('static users: Basic or Token user:password; 401 missing/wrong, 403 not the owner', async () => {
    const accounts = createStaticAccounts([
      { username: 'alice', password: 'alice-password', sipUserIds: ['123456789'] },
    ]);
    assert.deepEqual(await accounts.check(undefined, '123456789'), { ok: false, statusCode: 401 });
    assert.deepEqual(await accounts.check('Bearer abc', '123456789'), {
      ok: false,
      statusCode: 401,
    });
    assert.deepEqual(await accounts.check(basic('alice', 'nope-nope'), '123456789'), {
      ok: false,
      statusCode: 401,
    });
    assert.deepEqual(await accounts.check(basic('alice', 'alice-password'), '987654321'), {
      ok: false,
      statusCode: 403,
    });
    assert.deepEqual(await accounts.check(basic('alice', 'alice-password'), '123456789'), {
      ok: true,
    });
    assert.deepEqual(await accounts.check(tokenHeader('alice', 'alice-password'), '123456789'), {
      ok: true,
    });
    assert.deepEqual(await accounts.check(tokenHeader('alice', 'wrong-token'), '123456789'), {
      ok: false,
      statusCode: 401,
    });
  });

  test('account API: two lookups, any scheme forwarded, cache by hash, coalescing; down → 503', async () => {
    const alice = tokenHeader('alice@example.com', 'api-token-alice');
    const bob = basic('bob@example.com', 'pw-bob');
    const carol = 'Bearer carol-oauth-token';
    const api = await startFakeAccountApi([
      { authorization: alice, sipUserId: '123456789' },
      { authorization: bob, sipUserId: '222222222' },
      { authorization: carol, sipUserId: '333333333' },
      { authorization: 'Token nobody@example.com:t', sipUserId: null },
    ]);
    const errors: string[] = [];
    const accounts = createAccountApi({
      baseUrl: api.url,
      profilePath: '/api/permission/systemuser/profile/',
      cacheTtlS: 60,
      timeoutMs: 500,
      onError: (d) => errors.push(d),
    });
    const results = await Promise.all([
      accounts.check(alice, '123456789'),
      accounts.check(alice, '123456789'),
      accounts.check(alice, '999999999'),
    ]);
    assert.deepEqual(
      results.map((r) => (r.ok ? 200 : r.statusCode)),
      [200, 200, 403],
    );
    assert.deepEqual(
      api.requests.map((r) => [r.path, r.authorization]),
      [
        ['/api/permission/systemuser/profile/', alice],
        ['/api/phoneaccount/basic/phoneaccount/31000/', alice],
      ],
      'the header went as it came, profile then app account; concurrent checks shared it',
    );
    assert.equal((await accounts.check(bob, '222222222')).ok, true);
    assert.equal((await accounts.check(carol, '333333333')).ok, true);
    assert.deepEqual(await accounts.check('Token nobody@example.com:t', '123456789'), {
      ok: false,
      statusCode: 403,
    });
    assert.deepEqual(await accounts.check(basic('mallory', 'x'), '123456789'), {
      ok: false,
      statusCode: 401,
    });
    const asked = api.requests.length;
    api.status = 500;
    assert.deepEqual(await accounts.check(basic('dave', 'pw'), '123456789'), {
      ok: false,
      statusCode: 503,
    });
    assert.equal((await accounts.check(alice, '123456789')).ok, true, 'cached answer still used');
    assert.equal(api.requests.length, asked + 1, 'only dave was asked');
    api.status = 0;
    await api.close();
    assert.deepEqual(await accounts.check(basic('erin', 'pw'), '123456789'), {
      ok: false,
      statusCode: 503,
    });
    assert.ok(errors.length >= 2);
    for (const secret of ['pw', 'api-token-alice', 'carol-oauth-token']) {
      assert.ok(!errors.join(' ').includes(secret), 'no credential in error details');
    }
  });

  test('account API: upstream 401 and 403 pass through at each step, other statuses are 503', async () => {
    const alice = tokenHeader('alice@example.com', 'api-token-alice');
    const api = await startFakeAccountApi([{ authorization: alice, sipUserId: '123456789' }]);
    const accounts = createAccountApi({
      baseUrl: api.url,
      profilePath: '/api/permission/systemuser/profile/',
      cacheTtlS: 0,
      timeoutMs: 500,
    });
    const statusOf = async () => {
      const r = await accounts.check(alice, '123456789');
      return r.ok ? 200 : r.statusCode;
    };
    for (const [forced, expected] of [
      [401, 401],
      [403, 403],
      [404, 503],
      [500, 503],
      [302, 503],
    ] as const) {
      api.status = forced;
      assert.equal(await statusOf(), expected, `profile ${forced}`);
      api.status = 0;
      api.accountStatus = forced;
      assert.equal(await statusOf(), expected, `app account ${forced}`);
      api.accountStatus = 0;
    }
    assert.equal(await statusOf(), 200);
    await api.close();
  });

  test('account API: the app account is only ever fetched on the account API (no SSRF)', async () => {
    const elsewhere: string[] = [];
    const other = http.createServer((req, res) => {
      elsewhere.push(String(req.headers.authorization ?? ''));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"account_id": 123456789}');
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const otherPort = (other.address() as AddressInfo).port;
    const alice = tokenHeader('alice@example.com', 'api-token-alice');
    const api = await startFakeAccountApi([{ authorization: alice, sipUserId: '123456789' }]);
    const errors: string[] = [];
    const accounts = createAccountApi({
      baseUrl: api.url,
      profilePath: '/api/permission/systemuser/profile/',
      cacheTtlS: 0,
      timeoutMs: 500,
      onError: (d) => errors.push(d),
    });
    for (const target of [
      `http://127.0.0.1:${otherPort}/api/phoneaccount/basic/phoneaccount/31000/`,
      `//127.0.0.1:${otherPort}/api/phoneaccount/basic/phoneaccount/31000/`,
      `/\\127.0.0.1:${otherPort}/x`,
      `http://user:pw@127.0.0.1:${api.port}/api/phoneaccount/basic/phoneaccount/31000/`,
      'api/phoneaccount/basic/phoneaccount/31000/',
      'file:///etc/passwd',
    ]) {
      api.appAccount = target;
      assert.deepEqual(
        await accounts.check(alice, '123456789'),
        { ok: false, statusCode: 503 },
        target,
      );
    }
    assert.deepEqual(elsewhere, [], 'nothing reached the other server');
    assert.ok(errors.some((e) => e.includes('points outside the account API')));
    // An absolute URL on the account API's own origin is fine.
    api.appAccount = `${api.url}/api/phoneaccount/basic/phoneaccount/31000/`;
    assert.deepEqual(await accounts.check(alice, '123456789'), { ok: true });
    await api.close();
    other.closeAllConnections();
    await new Promise<void>((resolve) => other.close(() => resolve()));
  });

  test('account API: configurable field names; the old sip_user_ids shape and url key still work', async () => {
    const header = basic('legacy', 'pw-legacy');
    const api = await startFakeAccountApi([
      { authorization: header, sipUserId: null, sipUserIds: ['111111111', '222222222'] },
    ]);
    const location = accountApiLocation({
      baseUrl: '',
      profilePath: '/ignored/',
      url: `${api.url}/api/permission/systemuser/profile/`,
    });
    assert.deepEqual(location, {
      baseUrl: api.url,
      profilePath: '/api/permission/systemuser/profile/',
    });
    const accounts = createAccountApi({
      ...(location as NonNullable<typeof location>),
      cacheTtlS: 0,
      timeoutMs: 500,
    });
    assert.deepEqual(await accounts.check(header, '222222222'), { ok: true });
    assert.deepEqual(await accounts.check(header, '333333333'), { ok: false, statusCode: 403 });
    await api.close();

    // Another account service: its own paths and field names.
    const custom = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      if (req.url === '/v2/me') res.end('{"phone": "/v2/phones/9"}');
      else if (req.url === '/v2/phones/9') res.end('{"sip": "444444444"}');
      else res.end('{}');
    });
    await new Promise<void>((resolve) => custom.listen(0, '127.0.0.1', resolve));
    const port = (custom.address() as AddressInfo).port;
    const own = createAccountApi({
      baseUrl: `http://127.0.0.1:${port}`,
      profilePath: '/v2/me',
      appAccountField: 'phone',
      accountIdField: 'sip',
      cacheTtlS: 0,
      timeoutMs: 500,
    });
    assert.deepEqual(await own.check('Bearer x', '444444444'), { ok: true });
    custom.closeAllConnections();
    await new Promise<void>((resolve) => custom.close(() => resolve()));
  });

  test('followUrl keeps the second GET on the account API origin', () => {
    const base = 'https://partner.voipgrid.nl';
    assert.equal(
      followUrl(base, '/api/phoneaccount/basic/phoneaccount/1/')?.href,
      'https://partner.voipgrid.nl/api/phoneaccount/basic/phoneaccount/1/',
    );
    assert.equal(followUrl('https://x.test/vg/', '/api/a/')?.href, 'https://x.test/vg/api/a/');
    for (const path of ['//evil.test/a', '/\\evil.test/a', 'https://evil.test/a', 'a/b', '']) {
      assert.equal(followUrl(base, path), undefined, path);
    }
  });
});
