/**
 * The fast AMI parser (`AmiParser`: shape trie, compiled builders, lazy skipping of unwanted
 * events) against the plain reference parser (`AmiReferenceParser`): the same messages,
 * banner, errors and end-of-stream rest, on every recording (conformance corpus, real
 * Asterisk 22 wire logs) split in every way we can afford, and on random and mutated input.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { AmiMessage } from '../../src/ami/message.ts';
import { inheritsNothing } from '../../src/ami/message.ts';
import { AmiParser, type AmiParserOptions, serializeMessage } from '../../src/ami/protocol.ts';
import { AmiReferenceParser } from '../../src/ami/protocol-reference.ts';
import { CONFORMANCE_DIR } from '../support/conformance.ts';

/** The bytes Asterisk sent (`<<` blocks) in a `.raw.txt` wire log. */
function asteriskSide(rawLog: string): string {
  let out = '';
  let inbound = false;
  for (const line of rawLog.split('\n')) {
    if (line.startsWith('<< ') || line.startsWith('>> ')) {
      inbound = line.startsWith('<< ');
      const rest = line.slice(3);
      if (inbound && !/^\d+\.\d+$/.test(rest)) out += `${rest}\r\n`;
      continue;
    }
    if (inbound) out += `${line}\n`;
  }
  return out.endsWith('\n\n') ? out.slice(0, -1) : out;
}

function jsonFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...jsonFiles(path));
    else if (entry.name.endsWith('.json')) out.push(path);
  }
  return out.sort();
}

/** Every recording as the wire text Asterisk would send: name → text (deduplicated). */
function recordings(): Map<string, string> {
  const byText = new Map<string, string>();
  const add = (name: string, text: string): void => {
    if (!byText.has(text)) byText.set(text, name);
  };
  const asterisk22 = [
    '/work/shared/asterisk22/recordings',
    join(import.meta.dirname, '../fixtures/asterisk22/recordings'),
  ];
  for (const dir of asterisk22) {
    if (!existsSync(dir)) continue;
    for (const file of readdirSync(dir).sort()) {
      const path = join(dir, file);
      if (file.endsWith('.raw.txt')) add(path, asteriskSide(readFileSync(path, 'utf8')));
    }
  }
  const json = [
    ...jsonFiles(join(CONFORMANCE_DIR, 'fixtures')),
    ...jsonFiles('/work/shared/conformance/fixtures'),
    ...jsonFiles('/work/shared/asterisk22/recordings'),
  ];
  for (const path of json) {
    const events = JSON.parse(readFileSync(path, 'utf8')) as Array<Record<string, unknown>>;
    if (!Array.isArray(events)) continue;
    let text = 'Asterisk Call Manager/5.0.1\r\n';
    for (const event of events) {
      const wire: Record<string, string | string[]> = {};
      for (const [key, value] of Object.entries(event)) {
        if (typeof value === 'string' && !/[\r\n]/.test(value)) wire[key] = value;
        else if (Array.isArray(value)) wire[key] = value.filter((v) => typeof v === 'string');
      }
      text += serializeMessage(wire);
    }
    add(path, text);
  }
  const texts = new Map<string, string>();
  for (const [text, name] of byText) texts.set(name, text);
  return texts;
}

type Outcome = string[];

interface Parser {
  push(chunk: Buffer | string): void;
  end(): string;
}

type Options = Omit<AmiParserOptions, 'onMessage' | 'onBanner' | 'onError'>;

/** Feeds `chunks` to a parser; the outcome is every callback in order, then `end()`. */
function run(
  make: (options: AmiParserOptions) => Parser,
  chunks: readonly (Buffer | string)[],
  options: Options = {},
): Outcome {
  const out: Outcome = [];
  const parser = make({
    ...options,
    onMessage: (message: AmiMessage) => {
      assert.ok(inheritsNothing(message));
      out.push(`m ${JSON.stringify(Object.entries(message))}`);
    },
    onBanner: (banner) => out.push(`b ${banner}`),
    onError: (error) => out.push(`e ${error.code} ${error.message}`),
  });
  for (const chunk of chunks) parser.push(chunk);
  out.push(`end ${JSON.stringify(parser.end())}`);
  return out;
}

const fast = (options: AmiParserOptions): Parser => new AmiParser(options);
const reference = (options: AmiParserOptions): Parser => new AmiReferenceParser(options);

