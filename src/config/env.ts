/**
 * The `SWITCHBOARD_*` environment variables: their names (one per leaf key of
 * {@link ConfigSchema}) and how a variable's string becomes the key's value (TypeBox
 * `Value.Convert` for scalars; lists, maps and shorthands read here).
 *
 * @module
 */
import Type, { type TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { parseDocument } from 'yaml';
import { ConfigSchema } from './schema.ts';

type Json = Record<string, unknown>;
type Schema = TSchema & Json;

export const ENV_PREFIX = 'SWITCHBOARD_';

/** Environment variables with the prefix that are not settings. */
export const ENV_RESERVED = new Set(['SWITCHBOARD_CONFIG']);

export function screaming(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** A leaf setting reachable from the environment. */
export interface EnvSetting {
  /** Environment variable, e.g. `SWITCHBOARD_PUSH_APNS_KEY_ID`. */
  name: string;
  /** Path in the configuration, e.g. `['push', 'apns', 'keyId']`. */
  path: string[];
  /** Schema of the value (used to convert the string). */
  schema: Schema;
}

function collectEnv(schema: Schema, path: string[], out: EnvSetting[]): void {
  const properties = schema.properties as Record<string, Schema> | undefined;
  if (schema.type === 'object' && properties) {
    for (const [key, child] of Object.entries(properties)) collectEnv(child, [...path, key], out);
    return;
  }
  out.push({ name: ENV_PREFIX + path.map(screaming).join('_'), path, schema });
}

/**
 * Every environment variable that sets a key: `SWITCHBOARD_` + the path's names in
 * SCREAMING_SNAKE_CASE joined by `_` (camelCase split: `pingIntervalMs` → `PING_INTERVAL_MS`).
 * Objects are walked; lists and maps are one variable.
 */
export function configEnvSettings(): EnvSetting[] {
  const out: EnvSetting[] = [];
  collectEnv(ConfigSchema as unknown as Schema, [], out);
  return out;
}

/**
 * How a plain (non-JSON) list item from the environment becomes an object, per list key.
 * Items are separated by commas or whitespace.
 */
const LIST_SHORTHANDS: Record<string, (item: string) => Json> = {
  'ami.servers': (url) => ({ url }),
  'webhooks.endpoints': (url) => ({ url }),
  'auth.tokens': (token) => ({ token }),
  'auth.users': (pair) => splitUserPassword(pair),
  'push.users': (pair) => splitUserPassword(pair),
  'push.apps': (id) => ({ id }),
};

function splitUserPassword(pair: string): Json {
  const colon = pair.indexOf(':');
  return colon < 0
    ? { username: pair }
    : { username: pair.slice(0, colon), password: pair.slice(colon + 1) };
}

/** Boolean words accepted besides TypeBox's own (`true`/`false`/`1`/`0`, any case). */
const BOOLEAN_WORDS: Record<string, 'true' | 'false'> = {
  yes: 'true',
  on: 'true',
  no: 'false',
  off: 'false',
};

const TRUE = new Set(['true', '1', 'yes', 'on']);

const FALSE = new Set(['false', '0', 'no', 'off']);

/** Numbers as written in the environment; anything else is left as text for validation. */
const NUMBER = /^-?\d+(\.\d+)?$/;

const INTEGER = /^-?\d+$/;

/**
 * One scalar from the environment, converted by TypeBox's `Value.Convert` (issue 13). Only
 * unambiguous text reaches it: `Value.Convert` would also read `''`, `0x10`, `1e3` or `true`
 * as numbers, truncate `1.5` for an integer key, and knows no `yes`/`on`/`no`/`off`; such
 * text stays a string, which validation then reports (`expected an integer`).
 */
function convertScalar(schema: Schema, text: string): unknown {
  if (schema.type === 'integer' || schema.type === 'number') {
    return NUMBER.test(text) ? Value.Convert(Type.Number(), text) : text;
  }
  if (schema.type === 'boolean') {
    return Value.Convert(schema, BOOLEAN_WORDS[text.toLowerCase()] ?? text);
  }
  return text;
}

/**
 * Converts one environment string to the value its schema expects (invalid: left as is).
 * Scalars go through {@link convertScalar}. What `Value.Convert` cannot express stays here:
 * a list is a comma- or space-separated string (Convert would wrap the whole string as one
 * item), or a JSON/YAML flow list; some lists take a shorthand per item
 * ({@link LIST_SHORTHANDS}); a map is YAML flow text; `http.trustProxy` (false | list) is a
 * boolean word, else the list.
 */
export function fromEnv(setting: EnvSetting, raw: string): unknown {
  const { schema } = setting;
  const text = raw.trim();
  if (schema.type === 'integer' || schema.type === 'number' || schema.type === 'boolean') {
    const value = convertScalar(schema, text);
    return typeof value === 'string' ? raw : value;
  }
  if (schema.type === 'array') {
    if (text.startsWith('[')) return parseYamlValue(text);
    const items = text.split(/[\s,]+/).filter((s) => s !== '');
    const shorthand = LIST_SHORTHANDS[setting.path.join('.')];
    if (shorthand) return items.map(shorthand);
    const itemSchema = schema.items as Schema | undefined;
    return itemSchema?.type === 'integer' || itemSchema?.type === 'number'
      ? items.map((s) => (INTEGER.test(s) ? convertScalar(itemSchema, s) : s))
      : items;
  }
  if (schema.type === 'object') return parseYamlValue(text);
  const variants = (schema.anyOf as Schema[] | undefined) ?? [];
  if (variants.some((v) => v.type === 'boolean') && variants.some((v) => v.type === 'array')) {
    const lower = text.toLowerCase();
    if (TRUE.has(lower)) return true;
    if (FALSE.has(lower) || text === '') return false;
    const list = variants.find((v) => v.type === 'array') as Schema;
    return fromEnv({ ...setting, schema: list }, raw);
  }
  return raw;
}

function parseYamlValue(text: string): unknown {
  const doc = parseDocument(text);
  return doc.errors.length > 0 ? text : doc.toJS();
}
