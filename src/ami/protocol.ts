/**
 * Why this file is long: the fast parser (shape trie, compiled message builders, one pass
 * over the bytes) is one hot loop kept together for the benchmark's sake
 * (docs/benchmarks.md); its plain reference implementation is protocol-reference.ts, and
 * test/ami/protocol-differential.test.ts checks that both yield the same messages.
 *
 * AMI wire protocol: an incremental parser for the bytes Asterisk sends and serializers for
 * what a client (or a fake server) writes back.
 *
 * Framing (Asterisk `manager.c`): `Key: Value\r\n` lines, an empty line ends a message. The
 * first line of a connection is a banner without a colon (`Asterisk Call Manager/11.0.0`).
 * `Response: Follows` (the `Command` action up to Asterisk 13) carries raw output lines up to
 * `--END COMMAND--`; Asterisk 14+ answers `Command` with repeated `Output:` keys instead.
 *
 * @module
 */
import { StringDecoder } from 'node:string_decoder';
import { type AmiMessage, emptyMessage, MESSAGE_PROTOTYPE } from './message.ts';

/** Default {@link AmiParserOptions.maxMessageBytes}: 1 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

/** Default {@link AmiParserOptions.maxHeaders}: 10,000 lines (`Key: value` or output lines). */
export const DEFAULT_MAX_HEADERS = 10_000;

/** What went wrong in an {@link AmiProtocolError}. */
export type AmiProtocolErrorCode =
  /** A message grew beyond `maxMessageBytes` before its terminating blank line. */
  | 'MESSAGE_TOO_LARGE'
  /** A message has more than `maxHeaders` lines. */
  | 'TOO_MANY_HEADERS'
  /** An action or message to serialize has a key or value with CR/LF, or a malformed key. */
  | 'INVALID_FIELD';

/**
 * A violation of the AMI framing, reported by {@link AmiParser} (oversized message, too many
 * headers) and raised by {@link serializeAction} / {@link serializeMessage} (header injection:
 * CR or LF in a key or value). Messages never include field values, so no secret can leak
 * through them.
 */
export class AmiProtocolError extends Error {
  /** Machine-readable reason. */
  readonly code: AmiProtocolErrorCode;
  constructor(code: AmiProtocolErrorCode, message: string) {
    super(message);
    this.name = 'AmiProtocolError';
    this.code = code;
  }
}

/** Options of {@link AmiParser}. */
export interface AmiParserOptions {
  /** Called with every complete message (event, response), in wire order. */
  onMessage: (message: AmiMessage) => void;
  /** Called once with the banner line (e.g. `Asterisk Call Manager/11.0.0`), if one is sent. */
  onBanner?: (banner: string) => void;
  /**
   * Largest accepted message in bytes (UTF-8, line endings included); a bigger one is
   * discarded ({@link AmiProtocolError} `MESSAGE_TOO_LARGE`) instead of buffered. Default
   * {@link DEFAULT_MAX_MESSAGE_BYTES}.
   */
  maxMessageBytes?: number;
  /**
   * Most lines in one message (`Key: value` lines and command output lines); a message with
   * more is discarded ({@link AmiProtocolError} `TOO_MANY_HEADERS`). Default
   * {@link DEFAULT_MAX_HEADERS}.
   */
  maxHeaders?: number;
  /**
   * Called for every discarded message: the parser drops what it buffered of that message
   * and every further line up to the blank line that ends it, then goes on with the next
   * message. Without it, {@link AmiParser.push} throws the error instead (the rest of that
   * chunk is lost; the parser still resumes at the next message boundary).
   */
  onError?: (error: AmiProtocolError) => void;
  /**
   * Lazy parsing: called with the `Event` value (the first one) of each event; when it
   * returns false the event is not built nor delivered. An event whose first line is its
   * `Event:` line and whose end is in the same chunk costs little more than finding that
   * end. Called once per event, before the event is complete (also for an event then
   * discarded for breaking a bound); not called for responses. Default: every event.
   */
  wantEvent?: (eventName: string) => boolean;
}

