import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { AmiMessage } from '../../src/ami/message.ts';
import { fields, inheritsNothing } from '../../src/ami/message.ts';
import {
  AmiParser,
  AmiProtocolError,
  serializeAction,
  serializeMessage,
} from '../../src/ami/protocol.ts';

import { PROTOTYPE_NAMES, valueFor } from '../support/hostile.ts';

const RECORDINGS = join(import.meta.dirname, '../fixtures/asterisk22/recordings');

/** The bytes Asterisk sent (`<<` blocks) in a `.raw.txt` wire log. */
function asteriskSide(rawLog: string): string {
  let out = '';
  let inbound = false;
  for (const line of rawLog.split('\n')) {
    if (line.startsWith('<< ') || line.startsWith('>> ')) {
      inbound = line.startsWith('<< ');
      const rest = line.slice(3);
      // The banner is logged on the marker line itself.
      if (inbound && !/^\d+\.\d+$/.test(rest)) out += `${rest}\r\n`;
      continue;
    }
    if (inbound) out += `${line}\n`;
  }
  // Lines were split on \n; the content lines keep their \r. Drop the final extra \n.
  return out.endsWith('\n\n') ? out.slice(0, -1) : out;
}

/**
 * Parses `chunks`; `messages` are plain copies (for deepEqual against literals), `raw` the
 * parser's own objects, each checked to inherit nothing.
 */
function parseAll(chunks: (string | Buffer)[], maxMessageBytes?: number) {
  const messages: AmiMessage[] = [];
  const raw: AmiMessage[] = [];
  const banners: string[] = [];
  const parser = new AmiParser({
    onMessage: (m) => {
      assert.ok(inheritsNothing(m), 'a parsed message inherits nothing');
      raw.push(m);
      messages.push({ ...m });
    },
    onBanner: (b) => banners.push(b),
    ...(maxMessageBytes === undefined ? {} : { maxMessageBytes }),
  });
  for (const chunk of chunks) parser.push(chunk);
  return { messages, raw, banners, parser };
}

const LOGIN_OK =
  'Asterisk Call Manager/11.0.0\r\nResponse: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\n' +
  'Event: Newchannel\r\nPrivilege: call,all\r\nCallerIDName: Zoë 日本 🎉\r\nUniqueid: 17.1\r\n\r\n' +
  'Event: VarSet\r\nChanVariable: a=1\r\nChanVariable: b=2\r\nChanVariable: c=3\r\nValue: x: y\r\n\r\n';

