/**
 * Recorded AMI sessions: reading (JSON array or JSON Lines, streamed) and writing (JSON Lines).
 *
 * Format (test/fixtures/conformance/SCHEMA.md, "Input"): each element is one AMI event as a
 * flat object whose values are strings (arrays of strings for repeated keys), with `Event`
 * naming the event type. A recording is either one JSON array of such objects or JSON Lines
 * (one object per line). The format is detected from the first non-blank character: `[` →
 * array, `{` → JSON Lines.
 *
 * This file reads; the writer is in recording-writer.ts (re-exported).
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { AmiEvent, AmiMessage } from './message.ts';

export {
  createRecordingWriter,
  type RecordingWriter,
  type RecordingWriterOptions,
} from './recording-writer.ts';

/**
 * A recording that cannot be read: unreadable file, not a recording, malformed JSON, an element
 * that is not an event object, or truncated input. `file` is the path (`<stdin>` for `-`, or the
 * `name` option), `line` the 1-based line of the problem when known. The message reads
 * `file:line: problem`.
 */
export class RecordingError extends Error {
  /** The recording's path or name. */
  readonly file: string;
  /** 1-based line number of the problem, when known. */
  readonly line: number | undefined;
  constructor(file: string, line: number | undefined, problem: string, options?: ErrorOptions) {
    super(`${file}${line === undefined ? '' : `:${line}`}: ${problem}`, options);
    this.name = 'RecordingError';
    this.file = file;
    this.line = line;
  }
}

/** Where a recording comes from: a file path, `-` for standard input, or a stream of chunks. */
export type RecordingSource = string | Readable | AsyncIterable<Buffer | string>;

/** Options of {@link readRecordingBatches} / {@link readRecording}. */
export interface ReadRecordingOptions {
  /** Name used in errors for stream sources. Default `<stdin>` for `-`, `<stream>` otherwise. */
  name?: string;
  /** Read size for files, in bytes. Default 1 MiB. */
  chunkBytes?: number;
  /** Largest accepted single element (event) in characters; protects memory. Default 16 MiB. */
  maxElementBytes?: number;
}

const DEFAULT_CHUNK_BYTES = 1024 * 1024;
const DEFAULT_MAX_ELEMENT = 16 * 1024 * 1024;

function isWhitespace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

function skipWhitespace(s: string, pos: number): number {
  let i = pos;
  while (i < s.length && isWhitespace(s.charCodeAt(i))) i++;
  return i;
}

/** Counts `\n` in `s[from, to)`. */
function countNewlines(s: string, from: number, to: number): number {
  let count = 0;
  let i = s.indexOf('\n', from);
  while (i !== -1 && i < to) {
    count++;
    i = s.indexOf('\n', i + 1);
  }
  return count;
}

/**
 * End (exclusive) of the JSON value starting at `start` (an object or array), or -1 when `s`
 * ends first. Strings are skipped with `indexOf('"')` (escaped quotes checked by counting the
 * backslashes before them), so only the few characters between strings are looked at.
 */
function valueEnd(s: string, start: number): number {
  let depth = 0;
  let i = start;
  const len = s.length;
  while (i < len) {
    const c = s.charCodeAt(i);
    if (c === 34) {
      let q = s.indexOf('"', i + 1);
      while (q !== -1) {
        let backslashes = 0;
        while (s.charCodeAt(q - 1 - backslashes) === 92) backslashes++;
        if ((backslashes & 1) === 0) break;
        q = s.indexOf('"', q + 1);
      }
      if (q === -1) return -1;
      i = q + 1;
      continue;
    }
    if (c === 123 || c === 91) {
      depth++;
    } else if (c === 125 || c === 93) {
      depth--;
      if (depth === 0) return i + 1;
    }
    i++;
  }
  return -1;
}

/**
 * Why `value` is not an event of the recording format, or undefined when it is: an object
 * whose own `Event` is a string and whose every value is a string or an array of strings
 * (any key, including `__proto__` or `constructor`: `JSON.parse` makes them own properties).
 */