const END_COMMAND = '--END COMMAND--';

// Parser modes.
const NORMAL = 0;
/** After `Response: Follows`: header lines until the first line that is not a known header. */
const FOLLOWS_HEADERS = 1;
/** Asterisk <= 13 `Command` output: raw lines until `--END COMMAND--`. */
const FOLLOWS_RAW = 2;

/**
 * A node of the shape trie: the sequence of keys seen so far in a message. Messages of one
 * kind (`Newchannel`, `VarSet`, ...) repeat the same key sequence, so the parser walks this
 * trie instead of creating key strings, and builds each message by cloning the node's
 * template object (same hidden class, internalized keys) and storing the values.
 */
interface ShapeNode {
  /** The key of the line that leads to this node (empty for the root). */
  readonly key: string;
  readonly children: Map<string, ShapeNode>;
  /** The child taken last time (checked before the map). */
  last: ShapeNode | undefined;
  /** True when some key occurs twice on the path: such messages are built generically. */
  readonly dup: boolean;
  /** Messages completed at this node so far (a builder is compiled at {@link COMPILE_AFTER}). */
  hits: number;
  /** Builds the message from the values array: a constructor storing this path's keys. */
  build: MessageBuilder | undefined;
}

/** A shape gets its compiled builder after this many messages. */
const COMPILE_AFTER = 3;

/** A compiled message constructor: `new build(values)` is the message of one shape. */
type MessageBuilder = new (values: string[]) => AmiMessage;

/**
 * Compiles a constructor `function (v) { this["Key1"] = v[0]; this["Key2"] = v[1]; ... }`
 * for one key sequence, with {@link MESSAGE_PROTOTYPE} as its prototype: messages of one
 * shape share one hidden class and internalized keys, about ten times faster than adding
 * properties one by one. Keys are embedded as JSON string literals (no code injection
 * possible); since the prototype chain has no `__proto__` accessor, `this["__proto__"] = v`
 * stores an own data property like any other key. Returns undefined where code generation is
 * disabled.
 */
function compileBuilder(keys: readonly string[]): MessageBuilder | undefined {
  const body = keys.map((key, i) => `this[${JSON.stringify(key)}] = v[${i}];`).join('\n');
  try {
    const build = new Function('v', body) as unknown as MessageBuilder;
    build.prototype = MESSAGE_PROTOTYPE;
    return build;
  } catch {
    return undefined;
  }
}

/** Bound on the shape trie (nodes); beyond it messages are built generically. */
const MAX_SHAPE_NODES = 20_000;

/**
 * Longest key kept in the shape trie, in characters (real AMI keys have fewer than 40);
 * messages with a longer key are built generically, so that the trie's memory stays bounded
 * (at most {@link MAX_SHAPE_NODES} keys of this length).
 */
const MAX_SHAPE_KEY_CHARS = 128;

/**
 * Adds one `key: value` line to a message being built generically. `message` inherits
 * nothing, so `message[key]` is only ever undefined, a string or an array of this message.
 */
function setField(message: AmiMessage, key: string, value: string): void {
  const previous = message[key];
  if (previous === undefined) {
    message[key] = value;
  } else if (typeof previous === 'string') {
    message[key] = [previous, value];
  } else {
    previous.push(value);
  }
}

