/**
 * Switchboard's pino logger ({@link createLogger}): JSON or pretty, secrets redacted (headers,
 * secret query parameters, credentials in URLs), one short line per error. Re-exported by
 * `server.ts`.
 *
 * @module
 */
import type { FastifyRequest } from 'fastify';
import pino, { type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { REDACTED, redactUrl } from '../util/redact.ts';

/** Log paths whose values are replaced by `***` (pino redact syntax). */
export const REDACT_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'req.headers["x-twilio-signature"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'password',
  'secret',
  'token',
  'apiKey',
  'authToken',
  '*.password',
  '*.secret',
  '*.token',
  '*.apiKey',
  '*.authToken',
  '*.*.password',
  '*.*.secret',
  '*.*.token',
];

/** A request's path and query for logs, secret-looking query parameters replaced by `***`. */
export function loggableUrl(url: string): string {
  return redactUrl(`http://h${url}`).slice('http://h'.length);
}

/** Serializes a request for logs: method, URL (secret query parameters redacted), IP; never headers. */
function serializeRequest(request: FastifyRequest) {
  return { method: request.method, url: loggableUrl(request.url), ip: request.ip };
}

/**
 * How {@link createLogger} writes: `json`, one JSON object per line (pino's format, `time`
 * in epoch milliseconds: for journald, files and log shippers), or `pretty`, one readable
 * line per entry (`[14:03:07.412] INFO: service: HTTP server listening {"url": ...}`).
 */
export type LogFormat = 'json' | 'pretty';

/**
 * `log.format` resolved for a destination: `auto` is `pretty` when the destination is a
 * terminal, `json` otherwise.
 */
export function resolveLogFormat(
  format: 'auto' | LogFormat,
  destination: { isTTY?: boolean } = process.stdout,
): LogFormat {
  if (format !== 'auto') return format;
  return destination.isTTY === true ? 'pretty' : 'json';
}

/** pino-pretty's writer: one line per entry, `component: message`, then the other fields. */
function prettyStream(destination: DestinationStream | undefined): DestinationStream {
  const target =
    destination === undefined || destination === (process.stdout as unknown)
      ? 1
      : destination === (process.stderr as unknown)
        ? 2
        : destination;
  const tty = (target === 1 ? process.stdout : target === 2 ? process.stderr : target) as {
    isTTY?: boolean;
  };
  return pretty({
    destination: target,
    sync: true,
    colorize: tty.isTTY === true && process.env.NO_COLOR === undefined,
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    // `http` repeats the request line the message already says.
    ignore: 'pid,hostname,component,reqId,http',
    messageFormat: '{if component}{component}: {end}{msg}',
    errorLikeObjectKeys: [],
  }) as DestinationStream;
}

/** An error as one line for the pretty format: `message (CODE)`, the causes after `: `. */
function shortError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 4; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    const message = current.message.split('\n')[0] ?? '';
    parts.push(code !== undefined && !message.includes(code) ? `${message} (${code})` : message);
    current = current.cause;
  }
  return parts.filter((p) => p !== '').join(': ');
}

/**
 * Creates the process logger: pino, level from config, secrets redacted
 * ({@link REDACT_PATHS}), as JSON lines or readable lines (`format`, see {@link LogFormat}).
 * `destination` defaults to stdout (tests pass a stream to read logs). Child loggers follow
 * the level of this logger when it changes (`logger.level = 'debug'`, SIGHUP reload) unless
 * they were given a level of their own.
 */
export function createLogger(
  level: string,
  destination?: DestinationStream,
  format: LogFormat = 'json',
): Logger {
  const options = {
    level,
    redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    serializers: {
      req: serializeRequest,
      err: pino.stdSerializers.err,
    },
  };
  if (format === 'pretty') {
    // One line: an error is its message (and code, and causes); the stack is in the JSON
    // format. Under the key `error`, which pino-pretty then prints with the other fields
    // (it sets `err` apart, on lines of its own).
    return pino(
      {
        ...options,
        serializers: { ...options.serializers, error: shortError },
        formatters: {
          log(object: Record<string, unknown>) {
            if (!('err' in object)) return object;
            const { err, ...rest } = object;
            return { ...rest, error: err };
          },
        },
      },
      prettyStream(destination),
    );
  }
  return destination ? pino(options, destination) : pino(options);
}
