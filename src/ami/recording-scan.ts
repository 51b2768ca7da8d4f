/**
 * The byte-level half of the parallel recording reader (recording-parallel.ts): finds the
 * events of a recording chunk and the offsets of the keys a consumer asked for, without
 * building any object. It runs in a worker thread; the main thread builds the events from
 * the offsets (cheap string slices), so parsing and the call engine use both cores.
 *
 * An element is "simple" when it is a flat JSON object whose values are strings without
 * escapes (the common case: the conformance fixtures and `switchboard record` output).
 * Anything else (escapes, nested values, numbers, malformed text) is marked "complex" and
 * the main thread hands its text to `JSON.parse`, which also produces exact errors.
 */

/** Element kinds in the offsets array. */
export const SIMPLE = 0;
export const COMPLEX = 1;

/**
 * Offsets of one scanned chunk, per element: `kind, line, start, end, fieldCount`, then
 * `fieldCount` triples `keyIndex, valueStart, valueEnd` (only for wanted keys). Offsets are
 * UTF-16 indices into the chunk's text; `line` is the 1-based line of the element's start.
 */
export type ScanOffsets = Int32Array;

/** A problem with the recording's structure between elements (not inside one). */
export interface ScanProblem {
  line: number;
  message: string;
}

const WS_SPACE = 32;
const WS_TAB = 9;
const WS_CR = 13;
const NL = 10;
const QUOTE = 34;
const BACKSLASH = 92;
const COLON = 58;
const COMMA = 44;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;

/** Incremental scanner: text chunks in, (text, offsets) out. */
export class RecordingScan {
  /** Wanted keys grouped by length, and their key indexes. */
  readonly #keysByLength: (string[] | undefined)[] = [];
  readonly #indexesByLength: (number[] | undefined)[] = [];
  #format: 'unknown' | 'array' | 'jsonl' = 'unknown';
  #buf = '';
  #line = 1;
  #closed = false;
  #needComma = false;
  #out = new Int32Array(1 << 16);
  /** Index of the next backslash at or after the scan position; -1: none; -2: unknown. */
  #backslash = -2;
  #outLength = 0;
  /** Set when the structure between elements is wrong; scanning stops there. */
  problem: ScanProblem | undefined;