/**
 * Incremental AMI parser. Feed it TCP chunks of any size with {@link AmiParser.push}; it calls
 * `onMessage` for every complete message and `onBanner` for the banner line.
 *
 * - A chunk may split a line, a `\r\n` or a multi-byte UTF-8 character.
 * - Bare `\n` line endings are accepted as well as `\r\n`.
 * - A key that repeats within one message keeps every value: the value becomes a `string[]`
 *   in wire order (see {@link AmiMessage}).
 * - Every message inherits nothing ({@link MESSAGE_PROTOTYPE}): a key named like an
 *   `Object.prototype` member (`toString`, `constructor`, `__proto__`, ...) is an ordinary
 *   own field.
 * - `Response: Follows` with raw output (Asterisk <= 13) yields the output lines under the key
 *   `Output`, the same key Asterisk 14+ uses (a string for one line, an array for several);
 *   use `fields(message, 'Output')` to read both styles alike.
 * - The value is everything after `Key:` minus one leading space (no other trimming). Lines
 *   without a colon are ignored, except the banner (first line of the stream) and command
 *   output.
 * - Bounded: a message over `maxMessageBytes` or `maxHeaders` is discarded up to its closing
 *   blank line and reported to `onError`; the next message is parsed as usual. Memory per
 *   connection stays below about `maxMessageBytes` plus the shape trie (bounded too).
 *
 * Speed: lines are found with `indexOf` (no regular expressions, no per-byte loops) and keys
 * are matched against a trie of the key sequences already seen, so a message is built by a
 * compiled constructor per shape, without creating key strings.
 */
