/**
 * HTTP errors and per-module error shapes.
 *
 * Each seed API answers errors in its own shape (Barista: `{"success":"false","error":"1",
 * "message":"..."}`; Gong: `{"error":"..."}`; push middleware: text). A feature module sets its
 * shape once for its routes with {@link useErrorFormatter}; handlers throw {@link HttpError}
 * (or let Fastify's validation fail) and the formatter renders it. Error details of 5xx are
 * logged, never sent.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DatabaseUnavailableError } from '../store/db.ts';

/** An error a handler throws to answer a given status. `message` is sent to the client. */
export class HttpError extends Error {
  /** HTTP status (4xx, 5xx). */
  readonly statusCode: number;
  /** Machine-readable code, e.g. `bad_request`, or a seed API's code (`"1"`, `"99"`). */
  readonly code: string;
  /** Extra headers sent with the answer (e.g. `WWW-Authenticate`). */
  readonly headers: Record<string, string>;
  /** The field at fault (`body`, `body.text`, `querystring.bind`), when there is one. */
  readonly field: string | undefined;
  constructor(
    statusCode: number,
    message: string,
    code = codeForStatus(statusCode),
    headers: Record<string, string> = {},
    field?: string,
  ) {
    super(message);
    this.name = 'HttpError';
    this.statusCode = statusCode;
    this.code = code;
    this.headers = headers;
    this.field = field;
  }
}

/**
 * A 400 naming the field at fault: message `<name>: <reason>` (name = `field` without the
 * `body.` prefix), e.g. `fieldError('body.start', 'must be a string')`.
 */
export function fieldError(field: string, reason: string, code = 'bad_request'): HttpError {
  return new HttpError(400, `${field.replace(/^body\./, '')}: ${reason}`, code, {}, field);
}

/** What a formatter receives: a normalized error, safe to show. */
export interface ErrorInfo {
  /** HTTP status to answer. */
  statusCode: number;
  /** Machine-readable code (`bad_request`, `not_found`, `payload_too_large`, or custom). */
  code: string;
  /** Readable message, safe to send (for 5xx: a generic message). */
  message: string;
  /** For validation errors: the field at fault (`body.telno`, `querystring.eventid`). */
  field?: string;
  /** Headers to send. */
  headers: Record<string, string>;
}

/** Renders an {@link ErrorInfo} as a module's answer body (status and headers are applied). */
export type ErrorFormatter = (
  error: ErrorInfo,
  request: FastifyRequest,
) => { body: unknown; contentType?: string; statusCode?: number };

/** Default codes per status. */
export function codeForStatus(statusCode: number): string {
  const codes: Record<number, string> = {
    400: 'bad_request',
    401: 'unauthorized',
    403: 'forbidden',
    404: 'not_found',
    405: 'method_not_allowed',
    413: 'payload_too_large',
    415: 'unsupported_media_type',
    429: 'too_many_requests',
    503: 'unavailable',
  };
  return codes[statusCode] ?? (statusCode >= 500 ? 'internal_error' : 'error');
}

/**
 * Normalizes anything thrown in a request into an {@link ErrorInfo}: {@link HttpError} as is,
 * Fastify validation errors → 400 naming the field, Fastify's own 4xx (body too large,
 * unsupported content type, bad JSON) kept, the database unreachable
 * ({@link DatabaseUnavailableError}) → 503 with `Retry-After`, anything else → 500 with a
 * generic message.
 */
export function toErrorInfo(error: unknown): ErrorInfo {
  if (error instanceof DatabaseUnavailableError) {
    return {
      statusCode: 503,
      code: 'unavailable',
      message: 'service unavailable: the database cannot be reached; retry later',
      headers: { 'retry-after': String(error.retryAfterS) },
    };
  }
  if (error instanceof HttpError) {
    return {
      statusCode: error.statusCode,
      code: error.code,
      message: error.message,
      headers: error.headers,
      ...(error.field === undefined ? {} : { field: error.field }),
    };
  }
  const e = error as Partial<FastifyError> & {
    validation?: Array<{ instancePath?: string; params?: Record<string, unknown> }>;
    validationContext?: string;
  };
  if (Array.isArray(e.validation) && e.validation.length > 0) {
    const first = e.validation[0];
    // Ajv says `missingProperty`, TypeBox `requiredProperties`.
    const required = first?.params?.requiredProperties;
    const missing = Array.isArray(required) ? required[0] : first?.params?.missingProperty;
    const path = `${first?.instancePath ?? ''}${missing ? `/${String(missing)}` : ''}`;
    const field = [e.validationContext ?? 'body', ...path.split('/').filter((p) => p !== '')].join(
      '.',
    );
    return {
      statusCode: 400,
      code: 'bad_request',
      message: e.message ?? 'invalid request',
      field,
      headers: {},
    };
  }
  if (typeof e.statusCode !== 'number' && isMalformedMultipart(error)) {
    return {
      statusCode: 400,
      code: 'bad_request',
      message: `body: malformed multipart/form-data (${(error as Error).message})`,
      field: 'body',
      headers: {},
    };
  }
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) {
    const field = fieldOfFrameworkError(e.code);
    return {
      statusCode: status,
      code: codeForStatus(status),
      message: field ? `${field}: ${e.message ?? 'bad request'}` : (e.message ?? 'bad request'),
      ...(field ? { field } : {}),
      headers: {},
    };
  }
  return {
    statusCode: status,
    code: codeForStatus(status),
    message: 'internal error',
    headers: {},
  };
}

