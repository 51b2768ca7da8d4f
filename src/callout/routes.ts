/**
 * Why this file is a little over 500 lines: the seed API's validation (every field, error 1
 * naming it), its schemas and its two routes together, so that what reaches a dial string is
 * checked in one file.
 *
 * The Barista API (seed `002`): `POST /api/v1/call` (form-encoded with repeated `addressee`,
 * or JSON) and `GET /api/v1/call?eventid=`, answering the seed's shapes:
 * `{"success":"true","eventid":"..."}` / `{"success":"false","error":"1|2|99","message":"..."}`
 * and the history array. Every parameter is validated here (error 1, the message names the
 * field); nothing unvalidated reaches a dial string.
 *
 * HTTP statuses (the seed only defines bodies): 200 success; 400 error 1; 404 error 1
 * (unknown eventid); 413 error 1 (request too large); 401/403 error 99 (access rule);
 * 503 error 2 with `Retry-After` (the database is unreachable: nothing was stored, retry);
 * 500 error 2 (other system error).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import Type from 'typebox';
import type { AuthConfig, CalloutConfig } from '../config/schema.ts';
import { createAccessRule } from '../http/auth.ts';
import { type ErrorFormatter, HttpError, useErrorFormatter } from '../http/errors.ts';
import {
  ACCESS_RULE_SECURITY,
  errorResponses,
  plainSerializer,
  seedSchemaErrorFormatter,
  seedValidatorCompiler,
  TextField,
} from '../http/schemas.ts';
import type { App } from '../http/server.ts';
import { DatabaseUnavailableError } from '../store/db.ts';
import { TELNO_PATTERN } from '../telephony/dialstring.ts';
import type { EventHistory } from './repository.ts';
import type { Addressee, CalloutService, CallRequest } from './service.ts';

/** The seed's error codes: 1 input error, 2 system error, 99 other. */
export type BaristaErrorCode = '1' | '2' | '99';

/** Languages the seed defines. */
export const CALLOUT_LANGUAGES: readonly string[] = ['en', 'ja-jp'];

/** Renders any error in the seed's shape `{"success":"false","error":"<code>","message"}`. */
export const baristaErrorFormatter: ErrorFormatter = (error) => {
  let code: BaristaErrorCode;
  if (error.code === '1' || error.code === '2' || error.code === '99') code = error.code;
  else if (error.statusCode >= 500) code = '2';
  else if (error.statusCode === 401 || error.statusCode === 403) code = '99';
  else code = '1';
  const name = error.field?.replace(/^body\./, '');
  const message =
    name === undefined || error.message.startsWith(`${name}:`)
      ? error.message
      : `${name}: ${error.message}`;
  return { body: { success: 'false', error: code, message } };
};

/** An input error (code 1) naming the field. */
export class CalloutInputError extends HttpError {
  constructor(field: string, message: string) {
    super(400, `${field}: ${message}`, '1');
  }
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * A field of a body the schema validated ({@link CallFormBody}, {@link CallJsonBody}): its
 * text (a JSON number as its decimal text), `''` when absent or null.
 */
function fieldText(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  return value === undefined || value === null ? '' : String(value);
}

/** Parses one `order:userid:telno:name:min_seconds_between_calls` (name may contain `:`). */
export function parseAddressee(value: unknown, index: number): Addressee {
  const field = `addressee[${index}]`;
  let parts: { order: unknown; userid: unknown; telno: unknown; name: unknown; interval: unknown };
  if (typeof value === 'string') {
    if (CONTROL.test(value))
      throw new CalloutInputError(field, 'must not contain control characters');
    const split = value.split(':');
    if (split.length < 5) {
      throw new CalloutInputError(
        field,
        'must be order:userid:telno:name:min_seconds_between_calls',
      );
    }
    parts = {
      order: split[0],
      userid: split[1],
      telno: split[2],
      name: split.slice(3, -1).join(':'),
      interval: split[split.length - 1],
    };
  } else if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const o = value as Record<string, unknown>;
    parts = {
      order: o.order,
      userid: o.userid,
      telno: o.telno,
      name: o.name,
      interval: o.interval ?? o.sleep,
    };
  } else {
    throw new CalloutInputError(
      field,
      'must be a string order:userid:telno:name:seconds or an object',
    );
  }
  const str = (v: unknown) => (typeof v === 'number' ? String(v) : v);
  const order = str(parts.order);
  if (typeof order !== 'string' || !/^[0-9]{1,4}$/.test(order) || Number(order) < 1) {
    throw new CalloutInputError(`${field}.order`, 'must be an integer 1–9999');
  }
  const userid = str(parts.userid);
  if (typeof userid !== 'string' || userid === '' || userid.length > 64 || CONTROL.test(userid)) {
    throw new CalloutInputError(`${field}.userid`, 'must be 1–64 characters');
  }
  const telno = str(parts.telno);
  if (typeof telno !== 'string' || !TELNO_PATTERN.test(telno)) {
    throw new CalloutInputError(
      `${field}.telno`,
      'must be digits with an optional leading + (1–32 digits)',
    );
  }
  const name = str(parts.name) ?? '';
  if (typeof name !== 'string' || name.length > 100 || CONTROL.test(name)) {
    throw new CalloutInputError(`${field}.name`, 'must be at most 100 characters');
  }
  const interval = str(parts.interval);
  if (typeof interval !== 'string' || !/^[0-9]{1,6}$/.test(interval) || Number(interval) > 86_400) {
    throw new CalloutInputError(
      `${field}.min_seconds_between_calls`,
      'must be an integer 0–86400 (seconds)',
    );
  }
  return { order: Number(order), userid, telno, name, intervalS: Number(interval) };
}