/** `bytes` cut at the given positions. */
function cut(bytes: Buffer, positions: readonly number[]): Buffer[] {
  const chunks: Buffer[] = [];
  let from = 0;
  for (const at of positions) {
    if (at <= from || at >= bytes.length) continue;
    chunks.push(bytes.subarray(from, at));
    from = at;
  }
  chunks.push(bytes.subarray(from));
  return chunks;
}

/** A small deterministic PRNG (mulberry32), so a failure names a reproducible seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Events the call engine uses: what `watch` keeps (the others are skipped unparsed). */
const ENGINE_LIKE = new Set(['Newchannel', 'Hangup', 'DialBegin', 'DialEnd', 'BridgeEnter']);

const FILTERS: Array<[string, Options]> = [
  ['every event', {}],
  ['engine events only', { wantEvent: (name) => ENGINE_LIKE.has(name) }],
  ['no event', { wantEvent: () => false }],
];

describe('AmiParser against AmiReferenceParser', () => {
  const all = recordings();

  test('the recordings are there', () => {
    assert.ok(all.size >= 10, `only ${all.size} recordings found`);
  });

  for (const [label, options] of FILTERS) {
    test(`every recording, ${label}: whole, in small chunks, in random chunks`, () => {
      for (const [name, text] of all) {
        const bytes = Buffer.from(text);
        const expected = run(reference, [text], options);
        assert.deepEqual(run(fast, [bytes], options), expected, `${name} whole`);
        for (const size of [1, 2, 3, 7, 64, 1000, 65536]) {
          const positions: number[] = [];
          for (let at = size; at < bytes.length; at += size) positions.push(at);
          assert.deepEqual(
            run(fast, cut(bytes, positions), options),
            expected,
            `${name} in ${size}-byte chunks`,
          );
        }
        const random = prng(bytes.length);
        for (let round = 0; round < 5; round++) {
          const positions: number[] = [];
          for (let at = 0; at < bytes.length; at += 1 + Math.floor(random() * 3000)) {
            positions.push(at);
          }
          assert.deepEqual(
            run(fast, cut(bytes, positions), options),
            expected,
            `${name} random chunks, round ${round}`,
          );
        }
      }
    });
  }

  test('real Asterisk 22 sessions split in two at every byte', () => {
    let checked = 0;
    for (const [name, text] of all) {
      if (!name.endsWith('.raw.txt')) continue;
      // The first 4 KiB of each session (banner, login, first events, cut mid-message) at
      // every byte, with each filter.
      const head = Buffer.from(text).subarray(0, 4096);
      for (const [label, options] of FILTERS) {
        const expected = run(reference, [head], options);
        for (let at = 1; at < head.length; at++) {
          assert.deepEqual(
            run(fast, cut(head, [at]), options),
            expected,
            `${name}, ${label}, split at ${at}`,
          );
          checked++;
        }
      }
      // The whole session at every 31st byte (every position modulo lines and CRLFs).
      const bytes = Buffer.from(text);
      const [label, options] = FILTERS[1] as [string, Options];
      const expected = run(reference, [text], options);
      for (let at = 1; at < bytes.length; at += 31) {
        assert.deepEqual(
          run(fast, cut(bytes, [at]), options),
          expected,
          `${name}, ${label}, split at ${at}`,
        );
        checked++;
      }
    }
    assert.ok(checked > 1000);
  });
});

const TOKENS = [
  'Event',
  'Event: VarSet',
  'Event: Newchannel',
  'Event: Hangup',
  'Response',
  'Response: Follows',
  'Response: Success',
  'Follows',
  'ActionID',
  'Output',
  'Message',
  'Privilege',
  '--END COMMAND--',
  ':',
  ': ',
  ' ',
  '\r',
  '\n',
  '\r\n',
  '\r\n\r\n',
  '\n\n',
  'x',
  'Value',
  'é',
  '日本',
  '🎉',
  '__proto__',
  'Asterisk Call Manager/11.0.0',
];

function randomText(random: () => number): string {
  let text = '';
  const tokens = Math.floor(random() * 120);
  for (let i = 0; i < tokens; i++) text += TOKENS[Math.floor(random() * TOKENS.length)];
  return text;
}

function randomOptions(random: () => number): Options {
  const options: Options = {};
  if (random() < 0.6) options.maxMessageBytes = 1 + Math.floor(random() * 200);
  if (random() < 0.6) options.maxHeaders = 1 + Math.floor(random() * 8);
  const filter = random();
  if (filter < 0.3) options.wantEvent = (name) => name === 'Newchannel' || name === 'Hangup';
  else if (filter < 0.45) options.wantEvent = () => false;
  return options;
}

