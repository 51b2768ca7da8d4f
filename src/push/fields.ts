/**
 * The fields of the push middleware API: the original's serializers (VoIPGRID
 * vialer-middleware `api/serializers.py`) as TypeBox schemas, one variant for form-encoded
 * and multipart bodies (text) and one for JSON (numbers and booleans read as their text),
 * the readers of the checked values, and the route schema of `./routes.ts` (OpenAPI).
 * Checked after the route's network or credential check, as the original.
 */
import type { FastifyRequest } from 'fastify';
import Type, { type TSchema } from 'typebox';
import { HttpError } from '../http/errors.ts';
import { errorResponses } from '../http/schemas.ts';

// ---------------------------------------------------------------------------------------------
// Fields: the original's serializers as schemas (checked after the route's network or
// credential check, as the original), and the readers of the checked values
// ---------------------------------------------------------------------------------------------

/** A request's fields by name, as parsed. */
export type Fields = Record<string, unknown>;

/** The push API's 400 (`bad request`: never which field or rule). */
export function bad(): HttpError {
  return new HttpError(400, 'bad request');
}

/** A character of text: no control character (C0, DEL). */
const TEXT_CHAR = '[^\\u0000-\\u001f\\u007f]';
/** A character of a key or token: no control character, no whitespace. */
const KEY_CHAR = '[^\\s\\u0000-\\u001f\\u007f]';

/**
 * A text field as the original's `CharField` reads it: trimmed (the pattern allows the
 * whitespace around `inner`), empty as absent; in JSON also a number or boolean (as its
 * text) or null (absent); never an array or object.
 */
function charField(inner: string, description: string): Variants {
  const text = Type.String({ pattern: `^\\s*${inner}\\s*$` });
  return {
    form: Type.Union([text], { description }),
    json: Type.Union([text, Type.Number(), Type.Boolean(), Type.Null()], { description }),
  };
}

/** The original's BooleanField: `True`, `false`, `1`, `on`, ... (default when absent). */
function booleanField(description: string): Variants {
  const text = Type.String({
    pattern:
      '^(?:\\s*(?:[tT](?:[rR][uU][eE])?|[yY](?:[eE][sS])?|[oO][nN]|1|[fF](?:[aA][lL][sS][eE])?|[nN][oO]?|[oO][fF][fF]|0)\\s*)?$',
  });
  return {
    form: Type.Union([text], { description }),
    json: Type.Union([Type.Boolean(), Type.Literal(0), Type.Literal(1), text, Type.Null()], {
      description,
    }),
  };
}

/** A field's schema in a form (or query string: text only) and in JSON. */
interface Variants {
  form: TSchema;
  json: TSchema;
}

/** A field whose text matches `pattern`, in JSON also `others` (and null: absent). */
function typedField(pattern: string, others: TSchema[], description: string): Variants {
  const text = Type.String({ pattern });
  return {
    form: Type.Union([text], { description }),
    json: Type.Union([text, ...others, Type.Null()], { description }),
  };
}

/** The fields of the push API, by name. */
const FIELDS: Record<string, Variants> = {
  // The original's IntegerField: leading zeros, a `+` and a `.0` fraction are accepted.
  sip_user_id: typedField(
    '^\\s*(?:(?=\\S{1,64}\\s*$)\\+?0*[1-9][0-9]{8}(?:\\.0*)?)?\\s*$',
    [Type.Integer({ minimum: 100_000_000, maximum: 999_999_999 })],
    'the SIP account, 100000000–999999999',
  ),
  phonenumber: charField(
    `${TEXT_CHAR}{0,32}`,
    'the caller (at most 32 characters): digits once + ( ) – x and spaces are taken out',
  ),
  caller_id: charField(`${TEXT_CHAR}{0,255}`, 'caller name'),
  call_id: charField(`(?:${KEY_CHAR}{1,255})?`, 'the call id of the PBX'),
  unique_key: charField(`(?:${KEY_CHAR}{1,255})?`, 'the unique_key of the push'),
  token: charField(`(?:${KEY_CHAR}{1,250})?`, 'the push token'),
  app: charField(`(?:${KEY_CHAR}{1,255})?`, 'the app id (unknown ones: 404)'),
  name: charField(`${TEXT_CHAR}{0,255}`, 'device name'),
  os_version: charField(`${TEXT_CHAR}{0,255}`, 'OS version'),
  client_version: charField(`${TEXT_CHAR}{0,255}`, 'app version'),
  reason: charField(`${TEXT_CHAR}{0,10000}`, 'the reason, free text'),
  // The original's FloatField: `1700000000.123`, `1.7000000001234567E9`.
  message_start_time: typedField(
    '^\\s*(?:(?=\\S{1,64}\\s*$)[+-]?(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?)?\\s*$',
    [Type.Number()],
    'when the push was sent, epoch seconds (float)',
  ),
  available: booleanField('the app can take the call: true (default) or false'),
  sandbox: booleanField('APNs sandbox (default false)'),
};

/** The request's fields: the body's, and for DELETE the query string's under them. */
export function fieldsOf(request: FastifyRequest): Fields {
  const body = request.body;
  if (body !== undefined && body !== null && (typeof body !== 'object' || Array.isArray(body))) {
    throw bad();
  }
  const query = (request.query ?? {}) as Fields;
  return { ...(request.method === 'DELETE' ? query : {}), ...((body ?? {}) as Fields) };
}

/**
 * A checked text field, trimmed; undefined when absent, null or empty.
 * @throws {HttpError} 400 when `required` and absent (or, defensively, not text at all).
 */
