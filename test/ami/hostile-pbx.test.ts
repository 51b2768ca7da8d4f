// A hostile or broken PBX cannot take the client down (issue 10 §4): headers named like
// Object.prototype members, messages that break a bound or whose handling throws, actions the
// PBX never answers, event lists that never end. Real sockets: the fake Asterisk of
// src/ami/server.ts and the AmiClient.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { AmiClient, type AmiClientOptions } from '../../src/ami/client.ts';
import { AmiLimitError, type AmiMessageSkippedError } from '../../src/ami/errors.ts';
import { amiEventLabel, KNOWN_AMI_EVENTS } from '../../src/ami/known-events.ts';
import { type AmiEvent, field, inheritsNothing } from '../../src/ami/message.ts';
import { RecordingError, readRecording } from '../../src/ami/recording.ts';
import { AmiServer } from '../../src/ami/server.ts';
import { conformanceNames, loadFixture } from '../support/conformance.ts';
import { PROTOTYPE_NAMES, prototypeUserEventWire, valueFor } from '../support/hostile.ts';
import { until } from '../support/until.ts';

const USERS = { admin: 'hostile-secret' };
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A fake Asterisk, a client logged in to it, and what the client saw. */
async function connected(options: Partial<AmiClientOptions> = {}) {
  const server = new AmiServer({ users: USERS });
  const port = await server.listen();
  cleanups.push(() => server.close());
  let logins = 0;
  server.on('login', (_c, ok) => {
    if (ok) logins++;
  });
  const client = new AmiClient({
    port,
    username: 'admin',
    secret: USERS.admin,
    pingIntervalMs: 0,
    actionTimeoutMs: 5000,
    reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
    ...options,
  });
  cleanups.push(() => client.close());
  const events: AmiEvent[] = [];
  const skipped: AmiMessageSkippedError[] = [];
  let disconnects = 0;
  client.on('event', (event) => events.push(event));
  client.on('skipped', (error) => skipped.push(error));
  client.on('disconnect', () => disconnects++);
  client.on('error', () => undefined);
  await client.connect();
  await until(() => events.some((e) => e.Event === 'FullyBooted'), 'FullyBooted');
  return {
    server,
    client,
    events,
    skipped,
    get logins() {
      return logins;
    },
    get disconnects() {
      return disconnects;
    },
    /** Sends raw wire text in one write (one TCP chunk as far as the OS keeps it so). */
    raw(text: string) {
      assert.equal(server.broadcastRaw(text), 1);
    },
  };
}

const marker = (n: number) => `Event: Marker\r\nN: ${n}\r\n\r\n`;
const markers = (events: AmiEvent[]) =>
  events.filter((e) => e.Event === 'Marker').map((e) => field(e, 'N'));