export class AmiParser {
  /** The banner line, once received. */
  banner: string | undefined;
  readonly #onMessage: (message: AmiMessage) => void;
  readonly #onBanner: ((banner: string) => void) | undefined;
  readonly #onError: ((error: AmiProtocolError) => void) | undefined;
  readonly #maxBytes: number;
  readonly #maxHeaders: number;
  readonly #decoder = new StringDecoder('utf8');
  /** Unterminated last line of the previous chunk. */
  #partial = '';
  /** Characters of the current message so far (a lower bound of its UTF-8 byte length). */
  #messageChars = 0;
  /** Number of fields of the current message (0: between messages). */
  #depth = 0;
  readonly #keys: string[] = [];
  readonly #values: string[] = [];
  readonly #root: ShapeNode = {
    key: '',
    children: new Map(),
    last: undefined,
    dup: false,
    hits: 0,
    build: undefined,
  };
  #node: ShapeNode = this.#root;
  #nodeCount = 0;
  /** The current message left the trie (too many shapes, long key, or command output). */
  #generic = false;
  #firstLine = true;
  #mode = NORMAL;
  #output: string[] = [];
  /** Discarding a message that broke a bound: every line up to the next blank line. */
  #skipping = false;
  /** While skipping: the current (unterminated) line has more than a lone CR. */
  #skipDirty = false;
  /** While skipping: the current (unterminated) line is exactly one CR so far. */
  #skipCR = false;
  readonly #wantEvent: ((eventName: string) => boolean) | undefined;
  /** The current message is an event `wantEvent` refused (built, then dropped). */
  #unwanted = false;
  /** Whether `wantEvent` was asked about the current message already. */
  #asked = false;
  /**
   * Positions in the string being scanned ({@link #scan}) of the next `\n\r\n`, `\n\n` and
   * `Follows`, or its length when there is none: each is searched for once per string and
   * again only when the scan passes it, so that skipping unwanted events stays linear.
   */
  #nextCrlfBlank = -1;
  #nextLfBlank = -1;
  #nextFollows = -1;

  constructor(options: AmiParserOptions) {
    this.#onMessage = options.onMessage;
    this.#onBanner = options.onBanner;
    this.#onError = options.onError;
    this.#maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#maxHeaders = options.maxHeaders ?? DEFAULT_MAX_HEADERS;
    this.#wantEvent = options.wantEvent;
  }

  /**
   * Parses one chunk of the stream. Messages completed by this chunk are delivered
   * synchronously, before `push` returns.
   *
   * @throws {AmiProtocolError} `MESSAGE_TOO_LARGE` / `TOO_MANY_HEADERS` when a message breaks
   *   a bound and no `onError` is given (the message is discarded; the rest of the chunk is
   *   lost).
   */
  push(chunk: Buffer | string): void {
    const s = typeof chunk === 'string' ? chunk : this.#decoder.write(chunk);
    let start = 0;
    if (this.#skipping) {
      start = this.#skipLines(s, 0);
      if (start === -1) return;
    } else if (this.#partial.length > 0) {
      // Complete the carried line on its own, so that `s` stays a flat string.
      const nl = s.indexOf('\n');
      if (nl === -1) {
        this.#partial += s;
        if (this.#messageChars + this.#partial.length > this.#maxBytes) {
          this.#discard('MESSAGE_TOO_LARGE', true);
        }
        return;
      }
      const head = this.#partial + s.slice(0, nl + 1);
      this.#partial = '';
      this.#scan(head, 0);
      start = nl + 1;
      if (this.#skipping) {
        start = this.#skipLines(s, start);
        if (start === -1) return;
      }
    }
    this.#scan(s, start);
  }

  /** Parses the complete lines of `s` from `pos`; keeps the unterminated rest in #partial. */
  #scan(s: string, start: number): void {
    const len = s.length;
    const keys = this.#keys;
    const values = this.#values;
    const want = this.#wantEvent;
    this.#nextCrlfBlank = -1;
    this.#nextLfBlank = -1;
    this.#nextFollows = -1;
    let pos = start;
    while (pos < len) {
      const nl = s.indexOf('\n', pos);
      if (nl === -1) break;
      let end = nl;
      if (end > pos && s.charCodeAt(end - 1) === 13) end--;
      const next = nl + 1;
      if (this.#mode !== NORMAL) {
        this.#specialLine(s, pos, end, next - pos);
        pos = this.#skipping ? this.#skipLines(s, next) : next;
        if (pos === -1) return;
        continue;
      }
      if (end === pos) {
        // Blank line: end of message.
        if (this.#depth > 0) this.#finish();
        pos = next;
        continue;
      }
      const colon = s.indexOf(':', pos);
      if (colon === -1 || colon >= end) {
        // A line without a colon: the banner, or noise to skip.
        if (this.#firstLine && this.#depth === 0) {
          this.banner = s.slice(pos, end);
          this.#onBanner?.(this.banner);
        }
        this.#firstLine = false;
        pos = next;
        continue;
      }
      this.#firstLine = false;
      if (
        want !== undefined &&
        this.#depth === 0 &&
        colon - pos === 5 &&
        s.startsWith('Event', pos)
      ) {
        this.#asked = true;
        const valueAt = colon + 1 < end && s.charCodeAt(colon + 1) === 32 ? colon + 2 : colon + 1;
        if (!want(s.slice(valueAt, end))) {
          const after = this.#unwantedEnd(s, pos, nl);
          if (after !== -1) {
            this.#asked = false;
            pos = after;
            continue;
          }
          this.#unwanted = true;
        }
      }
      this.#messageChars += next - pos;
      if (this.#messageChars > this.#maxBytes || this.#depth >= this.#maxHeaders) {
        this.#discard(this.#depth >= this.#maxHeaders ? 'TOO_MANY_HEADERS' : 'MESSAGE_TOO_LARGE');
        pos = this.#skipLines(s, next);
        if (pos === -1) return;
        continue;
      }
      const valueStart = colon + 1 < end && s.charCodeAt(colon + 1) === 32 ? colon + 2 : colon + 1;
      const value = s.slice(valueStart, end);
      const keyLength = colon - pos;
      const sliced = s.slice(pos, colon);
      let key: string | undefined;
      if (!this.#generic) {
        const node = this.#node;
        const last = node.last;
        let child = last !== undefined && last.key === sliced ? last : node.children.get(sliced);
        if (child === undefined) {
          if (this.#nodeCount < MAX_SHAPE_NODES && keyLength <= MAX_SHAPE_KEY_CHARS) {
            // A flat, internalized copy: a slice would keep the whole chunk alive.
            const copy = Object.keys({ [sliced]: 0 })[0] as string;
            this.#nodeCount++;
            const dup =
              node.dup || (this.#depth > 0 && keys.lastIndexOf(copy, this.#depth - 1) !== -1);
            child = {
              key: copy,
              children: new Map(),
              last: undefined,
              dup,
              hits: 0,
              build: undefined,
            };
            node.children.set(copy, child);
          } else {
            this.#generic = true;
          }
        }
        if (child !== undefined) {
          node.last = child;
          this.#node = child;
          key = child.key;
        } else {
          key = sliced;
        }
      } else {
        key = sliced;
      }
      keys[this.#depth] = key;
      values[this.#depth] = value;
      this.#depth++;
      if (keyLength === 8 && value === 'Follows' && key === 'Response') {
        this.#mode = FOLLOWS_HEADERS;
        this.#generic = true;
      }
      pos = next;
    }
    if (pos < len) {
      this.#partial = pos === 0 ? s : s.slice(pos);
      if (this.#messageChars + this.#partial.length > this.#maxBytes) {
        this.#discard('MESSAGE_TOO_LARGE', true);
      }
    }
  }

  /**
   * An unwanted event whose `Event:` line runs from `from` to `nl`: the position after the blank line
   * that ends it, when that is in `s` and nothing in between can make the full parse differ
   * from dropping it (a bound broken, a `Response: Follows`); otherwise -1 (it is parsed
   * like any message, then dropped).
   */
  #unwantedEnd(s: string, from: number, nl: number): number {
    const len = s.length;
    let crlf = this.#nextCrlfBlank;
    if (crlf < nl) {
      crlf = s.indexOf('\n\r\n', nl);
      this.#nextCrlfBlank = crlf = crlf === -1 ? len : crlf;
    }
    let lf = this.#nextLfBlank;
    if (lf < nl) {
      lf = s.indexOf('\n\n', nl);
      this.#nextLfBlank = lf = lf === -1 ? len : lf;
    }
    const after = crlf < lf ? crlf + 3 : lf < len ? lf + 2 : -1;
    if (after === -1) return -1;
    let follows = this.#nextFollows;
    if (follows < nl) {
      follows = s.indexOf('Follows', nl);
      this.#nextFollows = follows = follows === -1 ? len : follows;
    }
    if (follows < after) return -1;
    // Every counted line has 2 characters or more, and a field's size is at most 3 times
    // its line's characters: a short enough message cannot break a bound.
    const chars = after - from;
    if (chars * 3 > this.#maxBytes || chars >= 2 * this.#maxHeaders) return -1;
    return after;
  }

  /**
   * While skipping a discarded message: drops lines up to and including the blank line that
   * ends it. Returns the position after that blank line (skipping is over), or -1 when `s`
   * ended first (skipping goes on with the next chunk).
   */
  #skipLines(s: string, from: number): number {
    let pos = from;
    while (true) {
      const nl = s.indexOf('\n', pos);
      if (nl === -1) {
        const rest = s.length - pos;
        if (rest === 1 && s.charCodeAt(pos) === 13 && !this.#skipDirty && !this.#skipCR) {
          this.#skipCR = true;
        } else if (rest > 0) {
          this.#skipDirty = true;
          this.#skipCR = false;
        }
        return -1;
      }
      const blank =
        !this.#skipDirty &&
        (this.#skipCR ? nl === pos : nl === pos || (nl === pos + 1 && s.charCodeAt(pos) === 13));
      this.#skipDirty = false;
      this.#skipCR = false;
      pos = nl + 1;
      if (blank) {
        this.#skipping = false;
        return pos;
      }
    }
  }

  /**
   * Signals the end of the stream: returns the text of an incomplete trailing message, if any
   * (it is not delivered; empty string when the stream ended cleanly), and resets the parser.
   */
  end(): string {
    const rest = this.#partial + this.#decoder.end();
    let incomplete = '';
    for (let i = 0; i < this.#depth; i++) incomplete += `${this.#keys[i]}: ${this.#values[i]}\n`;
    incomplete += rest;
    this.#reset();
    this.#skipping = false;
    this.#skipDirty = false;
    this.#skipCR = false;
    return incomplete;
  }

  #reset(): void {
    this.#partial = '';
    this.#messageChars = 0;
    this.#depth = 0;
    this.#node = this.#root;
    this.#generic = false;
    this.#mode = NORMAL;
    this.#output = [];
    this.#unwanted = false;
    this.#asked = false;
  }

  /**
   * Drops the current message and reports why. `skip`: the message has not ended yet, so the
   * lines up to its blank line are dropped too (`midLine`: inside an unterminated line).
   */
  #discard(code: 'MESSAGE_TOO_LARGE' | 'TOO_MANY_HEADERS', midLine = false, skip = true): void {
    this.#reset();
    if (skip) {
      this.#skipping = true;
      this.#skipDirty = midLine;
      this.#skipCR = false;
    }
    const error = new AmiProtocolError(
      code,
      code === 'MESSAGE_TOO_LARGE'
        ? `AMI message larger than maxMessageBytes (${this.#maxBytes} bytes) discarded`
        : `AMI message with more than maxHeaders (${this.#maxHeaders}) lines discarded`,
    );
    if (this.#onError === undefined) throw error;
    this.#onError(error);
  }

  /** Builds the current message, resets the per-message state and delivers it. */
  #finish(output?: string[]): void {
    const depth = this.#depth;
    const keys = this.#keys;
    const values = this.#values;
    // The character count is a lower bound of the byte count; count bytes only when close.
    if (this.#messageChars * 3 > this.#maxBytes) {
      let bytes = 0;
      for (let i = 0; i < depth; i++) {
        bytes += Buffer.byteLength(keys[i] as string) + Buffer.byteLength(values[i] as string) + 4;
      }
      if (output !== undefined) for (const line of output) bytes += Buffer.byteLength(line) + 2;
      if (bytes > this.#maxBytes) {
        // Complete already: nothing left to skip.
        this.#discard('MESSAGE_TOO_LARGE', false, false);
        return;
      }
    }
    const unwanted = this.#unwanted;
    const asked = this.#asked;
    this.#unwanted = false;
    this.#asked = false;
    let message: AmiMessage | undefined;
    const node = this.#node;
    if (!this.#generic && !node.dup) {
      const build = node.build;
      if (build !== undefined) {
        message = new build(values);
      } else if (++node.hits === COMPILE_AFTER) {
        node.build = compileBuilder(keys.slice(0, depth));
      }
    }
    if (message === undefined) {
      message = emptyMessage();
      for (let i = 0; i < depth; i++) setField(message, keys[i] as string, values[i] as string);
    }
    if (output !== undefined) {
      if (output.length === 1) message.Output = output[0] as string;
      else if (output.length > 1) message.Output = output;
    }
    this.#depth = 0;
    this.#node = this.#root;
    this.#generic = false;
    this.#mode = NORMAL;
    this.#messageChars = 0;
    if (unwanted) return;
    const want = this.#wantEvent;
    if (want !== undefined && !asked) {
      const event = message.Event;
      if (event !== undefined && !want(typeof event === 'string' ? event : (event[0] as string))) {
        return;
      }
    }
    this.#onMessage(message);
  }

  /** A line while in one of the `Response: Follows` modes. */
  #specialLine(s: string, pos: number, end: number, lineChars: number): void {
    if (this.#mode === FOLLOWS_HEADERS && end === pos) {
      this.#finish();
      return;
    }
    this.#messageChars += lineChars;
    if (this.#messageChars > this.#maxBytes) {
      this.#discard('MESSAGE_TOO_LARGE');
      return;
    }
    if (this.#mode === FOLLOWS_HEADERS) {
      const colon = s.indexOf(':', pos);
      if (colon !== -1 && colon < end) {
        const key = s.slice(pos, colon);
        if (key === 'ActionID' || key === 'Privilege' || key === 'Message' || key === 'Output') {
          if (this.#depth >= this.#maxHeaders) {
            this.#discard('TOO_MANY_HEADERS');
            return;
          }
          const valueStart =
            colon + 1 < end && s.charCodeAt(colon + 1) === 32 ? colon + 2 : colon + 1;
          this.#keys[this.#depth] = key;
          this.#values[this.#depth] = s.slice(valueStart, end);
          this.#depth++;
          return;
        }
      }
      this.#mode = FOLLOWS_RAW;
    }
    // Raw command output (Asterisk <= 13), ended by `--END COMMAND--` (possibly glued to the
    // last output line when the output did not end with a newline).
    const line = s.slice(pos, end);
    if (line.endsWith(END_COMMAND)) {
      const last = line.slice(0, line.length - END_COMMAND.length);
      if (last.length > 0) this.#output.push(last);
      const output = this.#output;
      this.#output = [];
      this.#finish(output);
      return;
    }
    if (this.#depth + this.#output.length >= this.#maxHeaders) {
      this.#discard('TOO_MANY_HEADERS');
      return;
    }
    this.#output.push(line);
  }
}