/**
 * Errors of the multipart parser (`@fastify/busboy`) for a body the client broke: no or bad
 * boundary, body ending early. They carry no status (the parser does not know it is a
 * client's fault), so they are recognised by message.
 */
const MULTIPART_ERRORS = [
  /^Multipart: Boundary not found$/,
  /^Boundary required$/,
  /unexpected end of multipart data$/i,
  /^Unsupported Content-Type\.$/,
  /^The needle cannot (be an empty String\/Buffer|have a length bigger than 256)\.$/,
  /^Malformed part header$/,
];

function isMalformedMultipart(error: unknown): boolean {
  return error instanceof Error && MULTIPART_ERRORS.some((pattern) => pattern.test(error.message));
}

/** The field a Fastify 4xx error is about: the body for content-type parser errors. */
function fieldOfFrameworkError(code: string | undefined): string | undefined {
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH')
    return 'headers.content-type';
  if (code?.startsWith('FST_ERR_CTP_') || code === 'FST_PROTO_VIOLATION') return 'body';
  if (code === 'FST_ERR_BAD_URL' || code === 'FST_ERR_MAX_PARAM_LENGTH') return 'url';
  return undefined;
}

/** Switchboard's own error shape: `{"error": code, "message": ..., "statusCode": n}`. */
export const defaultErrorFormatter: ErrorFormatter = (error) => ({
  body: {
    error: error.code,
    message: error.message,
    statusCode: error.statusCode,
    ...(error.field ? { field: error.field } : {}),
  },
});

/** Sends an error through a formatter (status, headers, body). */
export function sendError(
  reply: FastifyReply,
  request: FastifyRequest,
  info: ErrorInfo,
  formatter: ErrorFormatter = defaultErrorFormatter,
): FastifyReply {
  const rendered = formatter(info, request);
  reply.code(rendered.statusCode ?? info.statusCode);
  for (const [name, value] of Object.entries(info.headers)) reply.header(name, value);
  if (rendered.contentType) reply.type(rendered.contentType);
  return reply.send(rendered.body);
}

/** Error shapes by path prefix, per HTTP server (`app.server`, shared by every plugin). */
const shapesByServer = new WeakMap<object, Array<{ prefix: string; formatter: ErrorFormatter }>>();

/**
 * Makes `formatter` render every error of `app`'s routes (Fastify encapsulation: call it inside
 * the module's plugin to affect that module only). 5xx errors are logged with their cause
 * (the database unreachable: a warning naming the reason, without a stack).
 * `prefixes` (e.g. `['/messages']`) also give the shape to answers made outside the routes:
 * unknown paths under the prefix (404) and malformed URLs (400).
 */
export function useErrorFormatter(
  app: FastifyInstance,
  formatter: ErrorFormatter,
  prefixes: readonly string[] = [],
): void {
  app.setErrorHandler((error, request, reply) => {
    const info = toErrorInfo(error);
    if (error instanceof DatabaseUnavailableError) {
      // an outage, not a bug: one line per request, without a stack
      request.log.warn({ reason: error.reason }, 'request refused: database unreachable');
    } else if (info.statusCode >= 500) request.log.error({ err: error }, 'request failed');
    return sendError(reply, request, info, formatter);
  });
  if (prefixes.length === 0) return;
  const shapes = shapesByServer.get(app.server) ?? [];
  for (const prefix of prefixes) shapes.push({ prefix: prefix.replace(/\/+$/, ''), formatter });
  shapes.sort((a, b) => b.prefix.length - a.prefix.length);
  shapesByServer.set(app.server, shapes);
}

/**
 * The formatter registered (with {@link useErrorFormatter}) for the longest prefix of `url`'s
 * path on `server`, else {@link defaultErrorFormatter}.
 */
export function formatterFor(server: object, url: string): ErrorFormatter {
  const path = url.split('?')[0] ?? '';
  for (const { prefix, formatter } of shapesByServer.get(server) ?? []) {
    if (path === prefix || path.startsWith(`${prefix}/`)) return formatter;
  }
  return defaultErrorFormatter;
}