/** Head or foot text for an id and language, `{hostname}` replaced; undefined if unknown. */
export function textFor(
  texts: Readonly<Record<string, Readonly<Record<string, string>>>>,
  id: number,
  language: string,
  hostname: string,
): string | undefined {
  const value = texts[String(id)]?.[language];
  return value === undefined ? undefined : value.replaceAll('{hostname}', hostname);
}

/**
 * Turns a POST body into a {@link CallRequest}. The body's fields were checked by its schema
 * ({@link CallFormBody} or {@link CallJsonBody}: presence, types, integer ranges, lengths,
 * control characters, the language); what a schema cannot say is checked here: the body is
 * an object at all (a text or absent body has no schema), the head and foot texts exist
 * for their id and language (config), the addressees (the seed's
 * `order:userid:telno:name:seconds` strings, or objects) and their number and orders.
 * @throws {CalloutInputError} (error 1) naming the first bad field.
 */
export function validateCallRequest(body: unknown, config: CalloutConfig): CallRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new CalloutInputError('body', 'must be form fields or a JSON object');
  }
  const b = body as Record<string, unknown>;
  const testflg = Number(fieldText(b, 'testflg') || '0') as 0 | 1;
  const hostname = fieldText(b, 'hostname');
  const operator = fieldText(b, 'operator');
  const calltype = Number(fieldText(b, 'calltype')) as 1 | 2;
  const frequency = Number(fieldText(b, 'frequency'));
  const language = fieldText(b, 'language');
  const message = fieldText(b, 'message');
  const headid = Number(fieldText(b, 'headid'));
  const footid = Number(fieldText(b, 'footid'));
  const headmsg = textFor(config.head, headid, language, hostname);
  if (headmsg === undefined) {
    throw new CalloutInputError('headid', `no head text ${headid} for language ${language}`);
  }
  const footmsg = textFor(config.foot, footid, language, hostname);
  if (footmsg === undefined) {
    throw new CalloutInputError('footid', `no foot text ${footid} for language ${language}`);
  }
  const raw = b.addressee;
  const list = raw === undefined || raw === '' ? [] : Array.isArray(raw) ? raw : [raw];
  if (list.length === 0) throw new CalloutInputError('addressee', 'is required (at least one)');
  if (list.length > config.maxAddressees) {
    throw new CalloutInputError('addressee', `at most ${config.maxAddressees} per event`);
  }
  const addressees = list.map((value, i) => parseAddressee(value, i));
  const orders = new Set<number>();
  for (const [i, a] of addressees.entries()) {
    if (orders.has(a.order)) {
      throw new CalloutInputError(`addressee[${i}].order`, `duplicate order ${a.order}`);
    }
    orders.add(a.order);
  }
  addressees.sort((x, y) => x.order - y.order);
  return {
    testflg,
    hostname,
    operator,
    calltype,
    frequency,
    language,
    message,
    headid,
    footid,
    headmsg,
    footmsg,
    addressees,
  };
}

/**
 * The history in the seed's shape (valid JSON: the seed's sample has `"telno","..."`), plus
 * `testflg` and `provider` (a dry run is visible as such), and `error` when `eventstatus` is
 * 99 and its reason is known (e.g. the message could not be synthesized). All values are strings, as the
 * seed's; `latestcall` is epoch seconds, `status` `""` before any call.
 */
