import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DEFAULT_SIM_SCRIPT,
  parseCallerId,
  parseScriptFile,
  resolveDialplan,
  resolveScript,
} from '../../src/sim/index.ts';

describe('scripts', () => {
  const scripts = {
    '201': { answerAfterMs: 1 },
    _20X: { outcome: 'busy' as const },
    '_2[5-6]!': { outcome: 'congestion' as const },
    '*': { outcome: 'noanswer' as const },
  };

  test('exact over pattern over * over defaults', () => {
    assert.equal(resolveScript(scripts, '201').answerAfterMs, 1);
    assert.equal(resolveScript(scripts, '201').outcome, 'answer');
    assert.equal(resolveScript(scripts, '209').outcome, 'busy');
    assert.equal(resolveScript(scripts, '2512').outcome, 'congestion');
    assert.equal(resolveScript(scripts, '2100').outcome, 'noanswer');
    assert.deepEqual(resolveScript({}, '1', { dtmf: '9' }), { ...DEFAULT_SIM_SCRIPT, dtmf: '9' });
  });

  test('script files: numbers at the top or scripts/dialplan sections, errors name the key', () => {
    assert.deepEqual(parseScriptFile('{"202": {"result": "busy"}}').scripts, {
      '202': { outcome: 'busy' },
    });
    const file = parseScriptFile(
      'scripts:\n  "*": {dtmf: "1"}\ndialplan:\n  alert: {playback: "", userEvent: null}\n',
    );
    assert.deepEqual(file.dialplan, { alert: { playback: '', userEvent: null } });
    assert.equal(resolveDialplan(file.dialplan, 'alert').read, 'DIGIT,,1,,,5');
    assert.equal(resolveDialplan(file.dialplan, 'other').playback, 'beep');
    for (const [text, message] of [
      ['"201": {outcome: maybe}', /201\.outcome: expected one of/],
      ['"201": {answerAfterMs: -1}', /201\.answerAfterMs/],
      ['"201": {dtmf: "x"}', /201\.dtmf/],
      ['"201": {color: red}', /201\.color: unknown key/],
      ['"2 01": {}', /not a number/],
      [
        'dialplan: {alert: {userEvent: {name: E, fields: {Channel: x}}}}',
        /fields\.Channel: reserved/,
      ],
      ['[1, 2]', /expected a mapping/],
      ['"201": {', /script/],
    ] as const) {
      assert.throws(() => parseScriptFile(text), message, text);
    }
  });

  test('caller ids as ast_callerid_parse splits them', () => {
    assert.deepEqual(parseCallerId('"Switchboard" <999>'), { name: 'Switchboard', num: '999' });
    assert.deepEqual(parseCallerId('Alert <+81 3>'), { name: 'Alert', num: '+81 3' });
    assert.deepEqual(parseCallerId('999'), { name: '', num: '999' });
    assert.deepEqual(parseCallerId(''), { name: '', num: '' });
  });
});

test('dialplan validKeys / rounds / invalidKeyEvent (re-prompt on a wrong key): parsed, errors name the key', () => {
  const file = parseScriptFile(
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a dialplan variable
    'dialplan:\n  switchboard-callout: {validKeys: "12", rounds: 3, invalidKeyEvent: {name: SwitchboardInvalidKey, fields: {Digit: "${DIGIT}"}}}\n',
  );
  const plan = resolveDialplan(file.dialplan, 'switchboard-callout');
  assert.equal(plan.validKeys, '12');
  assert.equal(plan.rounds, 3);
  assert.deepEqual(plan.invalidKeyEvent, {
    name: 'SwitchboardInvalidKey',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a dialplan variable
    fields: { Digit: '${DIGIT}' },
  });
  assert.throws(
    () => parseScriptFile('dialplan:\n  x: {validKeys: "1x"}\n'),
    /dialplan\.x\.validKeys/,
  );
  assert.throws(() => parseScriptFile('dialplan:\n  x: {rounds: 0}\n'), /dialplan\.x\.rounds/);
});
