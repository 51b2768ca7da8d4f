/** Device store on SQLite and PostgreSQL; account checks (static users, account API). */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createAccountApi, createStaticAccounts } from '../../src/push/accounts.ts';
import { createDeviceStore, pushMigrations } from '../../src/push/devices.ts';
import { type Database, migrate } from '../../src/store/db.ts';
import { basic, dropSchema, openTestDb, startFakeAccountApi } from './fakes.ts';

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

    test('register, update, several devices per account, unregister, remove, check-in', async () => {
      const store = createDeviceStore(db);
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
      assert.equal(moved.created, false);
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
  });
}

describe('accounts', () => {
  test('static users: 401 missing/wrong, 403 not the owner, ok', async () => {
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
      username: 'alice',
    });
  });

  test('account API: owner check, cache, coalescing; API down → 503 (never allow)', async () => {
    const api = await startFakeAccountApi({
      'alice:pw-alice': ['123456789'],
      'carol:pw-carol': ['111111111', '222222222'],
    });
    const errors: string[] = [];
    const accounts = createAccountApi({
      url: `http://127.0.0.1:${api.port}/api/permission/`,
      cacheTtlS: 60,
      timeoutMs: 500,
      onError: (d) => errors.push(d),
    });
    const alice = basic('alice', 'pw-alice');
    const results = await Promise.all([
      accounts.check(alice, '123456789'),
      accounts.check(alice, '123456789'),
      accounts.check(alice, '999999999'),
    ]);
    assert.deepEqual(
      results.map((r) => (r.ok ? 200 : r.statusCode)),
      [200, 200, 403],
    );
    assert.equal(api.requests, 1, 'concurrent checks share one request, then the cache');
    assert.equal((await accounts.check(basic('carol', 'pw-carol'), '222222222')).ok, true);
    assert.deepEqual(await accounts.check(basic('mallory', 'x'), '123456789'), {
      ok: false,
      statusCode: 401,
    });
    api.status = 500;
    assert.deepEqual(await accounts.check(basic('dave', 'pw'), '123456789'), {
      ok: false,
      statusCode: 503,
    });
    assert.equal((await accounts.check(alice, '123456789')).ok, true, 'cached answer still used');
    await api.close();
    assert.deepEqual(await accounts.check(basic('erin', 'pw'), '123456789'), {
      ok: false,
      statusCode: 503,
    });
    assert.ok(errors.length >= 2);
    assert.ok(!errors.join(' ').includes('pw'), 'no credential in error details');
  });
});
