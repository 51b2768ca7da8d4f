import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import type { AmiEvent } from '../../src/ami/message.ts';
import {
  createRecordingWriter,
  RecordingError,
  readRecording,
  readRecordingBatches,
} from '../../src/ami/recording.ts';

const FIXTURE = join(import.meta.dirname, '../fixtures/asterisk22/recordings/call_ab.json');
const dir = mkdtempSync(join(tmpdir(), 'switchboard-rec-'));
const expected = JSON.parse(readFileSync(FIXTURE, 'utf8')) as AmiEvent[];

async function collect(source: Parameters<typeof readRecording>[0], options = {}) {
  const events: AmiEvent[] = [];
  for await (const event of readRecording(source, options)) events.push(event);
  return events;
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** A stream that delivers `text` cut into chunks of `size` bytes. */
function chunked(text: string, size: number): Readable {
  const bytes = Buffer.from(text);
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
  return Readable.from(chunks);
}

const TRICKY: AmiEvent[] = [
  { Event: 'UserEvent', Data: 'has } and ] and { [', Quote: 'say "hi" \\"x\\"', content: '' },
  { Event: 'Newchannel', CallerIDName: 'Zoë 日本 🎉', Tab: 'a\tb', Back: 'C:\\dir\\', content: '' },
  { Event: 'VarSet', ChanVariable: ['a=1', 'b=2'] },
];

describe('readRecording', () => {
  test('JSON array fixture: same events as JSON.parse, in batches', async () => {
    assert.deepEqual(await collect(FIXTURE), expected);
    let batches = 0;
    let total = 0;
    for await (const batch of readRecordingBatches(FIXTURE, { chunkBytes: 4096 })) {
      batches++;
      total += batch.length;
    }
    assert.equal(total, expected.length);
    assert.ok(batches > 5, `${batches} batches`);
  });

  test('JSON Lines, with blank lines and CRLF', async () => {
    const text = `\n${expected.map((e) => JSON.stringify(e)).join('\r\n')}\n\n`;
    assert.deepEqual(await collect(file('a.jsonl', text)), expected);
  });

  test('strings containing } ] { [ escaped quotes and backslashes, UTF-8, at every chunk size', async () => {
    const array = JSON.stringify(TRICKY, null, 2);
    const lines = TRICKY.map((e) => JSON.stringify(e)).join('\n');
    for (let size = 1; size <= 64; size++) {
      assert.deepEqual(await collect(chunked(array, size)), TRICKY, `array, chunk ${size}`);
      assert.deepEqual(await collect(chunked(lines, size)), TRICKY, `jsonl, chunk ${size}`);
    }
  });

  test('standard input with -', () => {
    const script = `import { readRecording } from ${JSON.stringify(join(import.meta.dirname, '../../src/ami/recording.ts'))};
let n = 0; for await (const e of readRecording('-')) n++; console.log(n);`;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      input: readFileSync(FIXTURE),
      encoding: 'utf8',
    });
    assert.equal(result.stderr, '');
    assert.equal(result.stdout.trim(), String(expected.length));
  });

  test('malformed JSON: RecordingError names the file and the line', async () => {
    const lines = expected.slice(0, 5).map((e) => JSON.stringify(e));
    lines[3] = '{"Event": "Broken", "x": }';
    const jsonl = file('bad.jsonl', lines.join('\n'));
    await assert.rejects(collect(jsonl), (e: unknown) => {
      assert.ok(e instanceof RecordingError);
      assert.equal(e.file, jsonl);
      assert.equal(e.line, 4);
      assert.ok(e.message.startsWith(`${jsonl}:4: malformed JSON`));
      return true;
    });
    const arrayText = `[\n${lines.join(',\n')}\n]`;
    const array = file('bad.json', arrayText);
    await assert.rejects(
      collect(array),
      (e: unknown) => e instanceof RecordingError && e.line === 5,
    );
    // Same line when the error falls in a later chunk.
    await assert.rejects(
      collect(chunked(arrayText, 7), { name: 'x.json' }),
      (e: unknown) => e instanceof RecordingError && e.line === 5 && e.file === 'x.json',
    );
    // A multi-line element: the line of the error inside it.
    const pretty = file(
      'pretty.json',
      '[\n  {\n    "Event": "A"\n  },\n  {\n    "Event": "B",\n    "X": tru\n  }\n]\n',
    );
    // V8 does not always tell where in the element: the line of the error or of the element.
    await assert.rejects(
      collect(pretty),
      (e: unknown) =>
        e instanceof RecordingError && (e.line === 7 || e.line === 5) && !e.message.includes('\n'),
    );
  });

  test('other bad input: not a recording, non-object element, missing Event, truncated, missing comma, trailing data, missing file', async () => {
    const cases: [string, number | undefined, RegExp][] = [
      ['\n\nhello', 3, /not a recording/],
      ['[{"Event": "A"}, 42]', 1, /event object/],
      ['{"Event": "A"}\n{"NoEvent": "B"}\n', 2, /Event/],
      ['[\n{"Event": "A"},\n{"Event": "B"', 3, /end of file/],
      ['[\n{"Event": "A"}\n{"Event": "B"}]', 3, /expected ,/],
      ['[{"Event": "A"}]\n[', 2, /after the end/],
      ['[{"Event": "A"}', 1, /not closed/],
    ];
    for (const [text, line, pattern] of cases) {
      await assert.rejects(
        collect(Readable.from([text]), { name: 'in' }),
        (e: unknown) => e instanceof RecordingError && e.line === line && pattern.test(e.message),
        text,
      );
    }
    await assert.rejects(
      collect(join(dir, 'missing.json')),
      (e: unknown) =>
        e instanceof RecordingError && /ENOENT/.test(e.message) && e.file.endsWith('missing.json'),
    );
    assert.deepEqual(await collect(Readable.from(['  \n '])), []);
    assert.deepEqual(await collect(Readable.from(['[ ]'])), []);
  });

  test('streams: a large file is read in bounded memory chunks (batches arrive before the end)', async () => {
    const line = `${JSON.stringify(expected[5])}\n`;
    const path = file('big.jsonl', line.repeat(20_000));
    let first = 0;
    let total = 0;
    for await (const batch of readRecordingBatches(path, { chunkBytes: 64 * 1024 })) {
      if (first === 0) first = batch.length;
      total += batch.length;
    }
    assert.equal(total, 20_000);
    assert.ok(first < 20_000 / 10, `first batch ${first}`);
  });
});

describe('createRecordingWriter', () => {
  test('writes one JSON line per event; the file replays to the same events', async () => {
    const path = join(dir, 'out.jsonl');
    const writer = createRecordingWriter(path, { bufferBytes: 1000 });
    for (const event of [...expected, ...TRICKY]) writer.write(event);
    await writer.close();
    assert.equal(writer.count, expected.length + TRICKY.length);
    const text = readFileSync(path, 'utf8');
    assert.equal(text.split('\n').length, expected.length + TRICKY.length + 1);
    assert.deepEqual(await collect(path), [...expected, ...TRICKY]);
  });
});
