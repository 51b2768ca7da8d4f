import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { AmiEvent } from '../../src/ami/message.ts';
import { RecordingError } from '../../src/ami/recording.ts';
import { readRecordingParallel } from '../../src/ami/recording-parallel.ts';
import { CallEngine, ENGINE_KEYS } from '../../src/calls/engine.ts';
import type { CallEvent } from '../../src/calls/events.ts';
import { conformanceNames, fixturePath, loadFixture, loadGolden } from '../support/conformance.ts';

const dir = mkdtempSync(join(tmpdir(), 'switchboard-parallel-'));

async function readAll(
  path: string,
  keys: readonly string[],
  chunkBytes?: number,
): Promise<AmiEvent[]> {
  const events: AmiEvent[] = [];
  const options = chunkBytes === undefined ? {} : { chunkBytes };
  for await (const batch of readRecordingParallel(path, keys, options)) events.push(...batch);
  return events;
}

async function failure(path: string): Promise<RecordingError> {
  try {
    await readAll(path, ['Uniqueid']);
  } catch (error) {
    assert.ok(error instanceof RecordingError, String(error));
    return error;
  }
  assert.fail('expected a RecordingError');
}

function project(event: AmiEvent, keys: readonly string[]): AmiEvent {
  if (event.Event === 'UserEvent') return event;
  const out: AmiEvent = { Event: event.Event };
  for (const key of keys) if (event[key] !== undefined) out[key] = event[key];
  return out;
}

describe('parallel recording reader (worker thread, projection)', () => {
  test('every shared recording, projected to the engine keys, replays to its golden', async () => {
    for (const name of conformanceNames()) {
      const out: CallEvent[] = [];
      const engine = new CallEngine({ onCallEvent: (event) => out.push(event) });
      for (const event of await readAll(fixturePath(name), ENGINE_KEYS)) engine.handle(event);
      assert.deepStrictEqual(JSON.parse(JSON.stringify(out)), loadGolden(name), name);
    }
  });

  test('the engine reads no key outside ENGINE_KEYS', () => {
    const read = new Set<string>();
    for (const name of conformanceNames()) {
      const engine = new CallEngine({ onCallEvent: () => {} });
      for (const event of loadFixture(name)) {
        const spy = new Proxy(event, {
          get(target, key, receiver) {
            if (typeof key === 'string' && event.Event !== 'UserEvent') read.add(key);
            return Reflect.get(target, key, receiver);
          },
        });
        engine.handle(spy);
      }
    }
    read.delete('Event');
    const unexpected = [...read].filter((key) => !ENGINE_KEYS.includes(key));
    assert.deepEqual(unexpected, []);
    assert.ok(read.size > 20);
  });

  test('events carry Event and the wanted keys only; UserEvents stay whole', async () => {
    const name = 'var_set/user_events';
    const events = await readAll(fixturePath(name), ['Uniqueid', 'Cause']);
    const expected = loadFixture(name).map((event) => project(event, ['Uniqueid', 'Cause']));
    assert.deepStrictEqual(events, expected);
    assert.ok(events.some((event) => event.Event === 'UserEvent' && 'Provider' in event));
  });

  test('tiny chunks, multi-line elements, escapes, non-ASCII and JSON Lines', async () => {
    const events: AmiEvent[] = [
      {
        Event: 'Newchannel',
        Uniqueid: '1.1',
        CallerIDName: 'Zoë 日本 "quoted" {x}',
        Channel: 'SIP/a-1',
      },
      { Event: 'Hangup', Uniqueid: '1.1', Cause: '16', 'Cause-txt': 'back\\slash }, {' },
      { Event: 'Newstate', Uniqueid: '1.2', ChannelState: '6', content: '' },
    ];
    const keys = ['Uniqueid', 'CallerIDName', 'Cause', 'ChannelState'];
    const expected = events.map((event) => project(event, keys));
    const pretty = join(dir, 'pretty.json');
    writeFileSync(pretty, JSON.stringify(events, null, 2));
    const lines = join(dir, 'lines.jsonl');
    writeFileSync(lines, `${events.map((event) => JSON.stringify(event)).join('\n')}\n\n`);
    for (const path of [pretty, lines]) {
      for (const chunkBytes of [1, 3, 7, 64, 1 << 20]) {
        const read = await readAll(path, keys, chunkBytes);
        // Elements with escapes are parsed whole: compare what was asked for.
        assert.deepStrictEqual(
          read.map((event) => project(event, keys)),
          expected,
          `${path} / ${chunkBytes}`,
        );
        assert.deepStrictEqual(read[2], expected[2], 'a simple element is projected');
      }
    }
  });

  test('malformed JSON is reported with file and line (array and JSON Lines)', async () => {
    const array = join(dir, 'bad.json');
    writeFileSync(
      array,
      '[\n  {"Event": "A", "Uniqueid": "1"},\n  {"Event": "B", "Uniqueid": 1 2}\n]\n',
    );
    const one = await failure(array);
    assert.equal(one.file, array);
    assert.equal(one.line, 3);
    assert.match(one.message, /malformed JSON/);
    const jsonl = join(dir, 'bad.jsonl');
    writeFileSync(jsonl, '{"Event": "A"}\n{"Event": "B"}\n{"Event": "C",}\n');
    assert.equal((await failure(jsonl)).line, 3);
    const missingComma = join(dir, 'comma.json');
    writeFileSync(missingComma, '[\n{"Event": "A"}\n{"Event": "B"}\n]');
    const comma = await failure(missingComma);
    assert.equal(comma.line, 3);
    assert.match(comma.message, /expected , or \]/);
  });

  test('not a recording, unclosed array, elements that are not events, missing file', async () => {
    const cases: [string, RegExp][] = [
      ['hello', /not a recording/],
      ['[{"Event": "A"}', /not closed/],
      ['[{"Event": "A"}, 42]', /expected an AMI event object/],
      ['{"NoEvent": "x"}\n', /without an "Event"/],
      ['[{"Event": "A"}] trailing', /after the end/],
    ];
    for (const [text, pattern] of cases) {
      const path = join(dir, `case-${Math.random()}.json`);
      writeFileSync(path, text);
      assert.match((await failure(path)).message, pattern, text);
    }
    const missing = await failure(join(dir, 'missing.json'));
    assert.match(missing.message, /ENOENT/);
  });
});