export function text(fields: Fields, name: string, required: boolean): string | undefined {
  const value = fields[name];
  if (value !== null && typeof value === 'object') throw bad();
  const trimmed = value === undefined || value === null ? '' : String(value).trim();
  if (trimmed === '') {
    if (required) throw bad();
    return undefined;
  }
  return trimmed;
}

/** `sip_user_id` as its 9 digits. @throws {HttpError} 400 when absent or not one. */
export function sipUserId(fields: Fields): string {
  const match = /^\+?0*([1-9][0-9]{8})(\.0*)?$/.exec(text(fields, 'sip_user_id', true) ?? '');
  if (!match?.[1]) throw bad();
  return match[1];
}

/**
 * `phonenumber`, sent on unchanged: digits once `+ ( ) – x` and spaces are taken out, as the
 * original's `phone_number_validator` (`re.sub(r'[\+\(\)– - x]', '', ...)`, whose ` - ` is a
 * range from space to space: a hyphen-minus is not taken out, so `050-1234567` is refused).
 */
export function phonenumber(fields: Fields): string {
  const value = text(fields, 'phonenumber', true) as string;
  if (!/^\p{Nd}+$/u.test(value.replace(/[+()\u2013 x]/g, ''))) throw bad();
  return value;
}

/** `message_start_time`, epoch seconds. @throws {HttpError} 400 when absent or not finite. */
export function startTime(fields: Fields): number {
  const seconds = Number(text(fields, 'message_start_time', true));
  if (!Number.isFinite(seconds)) throw bad();
  return seconds;
}

const TRUE = new Set(['t', 'true', 'y', 'yes', 'on', '1']);

/** A checked boolean field; `fallback` when absent, null or empty. */
export function bool(fields: Fields, name: string, fallback: boolean): boolean {
  const value = fields[name];
  if (value === undefined || value === null || value === '') return fallback;
  if (typeof value === 'boolean') return value;
  return TRUE.has(String(value).trim().toLowerCase());
}

/**
 * A value of a field the original takes whatever it is (log-metrics): kept when it is
 * short printable text (JSON numbers and booleans as text, trimmed, at most 255
 * characters, no control character), else left out.
 */
export function printable(value: unknown): string | undefined {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (trimmed === '' || trimmed.length > 255 || /[\u0000-\u001f\u007f]/.test(trimmed)) {
    return undefined;
  }
  return trimmed;
}

/** `Host` (or a trusted proxy's `X-Forwarded-Host`): a host name or IP, optional port. */
const HOST = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/**
 * `<protocol>://<host>/api/call-response/` of the incoming-call request: the address the
 * app answers to when `push.responseUrl` is empty.
 * @throws {HttpError} 400 when the Host header is not a host name (it goes into the push).
 */
export function derivedResponseUrl(request: FastifyRequest): string {
  const host = request.host;
  if (host.length > 255 || !HOST.test(host)) throw bad();
  return `${request.protocol}://${host}/api/call-response/`;
}

// ---------------------------------------------------------------------------------------------
// Route schemas
// ---------------------------------------------------------------------------------------------

/** The named {@link FIELDS} as an object, `required` ones first, in a form or in JSON. */
export function pushFields(
  variant: keyof Variants,
  required: readonly string[],
  optional: readonly (string | [string, TSchema])[] = [],
  others?: TSchema,
): TSchema {
  const schemaOf = (name: string) => (FIELDS[name] as Variants)[variant];
  const properties: Record<string, TSchema> = {};
  for (const name of required) properties[name] = schemaOf(name);
  for (const entry of optional) {
    const [name, schema] = typeof entry === 'string' ? [entry, schemaOf(entry)] : entry;
    properties[name] = Type.Optional(schema);
  }
  return Type.Object(properties, others === undefined ? {} : { additionalProperties: others });
}

/** The fields of a route's body: its form (and multipart) schema and its JSON schema. */
export function pushBody(
  required: readonly string[],
  optional: readonly (string | [string, TSchema])[] = [],
  others?: TSchema,
): Variants {
  return {
    form: pushFields('form', required, optional, others),
    json: pushFields('json', required, optional, others),
  };
}

/** The push API's error body: a short text that never names the field or rule. */
const PushErrorBody = Type.String({
  description: 'bad request, unauthorized, forbidden, not found, ... (text/plain)',
});

export const ACCOUNT_SECURITY = [{ pushAccount: [] }];

/**
 * A push route's schema: `body` under every content type the original parses, text answers.
 * `attachValidation`: the route checks its network or credential first, then the fields.
 */
export function pushRoute(options: {
  operationId: string;
  summary: string;
  security: ReadonlyArray<Record<string, string[]>>;
  body?: Variants;
  querystring?: TSchema;
  answers: Record<number, string>;
  errors: readonly number[];
}) {
  const answers: Record<number, unknown> = {};
  for (const [status, description] of Object.entries(options.answers)) {
    answers[Number(status)] = {
      description,
      content: { 'text/plain': { schema: Type.String() } },
    };
  }
  return {
    attachValidation: true,
    schema: {
      tags: ['push'],
      summary: options.summary,
      operationId: options.operationId,
      security: options.security,
      ...(options.body === undefined
        ? {}
        : {
            body: {
              content: {
                'application/x-www-form-urlencoded': { schema: options.body.form },
                'multipart/form-data': { schema: options.body.form },
                'application/json': { schema: options.body.json },
              },
            },
          }),
      ...(options.querystring === undefined ? {} : { querystring: options.querystring }),
      response: { ...answers, ...errorResponses(PushErrorBody, options.errors, 'text/plain') },
    },
  };
}

/** 400 when the request failed its schema (checked by the route after network or credential). */
export function refuseInvalid(request: FastifyRequest): void {
  if (request.validationError !== undefined) throw bad();
}