describe('AmiParser', () => {
  test('parses banner, responses, events, values with colons and repeated keys', () => {
    const { messages, banners } = parseAll([LOGIN_OK]);
    assert.deepEqual(banners, ['Asterisk Call Manager/11.0.0']);
    assert.deepEqual(messages, [
      { Response: 'Success', ActionID: '1', Message: 'Authentication accepted' },
      { Event: 'Newchannel', Privilege: 'call,all', CallerIDName: 'Zoë 日本 🎉', Uniqueid: '17.1' },
      { Event: 'VarSet', ChanVariable: ['a=1', 'b=2', 'c=3'], Value: 'x: y' },
    ]);
  });

  test('every single split point (bytes, incl. inside UTF-8 characters and CRLF) gives the same result', () => {
    const bytes = Buffer.from(LOGIN_OK);
    const expected = parseAll([bytes]).messages;
    for (let i = 0; i <= bytes.length; i++) {
      const { messages, banners } = parseAll([bytes.subarray(0, i), bytes.subarray(i)]);
      assert.deepEqual(messages, expected, `split at ${i}`);
      assert.deepEqual(banners, ['Asterisk Call Manager/11.0.0'], `split at ${i}`);
    }
    const oneByOne = parseAll([...bytes].map((b) => Buffer.from([b])));
    assert.deepEqual(oneByOne.messages, expected);
  });

  test('every split point of a real Asterisk 22 wire log', () => {
    const wire = Buffer.from(
      asteriskSide(readFileSync(join(RECORDINGS, 'dtmf_originate_app.raw.txt'), 'utf8')),
    );
    const expected = parseAll([wire]).messages;
    assert.ok(expected.length > 30);
    for (let i = 0; i <= wire.length; i += 1) {
      const { messages } = parseAll([wire.subarray(0, i), wire.subarray(i)]);
      assert.equal(messages.length, expected.length, `split at ${i}`);
      if (i % 97 === 0) assert.deepEqual(messages, expected, `split at ${i}`);
    }
  });

  test('same messages after the shape cache warmed up (many repeats) as on a fresh parser', () => {
    const { messages } = parseAll(Array(20).fill(LOGIN_OK.slice(LOGIN_OK.indexOf('Event:'))));
    assert.equal(messages.length, 40);
    for (let i = 0; i < 40; i += 2) {
      assert.equal(messages[i]?.CallerIDName, 'Zoë 日本 🎉');
      assert.deepEqual(messages[i + 1]?.ChanVariable, ['a=1', 'b=2', 'c=3']);
    }
    // Key order is kept.
    assert.deepEqual(Object.keys(messages[38] as AmiMessage), [
      'Event',
      'Privilege',
      'CallerIDName',
      'Uniqueid',
    ]);
  });

  test('tolerates bare LF line endings and ignores stray blank lines', () => {
    const { messages, banners } = parseAll([
      'Asterisk Call Manager/2.10.6\n\n\nEvent: A\nX: 1\n\nEvent: B\r\nY:2\r\n\r\n',
    ]);
    assert.deepEqual(banners, ['Asterisk Call Manager/2.10.6']);
    assert.deepEqual(messages, [
      { Event: 'A', X: '1' },
      { Event: 'B', Y: '2' },
    ]);
  });

  test('empty values and __proto__ keys stay own string properties', () => {
    for (let r = 0; r < 5; r++) {
      const { raw } = parseAll(['Event: X\r\nAccountCode: \r\n__proto__: evil\r\n\r\n']);
      const m = raw[0] as AmiMessage;
      assert.equal(m.AccountCode, '');
      assert.ok(inheritsNothing(m));
      assert.equal(Object.getOwnPropertyDescriptor(m, '__proto__')?.value, 'evil');
    }
  });

  test('Response: Follows, Asterisk 13 style (raw output until --END COMMAND--, blank output lines kept)', () => {
    const wire =
      'Response: Follows\r\nPrivilege: Command\r\nActionID: c1\r\n' +
      'Channel (Context Extension Pri ) State Appl.\nSIP/1-0001 (from: x) Up Dial\n\n1 active channel\n--END COMMAND--\r\n\r\n' +
      'Event: After\r\n\r\n';
    const bytes = Buffer.from(wire);
    for (let i = 0; i <= bytes.length; i++) {
      const { messages } = parseAll([bytes.subarray(0, i), bytes.subarray(i)]);
      assert.deepEqual(
        messages,
        [
          {
            Response: 'Follows',
            Privilege: 'Command',
            ActionID: 'c1',
            Output: [
              'Channel (Context Extension Pri ) State Appl.',
              'SIP/1-0001 (from: x) Up Dial',
              '',
              '1 active channel',
            ],
          },
          { Event: 'After' },
        ],
        `split at ${i}`,
      );
    }
    // Output glued to the terminator, one line.
    const glued = parseAll([
      'Response: Follows\r\nActionID: c2\r\nNo such command--END COMMAND--\r\n\r\n',
    ]);
    assert.deepEqual(glued.messages, [
      { Response: 'Follows', ActionID: 'c2', Output: 'No such command' },
    ]);
  });

  test('Asterisk 14+ command output: repeated Output keys', () => {
    const { messages } = parseAll([
      'Response: Success\r\nActionID: c3\r\nMessage: Command output follows\r\nOutput: line 1\r\nOutput: line: 2\r\n\r\n',
    ]);
    assert.deepEqual(fields(messages[0] as AmiMessage, 'Output'), ['line 1', 'line: 2']);
  });

  test('maxMessageBytes: a too large message throws AmiProtocolError instead of buffering', () => {
    const big = `Event: Big\r\nData: ${'x'.repeat(5000)}\r\n\r\n`;
    assert.throws(
      () => parseAll([big], 1000),
      (e: unknown) =>
        e instanceof AmiProtocolError && e.code === 'MESSAGE_TOO_LARGE' && /1000/.test(e.message),
    );
    // Also when the oversized message never ends (unterminated line, split over chunks).
    const parser = new AmiParser({ onMessage: () => undefined, maxMessageBytes: 1000 });
    parser.push('Event: Big\r\nData: ');
    assert.throws(() => {
      for (let i = 0; i < 20; i++) parser.push('y'.repeat(100));
    }, AmiProtocolError);
    // Multi-byte characters count as bytes: 400 x 3-byte chars = 1200 bytes > 1000.
    assert.throws(
      () => parseAll([`Event: U\r\nData: ${'日'.repeat(400)}\r\n\r\n`], 1000),
      AmiProtocolError,
    );
    // Just below the limit passes.
    assert.equal(
      parseAll([`Event: S\r\nData: ${'x'.repeat(900)}\r\n\r\n`], 1000).messages.length,
      1,
    );
  });

  test('a header named like any Object.prototype member is an own field, whatever the path', () => {
    // Each name alone (first messages of a shape are built generically, later ones by the
    // compiled constructor), twice (repeated key: an array), and all in one message.
    for (const name of PROTOTYPE_NAMES) {
      const once = `Event: UserEvent\r\nUserEvent: X\r\n${name}: ${valueFor(name)}\r\n\r\n`;
      const twice = `Event: UserEvent\r\n${name}: a\r\n${name}: b\r\n${name}: c\r\n\r\n`;
      const after = 'Event: After\r\n\r\n';
      const { raw } = parseAll([once.repeat(6) + twice + after]);
      assert.equal(raw.length, 8, name);
      for (const m of raw.slice(0, 6)) {
        assert.deepEqual(Object.keys(m), ['Event', 'UserEvent', name], name);
        assert.equal(Object.getOwnPropertyDescriptor(m, name)?.value, valueFor(name), name);
        assert.equal(m[name], valueFor(name), name);
      }
      assert.deepEqual(raw[6]?.[name], ['a', 'b', 'c'], name);
      assert.equal(raw[7]?.Event, 'After');
      // A name that was not sent reads as undefined, never as the inherited member.
      const other = PROTOTYPE_NAMES.find((n) => n !== name) as string;
      assert.equal((raw[0] as AmiMessage)[other], undefined, `${other} absent`);
      assert.equal(other in (raw[0] as AmiMessage), false, `${other} not in`);
    }
    const all = `Event: UserEvent\r\n${PROTOTYPE_NAMES.map((n) => `${n}: ${valueFor(n)}\r\n`).join('')}\r\n`;
    const { raw } = parseAll([all.repeat(5)]);
    assert.equal(raw.length, 5);
    for (const m of raw) {
      for (const name of PROTOTYPE_NAMES) assert.equal(m[name], valueFor(name), name);
      assert.deepEqual(Object.keys(m), ['Event', ...PROTOTYPE_NAMES]);
      assert.equal(
        JSON.stringify(m),
        JSON.stringify(
          Object.fromEntries([
            ['Event', 'UserEvent'],
            ...PROTOTYPE_NAMES.map((n) => [n, valueFor(n)]),
          ]),
        ),
      );
    }
  });

  test('onError: an oversized message is skipped up to its blank line and the next ones are parsed', () => {
    const big = `Event: Big\r\nData: ${'x'.repeat(5000)}\r\nMore: 1\r\n\r\n`;
    const unterminated = `Event: Long\r\nData: ${'y'.repeat(3000)}`;
    const wire = `Event: One\r\n\r\n${big}Event: Two\r\n\r\n${unterminated}\r\n\r\nEvent: Three\r\n\r\n`;
    const bytes = Buffer.from(wire);
    for (const size of [1, 7, 64, 999, 4096, bytes.length]) {
      const names: string[] = [];
      const errors: AmiProtocolError[] = [];
      const parser = new AmiParser({
        maxMessageBytes: 1000,
        onMessage: (m) => names.push(String(m.Event)),
        onError: (e) => errors.push(e),
      });
      for (let i = 0; i < bytes.length; i += size) parser.push(bytes.subarray(i, i + size));
      assert.deepEqual(names, ['One', 'Two', 'Three'], `chunks of ${size}`);
      assert.deepEqual(
        errors.map((e) => e.code),
        ['MESSAGE_TOO_LARGE', 'MESSAGE_TOO_LARGE'],
        `chunks of ${size}`,
      );
    }
  });

  test('maxHeaders: a message with too many lines is skipped (onError) or throws', () => {
    const many = `Event: Many\r\n${'ChanVariable: a=1\r\n'.repeat(50)}\r\n`;
    const names: string[] = [];
    const errors: string[] = [];
    const parser = new AmiParser({
      maxHeaders: 20,
      onMessage: (m) => names.push(String(m.Event)),
      onError: (e) => errors.push(e.code),
    });
    parser.push(`Event: A\r\n\r\n${many}Event: B\r\n${'X: 1\r\n'.repeat(19)}\r\n`);
    // Command output lines count too.
    parser.push(
      `Response: Follows\r\nActionID: 1\r\n${'line\n'.repeat(30)}--END COMMAND--\r\n\r\nEvent: C\r\n\r\n`,
    );
    assert.deepEqual(names, ['A', 'B', 'C']);
    assert.deepEqual(errors, ['TOO_MANY_HEADERS', 'TOO_MANY_HEADERS']);
    const strict = new AmiParser({ maxHeaders: 20, onMessage: () => undefined });
    assert.throws(
      () => strict.push(many),
      (e: unknown) => e instanceof AmiProtocolError && e.code === 'TOO_MANY_HEADERS',
    );
  });

  test('long keys and many shapes: messages stay correct beyond the shape trie bounds', () => {
    const long = 'K'.repeat(500);
    const { raw } = parseAll([`Event: L\r\n${long}: v\r\n\r\n`.repeat(5)]);
    for (const m of raw) assert.equal(m[long], 'v');
    let wire = '';
    for (let i = 0; i < 25_000; i++) wire += `Event: S\r\nKey${i}: ${i}\r\n\r\n`;
    const many = parseAll([wire]);
    assert.equal(many.raw.length, 25_000);
    assert.equal(many.raw[24_999]?.Key24999, '24999');
    assert.ok(many.raw.every((m) => inheritsNothing(m)));
  });

  test('every Asterisk 22 recording: the events of the << blocks equal the .json file', () => {
    const names = readdirSync(RECORDINGS).filter((f) => f.endsWith('.raw.txt'));
    assert.equal(names.length, 7);
    for (const name of names) {
      const wire = asteriskSide(readFileSync(join(RECORDINGS, name), 'utf8'));
      const { messages, banners } = parseAll([wire]);
      assert.deepEqual(banners, ['Asterisk Call Manager/11.0.0'], name);
      // The .json files hold the events only: responses are left out, and so are the events
      // of an action's event list (they carry the ActionID of a response with EventList: start),
      // exactly what AmiClient delivers as events.
      const listIds = new Set(
        messages
          .filter((m) => m.Response !== undefined && m.EventList === 'start')
          .map((m) => m.ActionID),
      );
      const events = messages.filter(
        (m) => m.Event !== undefined && !(m.ActionID !== undefined && listIds.has(m.ActionID)),
      );
      const expected = (
        JSON.parse(
          readFileSync(join(RECORDINGS, name.replace('.raw.txt', '.json')), 'utf8'),
        ) as AmiMessage[]
      ).map(({ content: _content, ...rest }) => rest);
      assert.equal(events.length, expected.length, name);
      assert.deepEqual(events, expected, name);
      assert.ok(
        messages.some((m) => m.Response === 'Goodbye'),
        name,
      );
    }
  });
});

