/**
 * The reference AMI parser: the plain, readable statement of what {@link AmiParser} does.
 *
 * It buffers text, cuts it into lines, and handles one line at a time with a small state
 * machine. No shape trie, no generated code, no skipping ahead: a security reviewer can read
 * it top to bottom. The fast parser (`protocol.ts`) must produce exactly what this one
 * produces for the same chunks: the same messages, banner and errors in the same order
 * (`test/ami/protocol-differential.test.ts` checks it on every recording, at every chunk
 * split, and on random and mutated input). It is not used on the hot path.
 *
 * Rules (the same as {@link AmiParser}'s, see its TSDoc):
 * - A line ends at `\n`; one `\r` before it is dropped. An empty line ends a message.
 * - `Key: value`: the key is everything before the first `:`, the value everything after it
 *   minus one leading space. A repeated key collects its values into an array.
 * - The first line of the stream without a colon is the banner; other lines without a colon
 *   are ignored.
 * - `Response: Follows`: then lines `ActionID`/`Privilege`/`Message`/`Output: ...` are
 *   headers; the first other line starts raw output, which ends at a line ending with
 *   `--END COMMAND--`; the output lines become `Output`.
 * - Bounds: the characters of a message's counted lines (its `Key: value` lines and, after
 *   `Response: Follows`, every line) over `maxMessageBytes`, or an unterminated line that
 *   would make them exceed it, or more than `maxHeaders` lines, discard the message and
 *   every line up to the blank line that ends it. A complete message whose size
 *   (per field: UTF-8 bytes of key and value + 4; per output line: UTF-8 bytes + 2) exceeds
 *   `maxMessageBytes` is discarded too.
 * - `wantEvent`: a complete message with an `Event` key whose first value it refuses is
 *   dropped without error.
 *
 * @module
 */
import { StringDecoder } from 'node:string_decoder';
import { emptyMessage } from './message.ts';
import {
  type AmiParserOptions,
  AmiProtocolError,
  DEFAULT_MAX_HEADERS,
  DEFAULT_MAX_MESSAGE_BYTES,
} from './protocol.ts';

const END_COMMAND = '--END COMMAND--';
const FOLLOWS_HEADER_KEYS = new Set(['ActionID', 'Privilege', 'Message', 'Output']);

type Mode = 'normal' | 'follows-headers' | 'follows-raw';

/** The reference parser; same options and methods as {@link AmiParser}. */
export class AmiReferenceParser {
  /** The banner line, once received. */
  banner: string | undefined;
  readonly #options: AmiParserOptions;
  readonly #maxBytes: number;
  readonly #maxHeaders: number;
  readonly #decoder = new StringDecoder('utf8');
  /** Text received but not yet cut into lines (an unterminated line). */
  #buffer = '';
  #firstLine = true;
  #mode: Mode = 'normal';
  /** The fields of the message being read, in wire order. */
  #fields: Array<[key: string, value: string]> = [];
  /** Raw command output lines of the message being read. */
  #output: string[] = [];
  /** Characters counted against `maxMessageBytes` so far. */
  #chars = 0;
  /** Dropping lines up to the next blank line (a message broke a bound). */
  #skipping = false;
  /** While skipping: the next line is the rest of a line already dropped, never blank. */
  #skippingMidLine = false;

  constructor(options: AmiParserOptions) {
    this.#options = options;
    this.#maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#maxHeaders = options.maxHeaders ?? DEFAULT_MAX_HEADERS;
  }