function checkEvent(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return 'expected an AMI event object';
  }
  const event = value as AmiMessage;
  if (!Object.hasOwn(event, 'Event') || typeof event.Event !== 'string') {
    return 'event without an "Event" string';
  }
  // for-in rather than Object.keys: no array per event (JSON.parse objects have only own
  // enumerable keys).
  for (const key in event) {
    const item = event[key];
    if (typeof item === 'string') continue;
    if (Array.isArray(item) && item.every((v) => typeof v === 'string')) continue;
    return `the value of ${JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}...` : key)} is neither a string nor an array of strings`;
  }
  return undefined;
}

/**
 * Line offset of a JSON.parse error inside `text`, from V8's "(line N column M)" or
 * "position N"; 0 (the element's first line) when the message has neither.
 */
function errorLineOffset(text: string, error: unknown): number {
  const message = String((error as Error).message);
  const line = /\(line (\d+) column/.exec(message);
  if (line !== null) return Number(line[1]) - 1;
  const position = /position (\d+)/.exec(message);
  if (position === null) return 0;
  return countNewlines(text, 0, Number(position[1]));
}

/** One-line description of a JSON.parse error. */
function parseProblem(error: unknown): string {
  const message = String((error as Error).message).replace(/\s+/g, ' ');
  return `malformed JSON (${message.length > 200 ? `${message.slice(0, 200)}...` : message})`;
}

/** Incremental scanner: text in, batches of events out. */
class RecordingScanner {
  readonly #file: string;
  readonly #maxElement: number;
  #format: 'unknown' | 'array' | 'jsonl' = 'unknown';
  /** Unconsumed text. */
  #buf = '';
  /** Line number of `#buf[0]`. */
  #line = 1;
  /** Array format: `[` seen; `]` seen; a comma is required before the next element. */
  #opened = false;
  #closed = false;
  #needComma = false;
  /** An event has been read (problems are then "malformed", not "not a recording"). */
  #seen = false;

  constructor(file: string, maxElement: number) {
    this.#file = file;
    this.#maxElement = maxElement;
  }

  #error(line: number | undefined, problem: string, cause?: unknown): RecordingError {
    return new RecordingError(
      this.#file,
      line,
      problem,
      cause === undefined ? undefined : { cause },
    );
  }

  /** Events completed by `text`. */
  feed(text: string): AmiEvent[] {
    this.#buf = this.#buf.length > 0 ? this.#buf + text : text;
    if (this.#format === 'unknown') {
      let i = skipWhitespace(this.#buf, 0);
      if (this.#buf.charCodeAt(i) === 0xfeff) i = skipWhitespace(this.#buf, i + 1);
      if (i === this.#buf.length) return [];
      const c = this.#buf[i];
      if (c === '[') this.#format = 'array';
      else if (c === '{') this.#format = 'jsonl';
      else {
        throw this.#error(
          this.#line + countNewlines(this.#buf, 0, i),
          'not a recording: expected a JSON array ([) or JSON Lines ({)',
        );
      }
      this.#line += countNewlines(this.#buf, 0, i);
      this.#buf = this.#buf.slice(i);
    }
    const events = this.#format === 'array' ? this.#array(false) : this.#jsonl(false);
    if (events.length > 0) this.#seen = true;
    if (this.#buf.length > this.#maxElement) {
      throw this.#error(this.#line, `element larger than ${this.#maxElement} characters`);
    }
    return events;
  }

  /**
   * The problem with an element: for the first element of the input (no event read yet) a
   * problem means the input is some other JSON (a package.json, a config), not a recording,
   * and is said so instead of "malformed JSON" at a line of a file never meant to be one.
   */
  #elementProblem(first: boolean, problem: string): string {
    if (!first || this.#seen) return problem;
    return this.#format === 'array'
      ? 'not a recording: expected a JSON array of AMI event objects, each with an "Event" string'
      : 'not a recording: expected JSON Lines, one AMI event object with an "Event" string per line';
  }

  /** Events of the unterminated rest; checks that the input is complete. */
  end(): AmiEvent[] {
    if (this.#format === 'jsonl') return this.#jsonl(true);
    if (this.#format === 'array') {
      const events = this.#array(true);
      if (!this.#closed)
        throw this.#error(this.#line, 'unexpected end of file: the JSON array is not closed');
      return events;
    }
    return [];
  }

  #jsonl(final: boolean): AmiEvent[] {
    const s = this.#buf;
    const lastNl = final ? s.length : s.lastIndexOf('\n');
    if (lastNl <= 0) return [];
    const region = s.slice(0, lastNl);
    const lines = countNewlines(region, 0, region.length) + (final ? 0 : 1);
    let events: AmiEvent[] | undefined;
    // Fast path: the whole region as one array (fails on blank lines or errors; then slow path).
    try {
      const parsed = JSON.parse(`[${region.replaceAll('\n', ',')}]`) as unknown[];
      if (parsed.every((e) => checkEvent(e) === undefined)) events = parsed as AmiEvent[];
    } catch {
      events = undefined;
    }
    if (events === undefined) events = this.#jsonlSlow(region);
    this.#buf = final ? '' : s.slice(lastNl + 1);
    this.#line += lines;
    return events;
  }

  /** Line by line, for exact error lines (and blank lines). */
  #jsonlSlow(region: string): AmiEvent[] {
    const events: AmiEvent[] = [];
    let pos = 0;
    let line = this.#line;
    while (pos <= region.length) {
      let nl = region.indexOf('\n', pos);
      if (nl === -1) nl = region.length;
      const text = region.slice(pos, nl);
      if (text.trim().length > 0) {
        let value: unknown;
        const first = events.length === 0;
        try {
          value = JSON.parse(text);
        } catch (error) {
          throw this.#error(line, this.#elementProblem(first, parseProblem(error)), error);
        }
        const problem = checkEvent(value);
        if (problem !== undefined) throw this.#error(line, this.#elementProblem(first, problem));
        events.push(value as AmiEvent);
      }
      pos = nl + 1;
      line++;
    }
    return events;
  }

  #array(final: boolean): AmiEvent[] {
    const s = this.#buf;
    let pos = 0;
    if (!this.#opened) {
      pos = skipWhitespace(s, 0);
      if (pos === s.length) return [];
      pos++; // '['
      this.#opened = true;
    }
    const fast = this.#arrayFast(s, pos);
    if (fast === undefined) return this.#arrayExact(s, pos, final);
    if (fast.events.length > 0) this.#seen = true;
    // The rest (an incomplete element, `]`) goes through the exact scanner.
    const rest = this.#arrayExact(this.#buf, 0, final);
    return rest.length === 0 ? fast.events : fast.events.concat(rest);
  }

  /**
   * Fast path: everything up to the last `}` of the buffer parsed by one `JSON.parse`. A `}`
   * inside a string leaves an unterminated string, so a wrong guess fails to parse and the
   * exact scanner takes over (and reports errors with their line).
   */
  #arrayFast(s: string, from: number): { events: AmiEvent[] } | undefined {
    let pos = skipWhitespace(s, from);
    if (this.#closed || pos >= s.length) return undefined;
    if (this.#needComma) {
      if (s.charCodeAt(pos) !== 44 /* , */) return undefined;
      pos = skipWhitespace(s, pos + 1);
    }
    if (s.charCodeAt(pos) !== 123 /* { */) return undefined;
    const last = s.lastIndexOf('}');
    if (last < pos) return undefined;
    let parsed: unknown[];
    try {
      parsed = JSON.parse(`[${s.slice(pos, last + 1)}]`) as unknown[];
    } catch {
      return undefined;
    }
    for (const value of parsed) if (checkEvent(value) !== undefined) return undefined;
    this.#needComma = true;
    this.#line += countNewlines(s, 0, last + 1);
    this.#buf = s.slice(last + 1);
    return { events: parsed as AmiEvent[] };
  }

  /** The exact scanner: finds each element's end, honouring strings and escapes. */
  #arrayExact(s: string, from: number, final: boolean): AmiEvent[] {
    let pos = from;
    const starts: number[] = [];
    const ends: number[] = [];
    let consumed = pos;
    while (true) {
      pos = skipWhitespace(s, pos);
      if (pos >= s.length) break;
      const c = s.charCodeAt(pos);
      if (this.#closed) {
        throw this.#error(this.#lineAt(s, pos), 'unexpected data after the end of the JSON array');
      }
      if (c === 93 /* ] */) {
        this.#closed = true;
        pos++;
        consumed = pos;
        continue;
      }
      if (this.#needComma) {
        if (c !== 44 /* , */) {
          throw this.#error(this.#lineAt(s, pos), 'malformed JSON: expected , or ] between events');
        }
        this.#needComma = false;
        pos++;
        consumed = pos;
        continue;
      }
      if (c !== 123 /* { */) {
        throw this.#error(
          this.#lineAt(s, pos),
          this.#elementProblem(starts.length === 0, 'expected an AMI event object'),
        );
      }
      const end = valueEnd(s, pos);
      if (end === -1) {
        if (final)
          throw this.#error(this.#lineAt(s, pos), 'unexpected end of file inside an event');
        break;
      }
      starts.push(pos);
      ends.push(end);
      this.#needComma = true;
      pos = end;
      consumed = end;
    }
    let events: AmiEvent[] = [];
    if (starts.length > 0) {
      const first = starts[0] as number;
      const last = ends[ends.length - 1] as number;
      let parsed: unknown[] | undefined;
      try {
        parsed = JSON.parse(`[${s.slice(first, last)}]`) as unknown[];
      } catch {
        parsed = undefined;
      }
      if (parsed === undefined || parsed.length !== starts.length) {
        parsed = starts.map((start, i) => {
          const text = s.slice(start, ends[i]);
          try {
            return JSON.parse(text) as unknown;
          } catch (error) {
            throw this.#error(
              this.#lineAt(s, start) + errorLineOffset(text, error),
              this.#elementProblem(i === 0, parseProblem(error)),
              error,
            );
          }
        });
      }
      for (let i = 0; i < parsed.length; i++) {
        const problem = checkEvent(parsed[i]);
        if (problem !== undefined) {
          throw this.#error(
            this.#lineAt(s, starts[i] as number),
            this.#elementProblem(i === 0, problem),
          );
        }
      }
      events = parsed as AmiEvent[];
    }
    this.#line += countNewlines(s, 0, consumed);
    this.#buf = consumed >= s.length ? '' : s.slice(consumed);
    return events;
  }

  #lineAt(s: string, pos: number): number {
    return this.#line + countNewlines(s, 0, pos);
  }
}