describe('serializeAction', () => {
  test('Action first, ActionID second, arrays repeat the key, numbers and booleans', () => {
    assert.equal(
      serializeAction({
        Channel: 'Local/200@phones',
        Action: 'Originate',
        ActionID: 'a-1',
        Variable: ['A=1', 'B=2'],
        Timeout: 10000,
        Async: true,
        Skipped: undefined,
      }),
      'Action: Originate\r\nActionID: a-1\r\nChannel: Local/200@phones\r\nVariable: A=1\r\nVariable: B=2\r\nTimeout: 10000\r\nAsync: true\r\n\r\n',
    );
  });

  test('CR or LF in a value or key throws (header injection) without echoing the value', () => {
    for (const bad of ['x\r\nAction: Hangup', 'x\ny', 'x\r']) {
      assert.throws(
        () => serializeAction({ Action: 'Login', Secret: bad }),
        (e: unknown) =>
          e instanceof AmiProtocolError && e.code === 'INVALID_FIELD' && !e.message.includes(bad),
      );
    }
    assert.throws(
      () => serializeAction({ Action: 'Originate', Variable: ['ok', 'A=1\r\nB'] }),
      AmiProtocolError,
    );
    assert.throws(() => serializeAction({ Action: 'Ping\r\nX: y' }), AmiProtocolError);
    assert.throws(() => serializeAction({ Action: 'Ping', 'Bad\nKey': 'v' }), AmiProtocolError);
    assert.throws(() => serializeAction({ Action: 'Ping', 'A: B': 'v' }), AmiProtocolError);
    assert.throws(() => serializeMessage({ Event: 'X', Y: 'a\nb' }), AmiProtocolError);
  });

  test('round trip through the parser', () => {
    const wire = serializeAction({
      Action: 'Originate',
      ActionID: 'z',
      Variable: ['A=1', 'B=2'],
      CallerID: '"Zoë" <200>',
    });
    const { messages } = parseAll([wire]);
    assert.deepEqual(messages, [
      { Action: 'Originate', ActionID: 'z', Variable: ['A=1', 'B=2'], CallerID: '"Zoë" <200>' },
    ]);
  });
});
