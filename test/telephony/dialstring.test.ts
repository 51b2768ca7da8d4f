import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  asteriskSoundName,
  expandDialString,
  formatCallerId,
  validateDialTemplate,
  validateExtension,
  validateTelno,
  validateVariables,
} from '../../src/telephony/dialstring.ts';

const INJECTIONS = [
  ['newline', '100\nApplication: System'],
  ['CR', '100\r'],
  ['comma', '100,30,tT'],
  ['ampersand', '100&PJSIP/200'],
  ['semicolon', '100;2'],
  ['space', '100 200'],
  ['tab', '100\t'],
  ['pipe', '100|x'],
  ['slash', '100/x'],
  ['parenthesis', 'System(id)'],
  ['dollar', '$' + '{SHELL}'],
  ['braces', '{telno}'],
  ['empty', ''],
] as const;

describe('dial-string templates', () => {
  test('expand telno and extension templates', () => {
    assert.equal(
      expandDialString('PJSIP/{telno}@trunk', { telno: '+81312345678' }),
      'PJSIP/+81312345678@trunk',
    );
    assert.equal(
      expandDialString('Local/{extension}@default', { extension: '42300' }),
      'Local/42300@default',
    );
    assert.equal(
      expandDialString('Local/{extension}', { extension: '42300@default' }),
      'Local/42300@default',
    );
    assert.equal(
      expandDialString('SIP/trunk/{telno}', { telno: '0312345678' }),
      'SIP/trunk/0312345678',
    );
  });

  for (const [label, value] of INJECTIONS) {
    test(`rejects a ${label} in {extension} and {telno}, naming the field`, () => {
      assert.throws(() => expandDialString('Local/{extension}@default', { extension: value }), {
        name: 'TelephonyValidationError',
        field: 'extension',
      });
      assert.throws(() => expandDialString('PJSIP/{telno}@trunk', { telno: value }), {
        name: 'TelephonyValidationError',
        field: 'telno',
      });
    });
  }

  test('telephone numbers: digits with optional leading + only', () => {
    assert.equal(validateTelno('+15551234'), '+15551234');
    for (const bad of [
      '12+3',
      '++1',
      '1-2',
      '*100',
      '#',
      'abc',
      '1'.repeat(33),
      12 as unknown as string,
    ]) {
      assert.throws(() => validateTelno(bad), { field: 'telno' }, String(bad));
    }
  });

  test('extensions: dial-string characters', () => {
    for (const ok of ['100', '*97', '#1', '42300@default', 'ringer.office_1-a', '+33']) {
      assert.equal(validateExtension(ok), ok);
    }
    assert.throws(() => validateExtension('1\n2', 'addressee[0].telno'), {
      field: 'addressee[0].telno',
      message: /line break/,
    });
  });

  test('templates themselves are checked', () => {
    assert.deepEqual(validateDialTemplate('PJSIP/{telno}@trunk'), ['telno']);
    for (const bad of [
      '{telno}',
      'PJSIP/{telno},30',
      'PJSIP/{telno}&SIP/x',
      'PJSIP/{cmd}',
      'PJSIP/{telno}\n',
      'PJSIP/a b',
    ]) {
      assert.throws(() => validateDialTemplate(bad), { field: 'dialString' }, bad);
    }
    assert.throws(() => expandDialString('PJSIP/{telno}', {}), {
      field: 'telno',
      message: /required/,
    });
  });
});

describe('other values', () => {
  test('channel variables: no separators, expansions or line breaks', () => {
    assert.deepEqual(validateVariables({ A: '/x/y-1.wav', B: '12' }), ['A=/x/y-1.wav', 'B=12']);
    for (const bad of [
      'a,b',
      'a&b',
      'a|b',
      '$' + '{X}',
      '$[1+1]',
      'a b',
      'a\nb',
      'a(b)',
      'a"b',
      'a;b',
    ]) {
      assert.throws(() => validateVariables({ FILE: bad }), { field: 'variables.FILE' }, bad);
    }
    assert.throws(() => validateVariables({ 'A B': 'x' }), { name: 'TelephonyValidationError' });
  });
  test('caller ids and sound names', () => {
    assert.equal(formatCallerId('Switchboard', '999'), '"Switchboard" <999>');
    assert.equal(formatCallerId('障害通知'), '"障害通知"');
    assert.throws(() => formatCallerId('a"b'), { field: 'callerId.name' });
    assert.throws(() => formatCallerId('x', '1\n2'), { field: 'callerId.number' });
    assert.equal(
      asteriskSoundName('/var/lib/switchboard/sounds/m-42.wav'),
      '/var/lib/switchboard/sounds/m-42',
    );
    for (const bad of ['/a/../etc/x.wav', '/a/b c.wav', '/a/b,c.wav', '/a/b&c.wav', '.wav']) {
      assert.throws(() => asteriskSoundName(bad), { field: 'sound' }, bad);
    }
  });
});