export function historyBody(history: EventHistory): unknown[] {
  const { event, people } = history;
  return [
    {
      success: 'true',
      eventid: event.id,
      type: String(event.calltype),
      testflg: String(event.testflg),
      provider: event.provider,
      frequency: String(event.frequency),
      language: event.language,
      headid: String(event.headid),
      footid: String(event.footid),
      headmsg: event.headmsg,
      announce: event.message,
      footmsg: event.footmsg,
      eventstatus: String(event.status),
      // Why a system error (eventstatus 99); absent otherwise (the seed has no such field).
      ...(event.error ? { error: event.error } : {}),
      result: people.map((p) => ({
        ghid: p.ghid,
        order: String(p.numorder),
        telno: p.telno,
        name: p.name,
        numofcall: String(p.calls),
        latestcall: p.latest_at === null ? '' : String(Math.floor(p.latest_at / 1000)),
        status: p.status === null ? '' : String(p.status),
      })),
    },
  ];
}

/** Text without control characters (C0, DEL). */
const NO_CONTROL = '^[^\\u0000-\\u001f\\u007f]*$';
const ONCE = 'must be a string, given once';

/** A required text field: form text; in JSON a string or a number (read as its text). */
function seedText(max: number, description: string, json: boolean) {
  return Type.Union(
    [
      Type.String({
        minLength: 1,
        maxLength: max,
        pattern: NO_CONTROL,
        errorMessage: {
          type: ONCE,
          minLength: 'is required',
          maxLength: `must be at most ${max} characters`,
          pattern: 'must not contain control characters',
        },
      }),
      ...(json ? [Type.Number()] : []),
    ],
    { description },
  );
}

/**
 * An integer field `min`–`max`: form text of digits (`pattern`, leading zeros allowed, as
 * the seed's PHP reads them); in JSON also an integer. `optional`: may be absent or empty
 * (in JSON null too): the default applies.
 */
function seedInteger(
  min: number,
  max: number,
  pattern: string,
  description: string,
  json: boolean,
  optional = false,
) {
  const message = `must be an integer ${min}–${max}`;
  return Type.Union(
    [
      Type.String({
        ...(optional ? {} : { minLength: 1 }),
        maxLength: 12,
        pattern,
        errorMessage: {
          type: message,
          minLength: 'is required',
          maxLength: message,
          pattern: message,
        },
      }),
      ...(json ? [Type.Integer({ minimum: min, maximum: max, errorMessage: message })] : []),
      ...(json && optional ? [Type.Null()] : []),
    ],
    { description },
  );
}

/**
 * The seed's fields: in a form every value is text (integers as digits); JSON may send
 * numbers (and null for `testflg`).
 */
const fields = (json: boolean) => ({
  testflg: Type.Optional(
    seedInteger(0, 1, '^(0*[01])?$', '0: place calls (default), 1: dry run (no call)', json, true),
  ),
  hostname: seedText(255, 'host that failed; replaces {hostname} in the head and foot texts', json),
  operator: seedText(100, 'id of the caller of this API', json),
  calltype: seedInteger(1, 2, '^0*[12]$', '1 sequential, 2 parallel', json),
  frequency: seedInteger(1, 10, '^0*([1-9]|10)$', 'most calls per person', json),
  language: Type.Union([Type.Literal('en'), Type.Literal('ja-jp')], {
    errorMessage: `must be one of ${CALLOUT_LANGUAGES.join(', ')}`,
  }),
  message: seedText(1000, 'the announcement', json),
  headid: seedInteger(0, 9999, '^0*[0-9]{1,4}$', 'head text id (config callout.head)', json),
  footid: seedInteger(0, 9999, '^0*[0-9]{1,4}$', 'foot text id (config callout.foot)', json),
});
const ADDRESSEE = 'order:userid:telno:name:min_seconds_between_calls';

/** `POST /api/v1/call` form-encoded (the seed): `addressee` repeated. */
export const CallFormBody = Type.Object({
  ...fields(false),
  addressee: Type.Union([Type.String(), Type.Array(Type.String())], {
    description: `${ADDRESSEE}, repeated once per person`,
    errorMessage: `must be ${ADDRESSEE}, repeated once per person`,
  }),
});

/** `POST /api/v1/call` as JSON: `addressee` a list of seed strings or objects. */
export const CallJsonBody = Type.Object({
  ...fields(true),
  addressee: Type.Union(
    [
      Type.String({ description: ADDRESSEE }),
      Type.Array(
        Type.Union([
          Type.String({ description: ADDRESSEE }),
          Type.Object({
            order: Type.Optional(TextField({ description: '1–9999, unique per event' })),
            userid: Type.Optional(TextField({ maxLength: 64 })),
            telno: Type.Optional(TextField({ description: 'digits, optional leading +' })),
            name: Type.Optional(TextField({ maxLength: 100 })),
            interval: Type.Optional(TextField({ description: 'minimum seconds between calls' })),
          }),
        ]),
      ),
    ],
    { errorMessage: `must be a list of ${ADDRESSEE} strings or objects` },
  ),
});