describe('a hostile PBX and the AMI client', () => {
  test('UserEvent headers named like every Object.prototype member: reported as sent, connection kept', async () => {
    const pbx = await connected();
    // One UserEvent per name (several times each: generic and compiled paths), each followed
    // by a marker in the same write, then one carrying every name at once.
    let wire = '';
    let n = 0;
    for (const name of PROTOTYPE_NAMES) {
      for (let i = 0; i < 4; i++) {
        wire += `Event: UserEvent\r\nUserEvent: One\r\nUniqueid: 1.${n}\r\n${name}: ${valueFor(name)}\r\n\r\n`;
        wire += marker(n++);
      }
      // Repeated twice in one message: an array.
      wire += `Event: UserEvent\r\nUserEvent: Twice\r\n${name}: a\r\n${name}: b\r\n\r\n`;
    }
    wire += prototypeUserEventWire('9.9') + marker(n++);
    pbx.raw(wire);
    await until(() => markers(pbx.events).length === n, 'every marker');
    assert.deepEqual(
      markers(pbx.events),
      Array.from({ length: n }, (_, i) => String(i)),
    );
    const users = pbx.events.filter((e) => e.Event === 'UserEvent');
    assert.equal(users.length, PROTOTYPE_NAMES.length * 5 + 1);
    for (const event of users) assert.ok(inheritsNothing(event));
    for (const name of PROTOTYPE_NAMES) {
      const ones = users.filter((e) => e.UserEvent === 'One' && Object.keys(e).includes(name));
      assert.equal(ones.length, 4, name);
      for (const e of ones)
        assert.equal(Object.getOwnPropertyDescriptor(e, name)?.value, valueFor(name));
      const twice = users.find((e) => e.UserEvent === 'Twice' && Object.keys(e).includes(name));
      assert.deepEqual(twice?.[name], ['a', 'b'], name);
    }
    const all = users.find((e) => e.UserEvent === 'Hostile') as AmiEvent;
    for (const name of PROTOTYPE_NAMES) assert.equal(all[name], valueFor(name), name);
    assert.equal(pbx.skipped.length, 0);
    assert.equal(pbx.disconnects, 0, 'the connection stayed up');
    assert.equal(pbx.logins, 1, 'no reconnect');
    assert.equal(pbx.client.connected, true);
    // And actions still work on the same connection.
    const { response } = await pbx.client.action({ Action: 'Ping' });
    assert.equal(response.Ping, 'Pong');
  });

  test('a message whose handling throws is skipped, counted and reported; the rest of the chunk is processed', async () => {
    const pbx = await connected();
    pbx.client.on('event', (event) => {
      if (event.Event === 'Poison') throw new TypeError('listener cannot handle this');
    });
    pbx.raw(`${marker(1)}Event: Poison\r\n\r\n${marker(2)}Event: Poison\r\n\r\n${marker(3)}`);
    await until(() => markers(pbx.events).length === 3, 'three markers');
    assert.deepEqual(markers(pbx.events), ['1', '2', '3']);
    assert.equal(pbx.client.skippedMessages, 2);
    assert.deepEqual(
      pbx.skipped.map((e) => e.reason),
      ['handler_failed', 'handler_failed'],
    );
    assert.match(pbx.skipped[0]?.message ?? '', /listener cannot handle this/);
    assert.equal(pbx.disconnects, 0);
    assert.equal(pbx.logins, 1);
  });

  test('oversized messages and messages with too many lines are skipped; the next ones are processed', async () => {
    const pbx = await connected({ maxMessageBytes: 4096, maxHeaders: 100 });
    const big = `Event: Big\r\nData: ${'x'.repeat(10_000)}\r\nMore: y\r\n\r\n`;
    const many = `Event: Many\r\n${'ChanVariable: a=1\r\n'.repeat(500)}\r\n`;
    pbx.raw(marker(1) + big + marker(2) + many + marker(3));
    // An unterminated giant line spread over writes, then a normal message.
    pbx.raw(`Event: Endless\r\nData: ${'z'.repeat(3000)}`);
    pbx.raw('z'.repeat(3000));
    pbx.raw(`z\r\n\r\n${marker(4)}`);
    await until(() => markers(pbx.events).length === 4, 'four markers');
    assert.deepEqual(markers(pbx.events), ['1', '2', '3', '4']);
    assert.deepEqual(
      pbx.skipped.map((e) => e.reason),
      ['too_large', 'too_many_headers', 'too_large'],
    );
    assert.ok(!pbx.events.some((e) => ['Big', 'Many', 'Endless'].includes(String(e.Event))));
    assert.equal(pbx.disconnects, 0);
    assert.equal(pbx.logins, 1);
  });

  test('maxPendingActions: beyond it an action is refused at once and nothing is sent', async () => {
    const pbx = await connected({ maxPendingActions: 3, actionTimeoutMs: 60_000 });
    let received = 0;
    pbx.server.on('action', (action) => {
      if (action.Action === 'Silent') received++;
    });
    pbx.server.handle('Silent', () => undefined); // never answers
    const pending = [1, 2, 3].map(() => pbx.client.action({ Action: 'Silent' }));
    for (const p of pending) p.catch(() => undefined);
    await until(() => received === 3, 'three actions at the server');
    assert.equal(pbx.client.pendingActions, 3);
    await assert.rejects(pbx.client.action({ Action: 'Silent' }), AmiLimitError);
    // Events still flow; the refused action never reached the server.
    pbx.raw(marker(1));
    await until(() => markers(pbx.events).length === 1, 'marker');
    assert.equal(received, 3);
    assert.equal(pbx.client.pendingActions, 3);
  });

  test('maxEventListEvents: a list that never completes rejects the action; its later events are ordinary', async () => {
    const pbx = await connected({ maxEventListEvents: 50 });
    pbx.server.handle('CoreShowChannels', (action, connection) => {
      const id = String(action.ActionID);
      let text = `Response: Success\r\nActionID: ${id}\r\nEventList: start\r\nMessage: Channels will follow\r\n\r\n`;
      for (let i = 0; i < 200; i++) {
        text += `Event: CoreShowChannel\r\nActionID: ${id}\r\nUniqueid: 5.${i}\r\n\r\n`;
      }
      connection.sendRaw(text); // and never CoreShowChannelsComplete
      return undefined;
    });
    await assert.rejects(pbx.client.action({ Action: 'CoreShowChannels' }), (error: unknown) => {
      assert.ok(error instanceof AmiLimitError);
      assert.match(error.message, /longer than 50 events/);
      return true;
    });
    await until(
      () => pbx.events.filter((e) => e.Event === 'CoreShowChannel').length === 150,
      'the rest as ordinary events',
    );
    assert.equal(pbx.client.pendingActions, 0);
    assert.equal(pbx.disconnects, 0);
  });
});