function randomChunks(bytes: Buffer, random: () => number): Buffer[] {
  const positions: number[] = [];
  const mean = 1 + Math.floor(random() * 40);
  for (let at = 0; at < bytes.length; at += 1 + Math.floor(random() * mean)) positions.push(at);
  return cut(bytes, positions);
}

describe('AmiParser against AmiReferenceParser: fuzz', () => {
  test('random token soup, random bounds and filters, random chunks', () => {
    for (let seed = 1; seed <= 4000; seed++) {
      const random = prng(seed);
      const bytes = Buffer.from(randomText(random));
      const options = randomOptions(random);
      const chunks = randomChunks(bytes, random);
      assert.deepEqual(run(fast, chunks, options), run(reference, chunks, options), `seed ${seed}`);
    }
  });

  test('random messages of real-shaped lines (Follows, output, blank lines), random chunks', () => {
    const lines = [
      'Event: VarSet',
      'Event: Newchannel',
      'Event: Hangup',
      'Event:VarSet',
      'Event: ',
      'Event: Hangup ',
      'Response: Follows',
      'Response: Success',
      'ActionID: 1',
      'Output: x',
      'Message: Command output follows',
      'Privilege: call,all',
      'Uniqueid: 1700000000.1',
      'Key:value',
      'raw output line',
      '--END COMMAND--',
      'last--END COMMAND--',
      'Asterisk Call Manager/11.0.0',
      'Value: é日本🎉',
      '',
      '',
      '',
    ];
    const endings = ['\r\n', '\r\n', '\r\n', '\n', '\r\r\n'];
    for (let seed = 1; seed <= 3000; seed++) {
      const random = prng(seed * 31337);
      let text = '';
      const count = Math.floor(random() * 60);
      for (let i = 0; i < count; i++) {
        text += lines[Math.floor(random() * lines.length)];
        text += endings[Math.floor(random() * endings.length)];
      }
      const bytes = Buffer.from(text);
      const options = randomOptions(random);
      const chunks = random() < 0.3 ? [bytes] : randomChunks(bytes, random);
      assert.deepEqual(run(fast, chunks, options), run(reference, chunks, options), `seed ${seed}`);
    }
  });

  test('random bytes (invalid UTF-8 included)', () => {
    for (let seed = 1; seed <= 1500; seed++) {
      const random = prng(seed * 7919);
      const bytes = Buffer.alloc(Math.floor(random() * 300));
      for (let i = 0; i < bytes.length; i++) {
        // Mostly line structure and ASCII, some high bytes.
        const r = random();
        bytes[i] = r < 0.1 ? 10 : r < 0.18 ? 13 : r < 0.25 ? 58 : Math.floor(random() * 256);
      }
      const options = randomOptions(random);
      const chunks = randomChunks(bytes, random);
      assert.deepEqual(run(fast, chunks, options), run(reference, chunks, options), `seed ${seed}`);
    }
  });

  test('mutated recordings: bytes flipped, dropped, duplicated', () => {
    const texts = [...recordings().values()].slice(0, 12);
    let seed = 0;
    for (const text of texts) {
      const original = Buffer.from(text.slice(0, 20_000));
      for (let round = 0; round < 25; round++) {
        const random = prng(++seed * 104729);
        const bytes = Buffer.from(original);
        let mutated = bytes;
        const edits = 1 + Math.floor(random() * 20);
        for (let e = 0; e < edits; e++) {
          const at = Math.floor(random() * mutated.length);
          const kind = random();
          if (kind < 0.4) mutated[at] = [10, 13, 58, 32, 0xc3, 0xff][Math.floor(random() * 6)] ?? 0;
          else if (kind < 0.7)
            mutated = Buffer.concat([mutated.subarray(0, at), mutated.subarray(at + 1)]);
          else
            mutated = Buffer.concat([
              mutated.subarray(0, at),
              mutated.subarray(at, at + 40),
              mutated.subarray(at),
            ]);
        }
        const options = random() < 0.5 ? {} : randomOptions(random);
        const chunks = random() < 0.3 ? [mutated] : randomChunks(mutated, random);
        assert.deepEqual(
          run(fast, chunks, options),
          run(reference, chunks, options),
          `recording mutation seed ${seed}`,
        );
      }
    }
  });
});