/** A value in an action: arrays become a repeated key (e.g. Originate `Variable`). */
export type AmiActionValue = string | number | boolean | readonly string[] | undefined;

/**
 * An AMI action to send: `Action` names it (e.g. `Originate`, `CoreShowChannels`), other keys
 * are its parameters. `undefined` values are left out. `ActionID` is normally set by the
 * client.
 */
export interface AmiAction {
  Action: string;
  [key: string]: AmiActionValue;
}

function checkKey(key: string): void {
  if (
    key.length === 0 ||
    key.includes('\r') ||
    key.includes('\n') ||
    key.includes(':') ||
    key.trim() !== key
  ) {
    throw new AmiProtocolError('INVALID_FIELD', `invalid AMI key ${JSON.stringify(key)}`);
  }
}

function checkValue(key: string, value: string): void {
  if (value.includes('\r') || value.includes('\n')) {
    // The value itself is not quoted in the error: it may be a secret.
    throw new AmiProtocolError('INVALID_FIELD', `AMI value of ${key} contains CR or LF`);
  }
}

function appendField(out: string, key: string, value: AmiActionValue): string {
  if (value === undefined) return out;
  if (typeof value === 'string') {
    checkValue(key, value);
    return `${out}${key}: ${value}\r\n`;
  }
  if (typeof value === 'number' || typeof value === 'boolean') {
    return `${out}${key}: ${String(value)}\r\n`;
  }
  let result = out;
  for (const item of value) {
    checkValue(key, item);
    result = `${result}${key}: ${item}\r\n`;
  }
  return result;
}

/**
 * Serializes an action to its wire form: `Action: X\r\n`, then `ActionID` if present, then the
 * other keys in insertion order, then a blank line. Array values become repeated keys.
 *
 * @throws {AmiProtocolError} `INVALID_FIELD` when a key is empty or contains `:`, CR or LF, or
 *   a value contains CR or LF (AMI header injection); nothing is returned to send.
 */
export function serializeAction(action: AmiAction): string {
  let out = appendField('', 'Action', action.Action);
  if (action.ActionID !== undefined) out = appendField(out, 'ActionID', action.ActionID);
  for (const key in action) {
    if (key === 'Action' || key === 'ActionID') continue;
    checkKey(key);
    out = appendField(out, key, action[key]);
  }
  return `${out}\r\n`;
}

/**
 * Serializes any message (event, response) with its keys in insertion order and a closing
 * blank line. Used by the fake server; same validation as {@link serializeAction}.
 *
 * @throws {AmiProtocolError} `INVALID_FIELD` on CR/LF in a key or value.
 */
export function serializeMessage(message: Readonly<Record<string, AmiActionValue>>): string {
  let out = '';
  for (const key in message) {
    checkKey(key);
    out = appendField(out, key, message[key]);
  }
  return `${out}\r\n`;
}