  /** @param keys the keys whose values the consumer wants (their index is the key id). */
  constructor(keys: readonly string[]) {
    keys.forEach((key, index) => {
      (this.#keysByLength[key.length] ??= []).push(key);
      (this.#indexesByLength[key.length] ??= []).push(index);
    });
  }

  /**
   * Scans `text` appended to the unconsumed rest. Returns the text of the complete elements
   * and their offsets (a copy), or `undefined` when none completed.
   */
  feed(text: string, final = false): { text: string; offsets: ScanOffsets } | undefined {
    this.#buf = this.#buf.length > 0 ? this.#buf + text : text;
    this.#outLength = 0;
    const s = this.#buf;
    let pos = 0;
    if (this.#format === 'unknown') {
      pos = this.#skip(s, 0);
      if (s.charCodeAt(pos) === 0xfeff) pos = this.#skip(s, pos + 1);
      if (pos >= s.length) {
        this.#buf = '';
        return undefined;
      }
      const c = s.charCodeAt(pos);
      if (c === OPEN_BRACKET) {
        this.#format = 'array';
        pos++;
      } else if (c === OPEN_BRACE) {
        this.#format = 'jsonl';
      } else {
        this.problem = {
          line: this.#line,
          message: 'not a recording: expected a JSON array ([) or JSON Lines ({)',
        };
        return undefined;
      }
    }
    let consumed = pos;
    this.#backslash = -2;
    while (this.problem === undefined) {
      pos = this.#skip(s, pos);
      if (pos >= s.length) {
        consumed = pos;
        break;
      }
      const c = s.charCodeAt(pos);
      if (this.#format === 'array') {
        if (this.#closed) {
          this.problem = {
            line: this.#line,
            message: 'unexpected data after the end of the JSON array',
          };
          break;
        }
        if (c === CLOSE_BRACKET) {
          this.#closed = true;
          pos++;
          consumed = pos;
          continue;
        }
        if (this.#needComma) {
          if (c !== COMMA) {
            this.problem = {
              line: this.#line,
              message: 'malformed JSON: expected , or ] between events',
            };
            break;
          }
          this.#needComma = false;
          pos++;
          consumed = pos;
          continue;
        }
      }
      if (c !== OPEN_BRACE) {
        this.problem = { line: this.#line, message: 'expected an AMI event object' };
        break;
      }
      const end = this.#element(s, pos, final);
      if (end === -1) {
        consumed = pos;
        break;
      }
      pos = end;
      consumed = end;
      if (this.#format === 'array') this.#needComma = true;
    }
    const done = s.slice(0, consumed);
    this.#buf = consumed >= s.length ? '' : s.slice(consumed);
    if (this.#outLength === 0) return undefined;
    return { text: done, offsets: this.#out.slice(0, this.#outLength) };
  }

  /** After the last chunk: what is left must be whitespace (and the array closed). */
  finish(): { text: string; offsets: ScanOffsets } | undefined {
    const result = this.feed('', true);
    if (this.problem === undefined) {
      if (this.#buf.trim().length > 0) {
        this.problem = { line: this.#line, message: 'unexpected end of file inside an event' };
      } else if (this.#format === 'array' && !this.#closed) {
        this.problem = {
          line: this.#line,
          message: 'unexpected end of file: the JSON array is not closed',
        };
      }
    }
    return result;
  }

  /** Skips whitespace, counting lines. */
  #skip(s: string, from: number): number {
    let i = from;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === WS_SPACE || c === WS_TAB || c === WS_CR) i++;
      else if (c === NL) {
        i++;
        this.#line++;
      } else return i;
    }
  }

  /** Whether `s[from, to)` contains a backslash; amortised O(1) for increasing `from`. */
  #hasBackslash(s: string, from: number, to: number): boolean {
    if (this.#backslash === -1) return false;
    if (this.#backslash < from) {
      this.#backslash = s.indexOf('\\', from);
      if (this.#backslash === -1) return false;
    }
    return this.#backslash < to;
  }

  #ensure(extra: number): void {
    if (this.#outLength + extra <= this.#out.length) return;
    const bigger = new Int32Array(Math.max(this.#out.length * 2, this.#outLength + extra));
    bigger.set(this.#out.subarray(0, this.#outLength));
    this.#out = bigger;
  }

  /**
   * Scans the element at `start` (a `{`). Returns its end, or -1 when the text ends first
   * (the element is kept for the next chunk). Records its offsets.
   */
  #element(s: string, start: number, final: boolean): number {
    const line = this.#line;
    this.#ensure(5 + 3 * 64);
    const head = this.#outLength;
    let o = head + 5;
    let fields = 0;
    let i = start + 1;
    let lines = 0;
    // Simple shape: { "key" : "value" (, "key" : "value")* }
    for (;;) {
      let c = s.charCodeAt(i);
      while (c === WS_SPACE || c === WS_TAB || c === WS_CR || c === NL) {
        if (c === NL) lines++;
        c = s.charCodeAt(++i);
      }
      if (c === CLOSE_BRACE && fields === 0 && o === head + 5) {
        i++;
        break;
      }
      if (c !== QUOTE) break;
      const keyEnd = s.indexOf('"', i + 1);
      if (keyEnd === -1) return this.#incomplete(final, s, start, line);
      const keyStart = i + 1;
      if (this.#hasBackslash(s, keyStart, keyEnd)) break;
      i = keyEnd + 1;
      c = s.charCodeAt(i);
      while (c === WS_SPACE || c === WS_TAB || c === WS_CR || c === NL) {
        if (c === NL) lines++;
        c = s.charCodeAt(++i);
      }
      if (c !== COLON) {
        if (Number.isNaN(c)) return this.#incomplete(final, s, start, line);
        break;
      }
      c = s.charCodeAt(++i);
      while (c === WS_SPACE || c === WS_TAB || c === WS_CR || c === NL) {
        if (c === NL) lines++;
        c = s.charCodeAt(++i);
      }
      if (c !== QUOTE) {
        if (Number.isNaN(c)) return this.#incomplete(final, s, start, line);
        break;
      }
      const valueStart = i + 1;
      const valueEnd = s.indexOf('"', valueStart);
      if (valueEnd === -1) return this.#incomplete(final, s, start, line);
      if (this.#hasBackslash(s, valueStart, valueEnd)) break;
      const candidates = this.#keysByLength[keyEnd - keyStart];
      if (candidates !== undefined) {
        for (let k = 0; k < candidates.length; k++) {
          if (s.startsWith(candidates[k] as string, keyStart)) {
            const out = this.#out;
            out[o] = (this.#indexesByLength[keyEnd - keyStart] as number[])[k] as number;
            out[o + 1] = valueStart;
            out[o + 2] = valueEnd;
            o += 3;
            fields++;
            if (o + 3 > out.length) {
              this.#outLength = o;
              this.#ensure(64 * 3);
            }
            break;
          }
        }
      }
      i = valueEnd + 1;
      c = s.charCodeAt(i);
      while (c === WS_SPACE || c === WS_TAB || c === WS_CR || c === NL) {
        if (c === NL) lines++;
        c = s.charCodeAt(++i);
      }
      if (c === COMMA) {
        i++;
        continue;
      }
      if (c === CLOSE_BRACE) {
        i++;
        const out = this.#out;
        out[head] = SIMPLE;
        out[head + 1] = line;
        out[head + 2] = start;
        out[head + 3] = i;
        out[head + 4] = fields;
        this.#outLength = o;
        this.#line += lines;
        return i;
      }
      if (Number.isNaN(c)) return this.#incomplete(final, s, start, line);
      break;
    }
    // Not simple (escapes, nested values, numbers, or malformed): find its end exactly and
    // let the consumer JSON.parse it.
    const end = valueEnd(s, start);
    if (end === -1) return this.#incomplete(final, s, start, line);
    for (let k = s.indexOf('\n', start); k !== -1 && k < end; k = s.indexOf('\n', k + 1))
      this.#line++;
    const out = this.#out;
    out[head] = COMPLEX;
    out[head + 1] = line;
    out[head + 2] = start;
    out[head + 3] = end;
    out[head + 4] = 0;
    this.#outLength = head + 5;
    return end;
  }

  #incomplete(final: boolean, s: string, start: number, line: number): number {
    if (!final) return -1;
    // The file ends inside this element: hand the rest over as complex, JSON.parse reports it.
    const out = this.#out;
    const head = this.#outLength;
    out[head] = COMPLEX;
    out[head + 1] = line;
    out[head + 2] = start;
    out[head + 3] = s.length;
    out[head + 4] = 0;
    this.#outLength = head + 5;
    return s.length;
  }
}

/**
 * End (exclusive) of the JSON value starting at `start` (an object or array), or -1 when `s`
 * ends first; strings are skipped honouring escapes.
 */
export function valueEnd(s: string, start: number): number {
  let depth = 0;
  let i = start;
  const length = s.length;
  while (i < length) {
    const c = s.charCodeAt(i);
    if (c === QUOTE) {
      let q = s.indexOf('"', i + 1);
      while (q !== -1) {
        let backslashes = 0;
        while (s.charCodeAt(q - 1 - backslashes) === BACKSLASH) backslashes++;
        if ((backslashes & 1) === 0) break;
        q = s.indexOf('"', q + 1);
      }
      if (q === -1) return -1;
      i = q + 1;
      continue;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
      if (depth === 0) return i + 1;
    }
    i++;
  }
  return -1;
}
