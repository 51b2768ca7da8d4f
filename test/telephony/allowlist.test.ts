/**
 * The ringer's allow-list (`announce.extension` + `announce.allowedExtensions`): exact values
 * and `_` patterns, and that no wildcard can ever stand for a character that changes what a
 * dial string dials (`@` endpoint/context, `/`, `&`, `,`, `|`, `;`, whitespace, newlines).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkAnnounceConfig } from '../../src/announce/checks.ts';
import { loadConfig } from '../../src/config/load.ts';
import { checkServiceConfig } from '../../src/serve/service.ts';
import { ExtensionAllowList } from '../../src/telephony/allowlist.ts';
import { TelephonyValidationError } from '../../src/telephony/dialstring.ts';

const policy = new ExtensionAllowList({
  defaultExtension: '42300@default',
  allowed: ['42399', '_423XX', '_9[1-3]N', '_7!', '_8.', '_5Z@ringers', '_6[0378]'],
});

describe('ExtensionAllowList', () => {
  test('the default is used when none is given, and is always allowed', () => {
    assert.equal(policy.resolve(undefined), '42300@default');
    assert.equal(policy.resolve(''), '42300@default');
    assert.equal(policy.resolve('42300@default'), '42300@default');
    const none = new ExtensionAllowList({ defaultExtension: '', allowed: [] });
    assert.throws(() => none.resolve(undefined), /extension: is required/);
    assert.throws(() => none.resolve('42300'), /not an allowed ringer extension/);
  });

  test('exact values and patterns match', () => {
    for (const value of [
      '42399',
      '42301',
      '42399',
      '912',
      '939',
      '7',
      '7123',
      '8*#+',
      '51@ringers',
      '60',
      '68',
    ]) {
      assert.equal(policy.resolve(value), value, value);
    }
  });

  test('everything else is refused, naming the config keys, not the value', () => {
    const refused = [
      '4230', // too short
      '423001', // too long
      '941', // [1-3]
      '911', // N = 2-9
      '8', // . = one or more
      '50@ringers', // Z = 1-9
      '51@other', // literal part differs
      '61', // not in [0378]
      '42301@pstn-trunk', // a pattern never matches @...
      '+31900123456@pstn-trunk',
      '7@pstn-trunk',
      '8123@trunk',
      '7abc', // wildcards are digits * # + only
    ];
    for (const value of refused) {
      assert.throws(
        () => policy.resolve(value),
        (error: Error) => {
          assert.ok(error instanceof TelephonyValidationError, value);
          assert.equal(error.field, 'extension');
          assert.equal(
            error.message,
            'extension: is not an allowed ringer extension (allowed: announce.extension or announce.allowedExtensions)',
          );
          return true;
        },
        value,
      );
    }
  });

  test('characters that change a dial string are refused before the allow-list', () => {
    const wide = new ExtensionAllowList({ defaultExtension: '', allowed: ['_X.', '_7!'] });
    for (const value of [
      '42300&PJSIP/1',
      'PJSIP/1',
      '4/1',
      '42300,1',
      '1|2',
      '1;2',
      '1 2',
      '1\n2',
      `$${'{X}'}`,
    ]) {
      assert.throws(
        () => wide.resolve(value),
        /^TelephonyValidationError: extension: must contain only/,
        value,
      );
      assert.throws(
        () => wide.resolve(value),
        (e: Error) => !/allowed ringer/.test(e.message),
      );
    }
  });

  test('bad entries are refused, naming their config key', () => {
    const cases: Array<[string[], string, RegExp]> = [
      [['_'], 'announce.allowedExtensions[0]', /matches nothing/],
      [['1', '_4.2'], 'announce.allowedExtensions[1]', /"\." may only end a pattern/],
      [['_4[a]'], 'announce.allowedExtensions[0]', /digits and ranges only/],
      [['_4[1-'], 'announce.allowedExtensions[0]', /digits and ranges only/],
      [['_4&'], 'announce.allowedExtensions[0]', /the character "&"/],
      [['_4/'], 'announce.allowedExtensions[0]', /the character "\/"/],
      [['42300,1'], 'announce.allowedExtensions[0]', /must contain only/],
    ];
    for (const [allowed, field, reason] of cases) {
      assert.throws(
        () => new ExtensionAllowList({ defaultExtension: '', allowed }),
        (error: Error) => {
          assert.ok(error instanceof TelephonyValidationError);
          assert.equal(error.field, field);
          assert.match(error.message, reason);
          return true;
        },
      );
    }
    assert.throws(
      () => new ExtensionAllowList({ defaultExtension: '1&2', allowed: [] }),
      /announce\.extension: must contain only/,
    );
  });
});

describe('config check of the announce section', () => {
  const config = (yaml: string) => loadConfig({ text: yaml, env: {} });

  test('bad allow-list entries, default and dial string are problems naming the key', () => {
    const problems = checkServiceConfig(
      config(
        "announce:\n  extension: '1&2'\n  allowedExtensions: ['_4[a]']\n  dialString: 'PJSIP/{extension},30'\n",
      ),
    );
    assert.deepEqual(
      problems.map((p) => p.key),
      ['announce.extension', 'announce.dialString'],
    );
    assert.deepEqual(
      checkAnnounceConfig(config("announce:\n  allowedExtensions: ['42300', '_4[a]']\n")).map(
        (p) => [p.key, p.reason],
      ),
      [
        [
          'announce.allowedExtensions[1]',
          'a [...] set holds digits and ranges only (e.g. [1-5] or [0378])',
        ],
      ],
    );
  });

  test('the Jenkins watcher must dial an allowed extension', () => {
    const jenkins = (extension: string) =>
      `jenkins:\n  enabled: true\n  url: http://jenkins\n  extension: '${extension}'\n`;
    assert.deepEqual(
      checkServiceConfig(config(`announce:\n  extension: '42300'\n${jenkins('42399')}`)),
      [
        {
          key: 'jenkins.extension',
          reason: 'is neither announce.extension nor matched by announce.allowedExtensions',
        },
      ],
    );
    assert.deepEqual(
      checkServiceConfig(
        config(
          `announce:\n  extension: '42300'\n  allowedExtensions: ['_423XX']\n${jenkins('42399')}`,
        ),
      ),
      [],
    );
    assert.deepEqual(
      checkServiceConfig(config(`announce:\n  extension: '42300'\n${jenkins('')}`)),
      [],
    );
    // No ringer at all: announce.extension emptied and no jenkins.extension.
    assert.equal(
      checkServiceConfig(config(`announce:\n  extension: ''\n${jenkins('')}`)).at(0)?.key,
      'jenkins.extension',
    );
    // The embedded default ringer (Gong's 42300@default) serves a watcher without extension.
    assert.deepEqual(checkServiceConfig(config(jenkins(''))), []);
    // Not checked when the announce module is off (the watcher may post to another Gong).
    assert.deepEqual(
      checkServiceConfig(config(`announce:\n  enabled: false\n${jenkins('1')}`)),
      [],
    );
  });
});
