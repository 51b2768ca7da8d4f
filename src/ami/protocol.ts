/**
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
import type { AmiMessage } from './message.ts';

/** Default {@link AmiParserOptions.maxMessageBytes}: 1 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

/** What went wrong in an {@link AmiProtocolError}. */
export type AmiProtocolErrorCode =
  /** A message grew beyond `maxMessageBytes` before its terminating blank line. */
  | 'MESSAGE_TOO_LARGE'
  /** An action or message to serialize has a key or value with CR/LF, or a malformed key. */
  | 'INVALID_FIELD';

/**
 * A violation of the AMI framing, raised by {@link AmiParser.push} (oversized message) and by
 * {@link serializeAction} / {@link serializeMessage} (header injection: CR or LF in a key or
 * value). Messages never include field values, so no secret can leak through them.
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
   * Largest accepted message in bytes (UTF-8, line endings included); a bigger one makes
   * {@link AmiParser.push} throw {@link AmiProtocolError} `MESSAGE_TOO_LARGE` instead of
   * buffering it. Default {@link DEFAULT_MAX_MESSAGE_BYTES}.
   */
  maxMessageBytes?: number;
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
  /** Builds the message from the values array: an object literal with this path's keys. */
  build: ((values: string[]) => AmiMessage) | undefined;
}

/** A shape gets its compiled builder after this many messages. */
const COMPILE_AFTER = 3;

/**
 * Compiles `values => ({"Key1": values[0], "Key2": values[1], ...})` for one key sequence.
 * Object literals get one hidden class per shape and internalized keys, about ten times
 * faster than adding properties one by one. Keys are embedded as JSON string literals (no
 * code injection possible) and `__proto__` as a computed key so that it stays an own data
 * property. Returns undefined where code generation is disabled.
 */
function compileBuilder(keys: readonly string[]): ((values: string[]) => AmiMessage) | undefined {
  const props = keys.map((key, i) => {
    const literal = JSON.stringify(key);
    return key === '__proto__' ? `[${literal}]: v[${i}]` : `${literal}: v[${i}]`;
  });
  try {
    return new Function('v', `return {${props.join(', ')}};`) as (values: string[]) => AmiMessage;
  } catch {
    return undefined;
  }
}

/** Bound on the shape trie (nodes); beyond it messages are built generically. */
const MAX_SHAPE_NODES = 20_000;

function setField(message: AmiMessage, key: string, value: string): void {
  if (key === '__proto__') {
    // Never a prototype change: define (or extend) an own data property.
    const own = Object.getOwnPropertyDescriptor(message, key)?.value as
      | string
      | string[]
      | undefined;
    const merged =
      own === undefined ? value : typeof own === 'string' ? [own, value] : [...own, value];
    Object.defineProperty(message, key, {
      value: merged,
      enumerable: true,
      writable: true,
      configurable: true,
    });
    return;
  }
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
 * - `Response: Follows` with raw output (Asterisk <= 13) yields the output lines under the key
 *   `Output`, the same key Asterisk 14+ uses (a string for one line, an array for several);
 *   use `fields(message, 'Output')` to read both styles alike.
 * - The value is everything after `Key:` minus one leading space (no other trimming). Lines
 *   without a colon are ignored, except the banner (first line of the stream) and command
 *   output.
 *
 * Speed: lines are found with `indexOf` (no regular expressions, no per-byte loops) and keys
 * are matched against a trie of the key sequences already seen, so a message is built by
 * cloning a template object and storing its values, without creating key strings.
 */
export class AmiParser {
  /** The banner line, once received. */
  banner: string | undefined;
  readonly #onMessage: (message: AmiMessage) => void;
  readonly #onBanner: ((banner: string) => void) | undefined;
  readonly #maxBytes: number;
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
  /** The current message left the trie (too many shapes, or command output). */
  #generic = false;
  #firstLine = true;
  #mode = NORMAL;
  #output: string[] = [];

  constructor(options: AmiParserOptions) {
    this.#onMessage = options.onMessage;
    this.#onBanner = options.onBanner;
    this.#maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  /**
   * Parses one chunk of the stream. Messages completed by this chunk are delivered
   * synchronously, before `push` returns.
   *
   * @throws {AmiProtocolError} `MESSAGE_TOO_LARGE` when a message exceeds `maxMessageBytes`;
   *   the parser then discards its buffered state (the connection should be dropped).
   */
  push(chunk: Buffer | string): void {
    const s = typeof chunk === 'string' ? chunk : this.#decoder.write(chunk);
    let start = 0;
    if (this.#partial.length > 0) {
      // Complete the carried line on its own, so that `s` stays a flat string.
      const nl = s.indexOf('\n');
      if (nl === -1) {
        this.#partial += s;
        if (this.#messageChars + this.#partial.length > this.#maxBytes) this.#tooLarge();
        return;
      }
      const head = this.#partial + s.slice(0, nl + 1);
      this.#partial = '';
      this.#scan(head, 0);
      start = nl + 1;
    }
    this.#scan(s, start);
  }

  /** Parses the complete lines of `s` from `pos`; keeps the unterminated rest in #partial. */
  #scan(s: string, start: number): void {
    const len = s.length;
    const keys = this.#keys;
    const values = this.#values;
    let pos = start;
    while (pos < len) {
      const nl = s.indexOf('\n', pos);
      if (nl === -1) break;
      let end = nl;
      if (end > pos && s.charCodeAt(end - 1) === 13) end--;
      const next = nl + 1;
      if (this.#mode !== NORMAL) {
        this.#specialLine(s, pos, end, next - pos);
        pos = next;
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
      this.#messageChars += next - pos;
      if (this.#messageChars > this.#maxBytes) this.#tooLarge();
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
          if (this.#nodeCount < MAX_SHAPE_NODES) {
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
      if (this.#messageChars + this.#partial.length > this.#maxBytes) this.#tooLarge();
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
  }

  #tooLarge(): never {
    this.#reset();
    throw new AmiProtocolError(
      'MESSAGE_TOO_LARGE',
      `AMI message larger than maxMessageBytes (${this.#maxBytes} bytes)`,
    );
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
      if (bytes > this.#maxBytes) this.#tooLarge();
    }
    let message: AmiMessage | undefined;
    const node = this.#node;
    if (!this.#generic && !node.dup) {
      const build = node.build;
      if (build !== undefined) {
        message = build(values);
      } else if (++node.hits === COMPILE_AFTER) {
        node.build = compileBuilder(keys.slice(0, depth));
      }
    }
    if (message === undefined) {
      message = {};
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
    this.#onMessage(message);
  }

  /** A line while in one of the `Response: Follows` modes. */
  #specialLine(s: string, pos: number, end: number, lineChars: number): void {
    this.#messageChars += lineChars;
    if (this.#messageChars > this.#maxBytes) this.#tooLarge();
    if (this.#mode === FOLLOWS_HEADERS) {
      if (end === pos) {
        this.#finish();
        return;
      }
      const colon = s.indexOf(':', pos);
      if (colon !== -1 && colon < end) {
        const key = s.slice(pos, colon);
        if (key === 'ActionID' || key === 'Privilege' || key === 'Message' || key === 'Output') {
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
