/** The `push` configuration keys of issue 12: apps, devicesPerAccount, the account API. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig, redactConfig } from '../../src/config/load.ts';

function problems(text: string, env: Record<string, string> = {}): string[] {
  try {
    loadConfig({ text, env });
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems.map((p) => `${p.key}: ${p.reason}`);
  }
  return [];
}

describe('push configuration', () => {
  test('the embedded default: one device per account, the Vialer app on both platforms', () => {
    const { push } = loadConfig({ text: '', env: {} });
    assert.equal(push.devicesPerAccount, 'one');
    assert.deepEqual(
      push.apps.map((a) => [a.id, a.platforms]),
      [['com.voipgrid.vialer', ['apns', 'fcm']]],
    );
    assert.equal(push.accountApi.baseUrl, '');
    assert.equal(push.accountApi.profilePath, '/api/permission/systemuser/profile/');
    assert.equal(push.accountApi.appAccountField, 'app_account');
    assert.equal(push.accountApi.accountIdField, 'account_id');
  });

  test('apps: own credentials, defaults filled, env shorthand; passphrases redacted', () => {
    const { push } = loadConfig({
      text: [
        'push:',
        '  apps:',
        '    - id: nl.partner.app',
        '      platforms: [apns]',
        '      apns: {topic: nl.partner.app, certFile: /etc/sb/p.pem, certPassphrase: s3cret}',
      ].join('\n'),
      env: {},
    });
    assert.equal(push.apps[0]?.apns.certFile, '/etc/sb/p.pem');
    assert.equal(push.apps[0]?.fcm.serviceAccountFile, '');
    assert.equal(redactConfig(push).apps[0]?.apns.certPassphrase, '***');
    const fromEnv = loadConfig({ text: '', env: { SWITCHBOARD_PUSH_APPS: 'com.a, com.b' } });
    assert.deepEqual(
      fromEnv.push.apps.map((a) => [a.id, a.platforms]),
      [
        ['com.a', ['apns', 'fcm']],
        ['com.b', ['apns', 'fcm']],
      ],
    );
  });

  test('bad values name the key', () => {
    assert.deepEqual(problems('push: {devicesPerAccount: many}'), [
      'push.devicesPerAccount: expected one of: one, several',
    ]);
    assert.deepEqual(problems('push: {apps: [{id: com.a, platforms: [apns, gcm]}]}'), [
      'push.apps[0].platforms[1]: expected one of: apns, fcm',
    ]);
    assert.deepEqual(problems('push: {apps: [{id: com.a, platforms: [apns]}, {id: com.a}]}'), [
      'push.apps[1]: app com.a is listed twice for apns',
    ]);
    assert.deepEqual(problems('push: {accountApi: {profilePath: api/profile}}').length, 1);
  });

  test('the old accountApi.url still works alone; with baseUrl the check says what replaces it', () => {
    const old = loadConfig({
      text: 'push: {accountApi: {url: "https://vg.example/api/permission/systemuser/profile/"}}',
      env: {},
    });
    assert.equal(old.push.accountApi.url, 'https://vg.example/api/permission/systemuser/profile/');
    assert.deepEqual(
      problems('push: {accountApi: {url: "https://vg.example/p/", baseUrl: "https://vg.example"}}'),
      [
        'push.accountApi.url: replaced by push.accountApi.baseUrl + push.accountApi.profilePath; set only those (url is the old single-URL form)',
      ],
    );
  });
});