/** The seed's error body. */
export const BaristaErrorBody = Type.Object({
  success: Type.Literal('false'),
  error: Type.Union([Type.Literal('1'), Type.Literal('2'), Type.Literal('99')], {
    description: '1 input error, 2 system error, 99 other (access refused)',
  }),
  message: Type.String(),
});

/** The history answer (one element, all values strings as in the seed). */
export const HistoryBody = Type.Array(
  Type.Object(
    {
      success: Type.Literal('true'),
      eventid: Type.String(),
      type: Type.String({ description: 'calltype' }),
      testflg: Type.String(),
      provider: Type.String(),
      frequency: Type.String(),
      language: Type.String(),
      headid: Type.String(),
      footid: Type.String(),
      headmsg: Type.String(),
      announce: Type.String(),
      footmsg: Type.String(),
      eventstatus: Type.String(),
      result: Type.Array(
        Type.Object({
          ghid: Type.String(),
          order: Type.String(),
          telno: Type.String(),
          name: Type.String(),
          numofcall: Type.String(),
          latestcall: Type.String({ description: 'epoch seconds, "" before any call' }),
          status: Type.String({ description: '"" before any call' }),
        }),
      ),
    },
    { additionalProperties: true },
  ),
);

/** Options of {@link calloutRoutes}. */
export interface CalloutRoutesOptions {
  service: CalloutService;
  config: CalloutConfig;
  auth: AuthConfig;
}

/**
 * Registers `POST /api/v1/call` and `GET /api/v1/call` with the access rule (module
 * `callout`) and the seed's error shape. Register inside an encapsulated plugin.
 */
export async function calloutRoutes(app: App, options: CalloutRoutesOptions): Promise<void> {
  const { service, config } = options;
  useErrorFormatter(app, baristaErrorFormatter, ['/api/v1/call']);
  app.setValidatorCompiler(seedValidatorCompiler);
  app.setSerializerCompiler(plainSerializer);
  app.setSchemaErrorFormatter(seedSchemaErrorFormatter);
  const access = createAccessRule({
    ...options.auth,
    module: 'callout',
    formatter: baristaErrorFormatter,
  });
  app.route({
    method: 'POST',
    url: '/api/v1/call',
    bodyLimit: config.maxRequestBytes,
    onRequest: access,
    schema: {
      summary: 'Start an alert-call escalation (Barista)',
      tags: ['callout'],
      operationId: 'createCallEvent',
      security: ACCESS_RULE_SECURITY,
      body: {
        content: {
          'application/x-www-form-urlencoded': { schema: CallFormBody },
          'application/json': { schema: CallJsonBody },
        },
      },
      response: {
        200: Type.Object(
          { success: Type.Literal('true'), eventid: Type.String() },
          { description: 'Stored; the escalation starts' },
        ),
        ...errorResponses(BaristaErrorBody, [400, 401, 403, 413, 415, 503]),
      },
    },
    async handler(request: FastifyRequest, reply: FastifyReply) {
      const call = validateCallRequest(request.body, config);
      let eventid: string;
      try {
        eventid = await service.createEvent(call);
      } catch (error) {
        if (error instanceof DatabaseUnavailableError) {
          request.log.warn(
            { reason: error.reason },
            'callout: database unreachable, event refused',
          );
          throw new HttpError(
            503,
            'system error: the database is unreachable, nothing was stored; retry later',
            '2',
            { 'retry-after': String(error.retryAfterS) },
          );
        }
        request.log.error({ err: error }, 'callout: cannot store the event');
        throw new HttpError(500, 'system error: the event could not be stored', '2');
      }
      return reply.send({ success: 'true', eventid });
    },
  });
  app.route({
    method: 'GET',
    url: '/api/v1/call',
    onRequest: access,
    schema: {
      summary: 'History of an escalation (Barista)',
      tags: ['callout'],
      operationId: 'getCallEvent',
      security: ACCESS_RULE_SECURITY,
      querystring: Type.Object({
        eventid: Type.Optional(
          Type.String({ description: 'the eventid POST answered (required)' }),
        ),
      }),
      response: {
        200: { ...HistoryBody, description: 'The event and its people' },
        ...errorResponses(BaristaErrorBody, [400, 401, 403, 404, 503]),
      },
    },
    async handler(request: FastifyRequest) {
      const query = request.query as Record<string, unknown>;
      const eventid = query.eventid;
      if (typeof eventid !== 'string' || eventid === '') {
        throw new CalloutInputError('eventid', 'is required');
      }
      if (!/^[0-9A-Za-z]{1,64}$/.test(eventid)) {
        throw new CalloutInputError('eventid', 'is malformed');
      }
      const history = await service.history(eventid);
      if (!history) throw new HttpError(404, `eventid: unknown event ${eventid}`, '1');
      return historyBody(history);
    },
  });
}
