/**
 * The building blocks of config sections: custom string formats (`switchboard-*`, registered
 * in TypeBox's format registry when this module is imported) and small schema helpers. Each
 * module defines its own section with these (`src/callout/config.ts`, ...);
 * `src/config/schema.ts` composes them into the whole file's schema.
 *
 * @module
 */
import Type, { type TSchema } from 'typebox';
import Format from 'typebox/format';
import { isCidr } from '../util/cidr.ts';

// ---------------------------------------------------------------------------------------------
// Formats
// ---------------------------------------------------------------------------------------------

function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

function hasProtocol(value: string, protocols: string[]): boolean {
  const url = parseUrl(value);
  return url !== undefined && protocols.includes(url.protocol) && url.hostname !== '';
}

/** `HOST:PORT` with an IPv4 address, a host name or a bracketed IPv6 address, port 0–65535. */
function isListen(value: string): boolean {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  if (!match) return false;
  return Number(match[2]) <= 65535;
}

/**
 * Names and checks of the custom string formats used by the schema, and the message reported
 * (after the key) when a value does not match. Registered in TypeBox's global format registry
 * on import.
 */
export const FORMAT_MESSAGES: Record<string, string> = {
  'switchboard-listen': 'expected HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)',
  'switchboard-ami-url': 'expected an AMI URL (tcp://user:secret@host:5038 or tls://...)',
  'switchboard-amqp-url': 'expected a URL (amqp:// or amqps://)',
  'switchboard-http-url': 'expected a URL (http:// or https://)',
  'switchboard-redis-url': 'expected a URL (redis:// or rediss://)',
  'switchboard-database-url': 'expected a file path, sqlite:PATH, :memory: or postgres://',
  'switchboard-cidr': 'expected an IP address or CIDR network (e.g. 10.0.0.0/8, ::1/128)',
  'switchboard-uuid': 'expected a UUID (8-4-4-4-12 hexadecimal digits)',
};

const FORMAT_CHECKS: Record<string, (value: string) => boolean> = {
  'switchboard-listen': isListen,
  'switchboard-ami-url': (v) => hasProtocol(v, ['tcp:', 'tls:']),
  'switchboard-amqp-url': (v) => hasProtocol(v, ['amqp:', 'amqps:']),
  'switchboard-http-url': (v) => hasProtocol(v, ['http:', 'https:']),
  'switchboard-redis-url': (v) => hasProtocol(v, ['redis:', 'rediss:']),
  'switchboard-database-url': (v) =>
    v.startsWith('postgres://') || v.startsWith('postgresql://')
      ? hasProtocol(v, ['postgres:', 'postgresql:'])
      : v.length > 0 && !/^[a-z][a-z0-9+.-]*:\/\//i.test(v),
  'switchboard-cidr': isCidr,
  'switchboard-uuid': (v) =>
    /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v),
};
for (const [name, check] of Object.entries(FORMAT_CHECKS)) {
  Format.Set(name, check);
  Format.Set(`${name}-or-empty`, (v) => v === '' || check(v));
}

/**
 * A string in one of the formats above; `optional` also accepts the empty string ("not set").
 * `defaultValue` undefined makes the key required.
 */
export function formatted(
  format: string,
  defaultValue: string | undefined,
  description: string,
  optional = false,
) {
  return Type.String({
    format: optional ? `${format}-or-empty` : format,
    description,
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
  });
}

/** A string from `values`, defaulting to `defaultValue`. */
export function oneOf(values: string[], defaultValue: string, description: string) {
  return Type.Enum(values, { default: defaultValue, description });
}

/** An integer key: default, inclusive bounds, description. */
export function int(defaultValue: number, minimum: number, maximum: number, description: string) {
  return Type.Integer({ default: defaultValue, minimum, maximum, description });
}

/** A string key with a default; `extra` adds keywords (pattern, minLength, ...). */
export function str(defaultValue: string, description: string, extra: object = {}) {
  return Type.String({ default: defaultValue, description, ...extra });
}

/** A boolean key with a default. */
export function bool(defaultValue: boolean, description: string) {
  return Type.Boolean({ default: defaultValue, description });
}

/** An object section: closed (unknown keys are errors), defaulting to `{}` filled by defaults. */
export function section<P extends Record<string, TSchema>>(properties: P, description: string) {
  return Type.Object(properties, { additionalProperties: false, default: {}, description });
}

/**
 * `additionalProperties` of a closed map (`Type.Record`): no key besides the pattern's. Not
 * `false`, which TypeBox's `Value.Default` cannot walk in a record (1.4: it throws); the
 * loader reports the resulting `not` error as an unknown key, as for objects.
 */
export const CLOSED = Type.Never();

/** A closed object without a default (a list item, or a required entry). */
export function item<P extends Record<string, TSchema>>(properties: P, description: string) {
  return Type.Object(properties, { additionalProperties: false, description });
}