describe('recordings with keys named like Object.prototype members', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-hostile-rec-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const event = Object.fromEntries([
    ['Event', 'UserEvent'],
    ['UserEvent', 'Hostile'],
    ['Uniqueid', '1.1'],
    ...PROTOTYPE_NAMES.map((name) => [name, valueFor(name)]),
  ]) as AmiEvent;

  test('JSON array and JSON Lines: every key is read as an own string value', async () => {
    const lines = `${JSON.stringify(event)}\n`.repeat(3);
    const array = `[\n${Array(3).fill(JSON.stringify(event)).join(',\n')}\n]\n`;
    for (const [name, text] of [
      ['rec.jsonl', lines],
      ['rec.json', array],
    ] as const) {
      const file = join(dir, name);
      writeFileSync(file, text);
      const events: AmiEvent[] = [];
      for await (const e of readRecording(file)) events.push(e);
      assert.equal(events.length, 3, name);
      for (const e of events) {
        for (const key of PROTOTYPE_NAMES) {
          assert.equal(
            Object.getOwnPropertyDescriptor(e, key)?.value,
            valueFor(key),
            `${name} ${key}`,
          );
          assert.equal(field(e, key), valueFor(key));
        }
      }
    }
  });

  test('a value that is neither a string nor an array of strings is a RecordingError naming the line', async () => {
    const file = join(dir, 'bad.jsonl');
    writeFileSync(file, '{"Event":"A"}\n{"Event":"B","Uniqueid":{"0":"1"}}\n');
    await assert.rejects(
      async () => {
        for await (const _ of readRecording(file)) {
          // drain
        }
      },
      (error: unknown) =>
        error instanceof RecordingError && error.line === 2 && /Uniqueid/.test(error.message),
    );
  });
});

describe('metric label of AMI event names', () => {
  test('every event name of the recordings is known by name; anything else is other', () => {
    const names = new Set<string>();
    for (const name of conformanceNames()) for (const e of loadFixture(name)) names.add(e.Event);
    const recordings = join(import.meta.dirname, '../fixtures/asterisk22/recordings');
    for (const file of readdirSync(recordings).filter((f) => f.endsWith('.json'))) {
      const events = JSON.parse(readFileSync(join(recordings, file), 'utf8')) as AmiEvent[];
      for (const e of events) names.add(e.Event);
    }
    assert.ok(names.size > 30);
    for (const name of names) assert.equal(amiEventLabel(name), name, name);
    for (const name of [...PROTOTYPE_NAMES, 'Invented1', 'newchannel', '', 'Newchannel ']) {
      assert.equal(amiEventLabel(name), 'other', name);
    }
    assert.equal(amiEventLabel(['Newchannel', 'Hangup']), 'other');
    assert.equal(amiEventLabel(undefined), 'other');
    assert.ok(KNOWN_AMI_EVENTS.size < 300, 'a bounded set');
  });
});