function sourceName(source: RecordingSource, options: ReadRecordingOptions): string {
  if (options.name !== undefined) return options.name;
  if (typeof source === 'string') return source === '-' ? '<stdin>' : source;
  return '<stream>';
}

/**
 * Reads a recording as batches of events (arrays, in order; one per chunk read), streaming:
 * memory stays bounded by the chunk size whatever the file size. Prefer this over
 * {@link readRecording} on hot paths: one promise per batch instead of per event.
 *
 * @throws {RecordingError} (from the iterator) on an unreadable source, malformed JSON (with
 *   the line), an element that is not an event object, or truncated input.
 */
export async function* readRecordingBatches(
  source: RecordingSource,
  options: ReadRecordingOptions = {},
): AsyncGenerator<AmiEvent[], void, undefined> {
  const file = sourceName(source, options);
  const scanner = new RecordingScanner(file, options.maxElementBytes ?? DEFAULT_MAX_ELEMENT);
  const decoder = new StringDecoder('utf8');
  let input: AsyncIterable<Buffer | string>;
  if (typeof source === 'string') {
    input =
      source === '-'
        ? process.stdin
        : createReadStream(source, { highWaterMark: options.chunkBytes ?? DEFAULT_CHUNK_BYTES });
  } else {
    input = source;
  }
  try {
    for await (const chunk of input) {
      const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
      const events = scanner.feed(text);
      if (events.length > 0) yield events;
    }
  } catch (error) {
    if (error instanceof RecordingError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new RecordingError(
      file,
      undefined,
      `cannot read recording${code === undefined ? '' : ` (${code})`}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const rest = decoder.end();
  const tail = rest.length > 0 ? scanner.feed(rest) : [];
  const last = scanner.end();
  if (tail.length + last.length > 0) yield tail.concat(last);
}

/**
 * Reads a recording event by event; see {@link readRecordingBatches} (same errors, same
 * streaming).
 */
export async function* readRecording(
  source: RecordingSource,
  options: ReadRecordingOptions = {},
): AsyncGenerator<AmiEvent, void, undefined> {
  for await (const batch of readRecordingBatches(source, options)) yield* batch;
}
