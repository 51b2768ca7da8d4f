/**
 * Strict request-body parsers for every API: JSON (`application/json`), form-encoded
 * (`application/x-www-form-urlencoded`) and text (`text/plain`). Each refuses with 400 naming
 * the field, instead of guessing:
 *
 * - bytes that are not valid UTF-8 (no silent U+FFFD replacement);
 * - JSON nested deeper than `jsonMaxDepth` (a 20,000-deep body would overflow the stack
 *   of whatever walks it later), an empty JSON body, `__proto__` / `constructor.prototype`
 *   keys (secure-json-parse through Fastify's default parser);
 * - form fields whose bytes, once percent-decoded, are not UTF-8 (`%FF`, or raw bytes).
 *
 * Form fields decode into an object without prototype; a repeated name becomes an array (in
 * order), as the Barista seed's repeated `addressee` needs. Every route still checks types.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { fieldError } from './errors.ts';

/** Options of {@link registerBodyParsers}. */
export interface BodyParserOptions {
  /** Largest body, bytes (Fastify's `bodyLimit`). */
  bodyLimit: number;
  /** Deepest nesting of arrays and objects in JSON (1 = `{"a": 1}`). */
  jsonMaxDepth: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * Decodes UTF-8 strictly.
 * @throws {HttpError} 400 naming `field` when the bytes are not UTF-8.
 */
export function decodeUtf8(bytes: Uint8Array, field = 'body'): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw fieldError(field, 'is not valid UTF-8');
  }
}

/**
 * The deepest nesting of `[` / `{` in a JSON text (strings skipped), stopping early once
 * past `limit`. Linear, no recursion.
 */
export function jsonDepth(text: string, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i += 1; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      depth += 1;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 0x7d || c === 0x5d) depth -= 1;
  }
  return deepest;
}

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x37;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x57;
  return -1;
}

/**
 * Percent-decodes `bytes[start, end)` as the WHATWG urlencoded parser does: `+` is a space,
 * `%XX` a byte, a `%` not followed by two hex digits stays as it is (`95%`, as `curl -d`
 * sends it).
 */
function percentDecode(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start);
  let n = 0;
  for (let i = start; i < end; i += 1) {
    const byte = bytes[i] as number;
    if (byte === 0x2b) out[n++] = 0x20;
    else if (byte === 0x25 && i + 2 < end) {
      const high = hexValue(bytes[i + 1] as number);
      const low = hexValue(bytes[i + 2] as number);
      if (high < 0 || low < 0) out[n++] = byte;
      else {
        out[n++] = high * 16 + low;
        i += 2;
      }
    } else out[n++] = byte;
  }
  return out.subarray(0, n);
}

/** One name or value of a form: `+` is a space, percent-escapes must decode to UTF-8. */
function formComponent(text: string, field: string): string {
  if (!text.includes('%')) return text.includes('+') ? text.replaceAll('+', ' ') : text;
  const bytes = Buffer.from(text, 'utf8');
  return decodeUtf8(percentDecode(bytes, 0, bytes.length), field);
}

/**
 * Parses a form-encoded body (`a=1&b=x+y&a=2`) strictly: the body and every name and value,
 * once percent-decoded, must be UTF-8 (raw UTF-8, as `curl -d` sends it, is fine).
 * @returns an object without prototype; repeated names give arrays, in order.
 * @throws {HttpError} 400 naming the field whose name or value is not UTF-8.
 */
export function parseForm(body: Uint8Array): Record<string, string | string[]> {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw fieldError(`body.${invalidRawField(body)}`, 'is not valid UTF-8');
  }
  const fields = Object.create(null) as Record<string, string | string[]>;
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = formComponent(eq < 0 ? pair : pair.slice(0, eq), 'body');
    const value = formComponent(eq < 0 ? '' : pair.slice(eq + 1), `body.${name.slice(0, 64)}`);
    const previous = fields[name];
    if (previous === undefined) fields[name] = value;
    else if (Array.isArray(previous)) previous.push(value);
    else fields[name] = [previous, value];
  }
  return fields;
}

/** The name of the first form field whose raw bytes are not UTF-8 (for the error). */
function invalidRawField(body: Uint8Array): string {
  let start = 0;
  while (start < body.length) {
    let end = body.indexOf(0x26, start);
    if (end < 0) end = body.length;
    const pair = body.subarray(start, end);
    const at = pair.indexOf(0x3d);
    const rawName = at < 0 ? pair : pair.subarray(0, at);
    try {
      utf8.decode(pair);
    } catch {
      try {
        return formComponent(utf8.decode(rawName), 'body').slice(0, 64);
      } catch {
        return '(name)';
      }
    }
    start = end + 1;
  }
  return '(unknown)';
}

/**
 * Replaces Fastify's JSON and text parsers and adds the form parser on `app` (the root
 * instance: every plugin inherits them).
 */
export function registerBodyParsers(app: FastifyInstance, options: BodyParserOptions): void {
  const json = app.getDefaultJsonParser('error', 'error');
  const { bodyLimit, jsonMaxDepth } = options;
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer', bodyLimit },
    (request: FastifyRequest, body: Buffer, done) => {
      let text: string;
      try {
        text = decodeUtf8(body);
        if (text.trim() === '') throw fieldError('body', 'is empty (content-type is JSON)');
        if (jsonDepth(text, jsonMaxDepth) > jsonMaxDepth) {
          throw fieldError('body', `is nested deeper than ${jsonMaxDepth} levels`);
        }
      } catch (error) {
        done(error as Error, undefined);
        return;
      }
      json(request, text, done);
    },
  );
  app.addContentTypeParser(
    'text/plain',
    { parseAs: 'buffer', bodyLimit },
    (_request: FastifyRequest, body: Buffer, done) => {
      try {
        done(null, decodeUtf8(body));
      } catch (error) {
        done(error as Error, undefined);
      }
    },
  );
  if (!app.hasContentTypeParser('application/x-www-form-urlencoded')) {
    app.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'buffer', bodyLimit },
      (_request: FastifyRequest, body: Buffer, done) => {
        try {
          done(null, parseForm(body));
        } catch (error) {
          done(error as Error, undefined);
        }
      },
    );
  }
}
