import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  bindingKeyProblem,
  compileBindingKey,
  Fifo,
  matchesBindingKey,
  validateBindingKey,
  validateRoutingKey,
} from '../../src/bus/bus.ts';

describe('matchesBindingKey (AMQP topic semantics)', () => {
  const table: [string, string, boolean][] = [
    ['call.hangup', 'call.hangup', true],
    ['call.hangup', 'call.up', false],
    ['call.hangup', 'call.hangup.x', false],
    ['call.*', 'call.hangup', true],
    ['call.*', 'call', false],
    ['call.*', 'call.a.b', false],
    ['*.hangup', 'call.hangup', true],
    ['*', 'call', true],
    ['*', 'call.hangup', false],
    ['*.*', 'a.b', true],
    ['*.*', 'a', false],
    ['#', 'a', true],
    ['#', 'a.b.c', true],
    ['call.#', 'call', true],
    ['call.#', 'call.hangup', true],
    ['call.#', 'call.a.b.c', true],
    ['call.#', 'calls.hangup', false],
    ['#.hangup', 'hangup', true],
    ['#.hangup', 'call.hangup', true],
    ['#.hangup', 'a.b.hangup', true],
    ['#.hangup', 'a.hangup.b', false],
    ['a.#.b', 'a.b', true],
    ['a.#.b', 'a.x.y.b', true],
    ['a.#.b', 'a.x.y', false],
    ['#.a.#', 'x.a.y', true],
    ['#.a.#', 'a', true],
    ['#.a.#', 'x.b.y', false],
    ['a.#.#.b', 'a.b', true],
    ['a.*.#', 'a', false],
    ['a.*.#', 'a.b', true],
    ['a.*.#', 'a.b.c.d', true],
    ['#.*', 'a', true],
    ['#.*', 'a.b.c', true],
    ['ami.Newchannel', 'ami.newchannel', false],
    ['chat.message.*.42', 'chat.message.ca7f87e9-c2c8-5fad-ba1b-c3140ebb9be3.42', true],
    ['chat.message.*.42', 'chat.message.ca7f87e9-c2c8-5fad-ba1b-c3140ebb9be3.43', false],
  ];
  for (const [binding, routing, expected] of table) {
    it(`${binding} ${expected ? 'matches' : 'does not match'} ${routing}`, () => {
      assert.equal(matchesBindingKey(binding, routing), expected);
      assert.equal(compileBindingKey(binding)(routing), expected);
    });
  }
});

describe('validateBindingKey / validateRoutingKey', () => {
  it('accepts XiVO keys and wildcards', () => {
    for (const key of [
      '#',
      '*',
      'ami.QueueMemberStatus',
      'status.agent',
      'service.registered.xivo-ctid',
      'chat.message.ca7f87e9-c2c8-5fad-ba1b-c3140ebb9be3.42',
      'call.#',
      '*.hangup',
      'call_form_result',
    ]) {
      assert.equal(validateBindingKey(key), key);
    }
  });
  it('rejects empty words with a reason naming the problem', () => {
    for (const key of ['', '.', 'a..b', '.a', 'a.']) {
      assert.throws(() => validateBindingKey(key), /empty/);
    }
  });
  it('rejects glued wildcards and illegal characters', () => {
    assert.throws(() => validateBindingKey('call*'), /must be whole words/);
    assert.throws(() => validateBindingKey('call.#x'), /must be whole words/);
    assert.throws(() => validateBindingKey('call hangup'), /invalid word/);
    assert.throws(() => validateBindingKey('call.é'), /invalid word/);
    assert.throws(() => validateBindingKey('a'.repeat(256)), /255 bytes/);
    assert.equal(bindingKeyProblem('call.#'), undefined);
    assert.match(bindingKeyProblem('a..b') ?? '', /position 2/);
  });
  it('rejects wildcards in routing keys', () => {
    assert.throws(() => validateRoutingKey('call.*'), /wildcard/);
    assert.throws(() => validateRoutingKey('#'), /wildcard/);
    assert.equal(validateRoutingKey('call.hangup'), 'call.hangup');
  });
});

describe('Fifo', () => {
  it('keeps order across shift, unshiftAll and compaction', () => {
    const q = new Fifo<number>();
    for (let i = 0; i < 3000; i++) q.push(i);
    for (let i = 0; i < 2000; i++) assert.equal(q.shift(), i);
    q.unshiftAll([-2, -1]);
    assert.equal(q.length, 1002);
    assert.equal(q.peek(), -2);
    const rest = q.drain();
    assert.deepEqual(rest.slice(0, 3), [-2, -1, 2000]);
    assert.equal(rest.at(-1), 2999);
    assert.equal(q.shift(), undefined);
  });
});