  /** Parses one chunk (see `AmiParser.push`). */
  push(chunk: Buffer | string): void {
    this.#buffer += typeof chunk === 'string' ? chunk : this.#decoder.write(chunk);
    let newline = this.#buffer.indexOf('\n');
    while (newline !== -1) {
      let line = this.#buffer.slice(0, newline);
      this.#buffer = this.#buffer.slice(newline + 1);
      const lineChars = line.length + 1;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      this.#line(line, lineChars);
      newline = this.#buffer.indexOf('\n');
    }
    // An unterminated line that already makes the message too large is not waited for.
    if (!this.#skipping && this.#chars + this.#buffer.length > this.#maxBytes) {
      this.#buffer = '';
      this.#discard('MESSAGE_TOO_LARGE', true);
    }
    if (this.#skipping && this.#buffer.length > 0) {
      // Only whether the unterminated line is blank matters: keep at most a lone CR.
      if (this.#buffer !== '\r') this.#skippingMidLine = true;
      this.#buffer = this.#skippingMidLine ? '' : this.#buffer;
    }
  }

  /** Ends the stream (see `AmiParser.end`). */
  end(): string {
    // While skipping, what was buffered belongs to the discarded message.
    const rest = (this.#skipping ? '' : this.#buffer) + this.#decoder.end();
    let incomplete = '';
    for (const [key, value] of this.#fields) incomplete += `${key}: ${value}\n`;
    incomplete += rest;
    this.#resetMessage();
    this.#buffer = '';
    this.#skipping = false;
    this.#skippingMidLine = false;
    return incomplete;
  }

  #line(line: string, lineChars: number): void {
    if (this.#skipping) {
      if (line === '' && !this.#skippingMidLine) this.#skipping = false;
      this.#skippingMidLine = false;
      return;
    }
    if (this.#mode === 'follows-raw') {
      this.#rawLine(line, lineChars);
      return;
    }
    if (this.#mode === 'follows-headers') {
      if (line === '') {
        this.#finish();
        return;
      }
      this.#chars += lineChars;
      if (this.#chars > this.#maxBytes) {
        this.#discard('MESSAGE_TOO_LARGE');
        return;
      }
      const colon = line.indexOf(':');
      const key = colon === -1 ? '' : line.slice(0, colon);
      if (FOLLOWS_HEADER_KEYS.has(key)) {
        if (this.#fields.length >= this.#maxHeaders) {
          this.#discard('TOO_MANY_HEADERS');
          return;
        }
        this.#fields.push([key, valueAfter(line, colon)]);
        return;
      }
      this.#mode = 'follows-raw';
      this.#rawLine(line, 0);
      return;
    }
    if (line === '') {
      if (this.#fields.length > 0) this.#finish();
      return;
    }
    const colon = line.indexOf(':');
    if (colon === -1) {
      if (this.#firstLine && this.#fields.length === 0) {
        this.banner = line;
        this.#options.onBanner?.(line);
      }
      this.#firstLine = false;
      return;
    }
    this.#firstLine = false;
    this.#chars += lineChars;
    if (this.#chars > this.#maxBytes || this.#fields.length >= this.#maxHeaders) {
      this.#discard(
        this.#fields.length >= this.#maxHeaders ? 'TOO_MANY_HEADERS' : 'MESSAGE_TOO_LARGE',
      );
      return;
    }
    const key = line.slice(0, colon);
    const value = valueAfter(line, colon);
    this.#fields.push([key, value]);
    if (key === 'Response' && value === 'Follows') this.#mode = 'follows-headers';
  }

  /** A line of raw command output; `lineChars` is already counted when 0. */
  #rawLine(line: string, lineChars: number): void {
    this.#chars += lineChars;
    if (this.#chars > this.#maxBytes) {
      this.#discard('MESSAGE_TOO_LARGE');
      return;
    }
    if (line.endsWith(END_COMMAND)) {
      const last = line.slice(0, line.length - END_COMMAND.length);
      if (last !== '') this.#output.push(last);
      this.#finish();
      return;
    }
    if (this.#fields.length + this.#output.length >= this.#maxHeaders) {
      this.#discard('TOO_MANY_HEADERS');
      return;
    }
    this.#output.push(line);
  }

  #finish(): void {
    const fields = this.#fields;
    const output = this.#output;
    const inRaw = this.#mode === 'follows-raw';
    this.#resetMessage();
    let bytes = 0;
    for (const [key, value] of fields)
      bytes += Buffer.byteLength(key) + Buffer.byteLength(value) + 4;
    for (const line of output) bytes += Buffer.byteLength(line) + 2;
    if (bytes > this.#maxBytes) {
      this.#report('MESSAGE_TOO_LARGE');
      return;
    }
    const message = emptyMessage();
    for (const [key, value] of fields) {
      const previous = message[key];
      if (previous === undefined) message[key] = value;
      else if (typeof previous === 'string') message[key] = [previous, value];
      else previous.push(value);
    }
    if (inRaw) {
      if (output.length === 1) message.Output = output[0] as string;
      else if (output.length > 1) message.Output = output;
    }
    const event = message.Event;
    if (event !== undefined && this.#options.wantEvent !== undefined) {
      const name = typeof event === 'string' ? event : (event[0] as string);
      if (!this.#options.wantEvent(name)) return;
    }
    this.#options.onMessage(message);
  }

  #resetMessage(): void {
    this.#fields = [];
    this.#output = [];
    this.#chars = 0;
    this.#mode = 'normal';
  }

  /** Drops the current message; the lines up to its blank line are dropped too. */
  #discard(code: 'MESSAGE_TOO_LARGE' | 'TOO_MANY_HEADERS', midLine = false): void {
    this.#resetMessage();
    this.#skipping = true;
    this.#skippingMidLine = midLine;
    this.#report(code);
  }

  #report(code: 'MESSAGE_TOO_LARGE' | 'TOO_MANY_HEADERS'): void {
    const error = new AmiProtocolError(
      code,
      code === 'MESSAGE_TOO_LARGE'
        ? `AMI message larger than maxMessageBytes (${this.#maxBytes} bytes) discarded`
        : `AMI message with more than maxHeaders (${this.#maxHeaders}) lines discarded`,
    );
    if (this.#options.onError === undefined) throw error;
    this.#options.onError(error);
  }
}

/** The value of a `Key: value` line: after the colon, minus one leading space. */
function valueAfter(line: string, colon: number): string {
  return line.charCodeAt(colon + 1) === 32 ? line.slice(colon + 2) : line.slice(colon + 1);
}
