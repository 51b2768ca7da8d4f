/**
 * Gong's HTTP API (seed `000_c8f88742814ca003.txt`, "Server API"), kept path for path:
 *
 * - `GET /messages` → `{"messages":[{"id","description","start","extension"}]}` (pending
 *   messages, by effective start); `?all=1` adds the history with `status` and `outcome`.
 * - `POST /messages/add`, multipart: `audio` (required), `extension`, `start`, `description`.
 * - `POST /messages/tts/add`: `text`, `extension`, `start`, `description`, `language`
 *   (form-encoded, multipart or JSON).
 * - `DELETE /messages/{id}`: only a message not yet played; 404 otherwise.
 *
 * Ids are opaque strings, as Gong's (`str(uuid.uuid4())` in `server.py`): a uuid4 for new
 * messages, the old integer as a string for rows created before (clients build
 * `'/messages/' + m['id']`). `extension` is optional everywhere: without it the message goes
 * to `announce.extension` (Gong's default ringer `42300@default`).
 *
 * `start` is `YYYY-MM-DDTHH:MM:SS` in the server's local time (Gong's format; also shown in
 * answers) or ISO 8601 with an offset (`...Z`, `...+09:00`); missing or empty = now. Errors
 * answer `{"error": "<reason>", "code": "<machine code>"}` with 400 (bad input; codes
 * `unsupported_audio_format`, `not_audio`, `too_long` for audio), 401/403 (access rule), 404,
 * 409 `too_many_pending` (`announce.maxPending`), 413 (upload over `uploadLimitBytes`), 502
 * (TTS service error), 503 `playback_unavailable` (messages cannot be placed now: call files
 * without their spool directory; the reason names the config key), 503 `tool_missing` /
 * `tool_failed` (sox or espeak-ng not installed, failing or too slow; the reason names it).
 *
 * An upload is stored under a name of ours (`upload-<random>`, no extension: the client's
 * file name is never used) and its format is detected from its content.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import multipart from '@fastify/multipart';
import type { FastifyReply, FastifyRequest } from 'fastify';
import Type from 'typebox';
import type { AuthConfig } from '../config/schema.ts';
import { createAccessRule } from '../http/auth.ts';
import {
  type ErrorFormatter,
  fieldError,
  HttpError,
  sendError,
  toErrorInfo,
  useErrorFormatter,
} from '../http/errors.ts';
import {
  ACCESS_RULE_SECURITY,
  errorResponses,
  plainSerializer,
  seedSchemaErrorFormatter,
  seedValidatorCompiler,
  TextField,
} from '../http/schemas.ts';
import type { App } from '../http/server.ts';
import { INSTALL_TOOLS, MediaError } from '../media/errors.ts';
import { TelephonyValidationError } from '../telephony/dialstring.ts';
import type { AnnounceService, MessageView } from './index.ts';
import {
  AnnounceInputError,
  AnnounceQueueFullError,
  AnnounceUnavailableError,
} from './repository.ts';

/** Gong's error shape: `{"error": reason, "code": machine code}` (plus `field` when known). */
export const gongErrorFormatter: ErrorFormatter = (error) => ({
  body: { error: error.message, code: error.code, ...(error.field ? { field: error.field } : {}) },
});

/** Gong's error body. */
export const GongErrorBody = Type.Object({
  error: Type.String({ description: 'the reason' }),
  code: Type.String({ description: 'machine-readable code, e.g. too_many_pending' }),
  field: Type.Optional(Type.String({ description: 'the field at fault' })),
});

/** A message as Gong lists it (`?all=1` and DELETE add the history fields). */
export const MessageBody = Type.Object({
  id: Type.String({ description: 'opaque id (uuid4, or an older integer as text)' }),
  description: Type.String(),
  start: Type.String({ description: 'YYYY-MM-DDTHH:MM:SS, server local time' }),
  extension: Type.String(),
  status: Type.Optional(Type.String()),
  outcome: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  requested_start: Type.Optional(Type.String()),
  kind: Type.Optional(Type.String()),
  attempts: Type.Optional(Type.Integer()),
  finished: Type.Optional(Type.String()),
});

const START =
  'YYYY-MM-DDTHH:MM:SS (server local time) or ISO 8601 with an offset; empty or absent: now';
const fieldsOf = {
  extension: Type.Optional(TextField({ description: 'where to play; default announce.extension' })),
  start: Type.Optional(Type.Union([Type.String({ description: START }), Type.Null()])),
  description: Type.Optional(Type.Union([TextField(), Type.Null()])),
};
/** `POST /messages/tts/add` (form-encoded, multipart or JSON). */
const TtsBody = Type.Object({
  text: Type.Union([TextField({ description: 'the text to speak' }), Type.Null()]),
  language: Type.Optional(Type.Union([TextField(), Type.Null()])),
  ...fieldsOf,
});
/** `POST /messages/add` (multipart). */
const UploadBody = Type.Object({
  audio: Type.String({ format: 'binary', description: 'the audio file (format detected)' }),
  extension: Type.Optional(Type.String()),
  start: Type.Optional(Type.String({ description: START })),
  description: Type.Optional(Type.String()),
});

const LOCAL = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/;
const WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;

/**
 * Parses Gong's `start`: `YYYY-MM-DDTHH:MM:SS` (server local time) or ISO 8601 with an offset.
 * @returns epoch ms; `nowMs` when `value` is missing or empty.
 * @throws {HttpError} 400 naming what is wrong.
 */
export function parseStart(value: unknown, nowMs = Date.now()): number {
  if (value === undefined || value === null || value === '') return nowMs;
  if (typeof value !== 'string') throw fieldError('body.start', 'must be a string');
  const local = LOCAL.exec(value);
  if (local) {
    const [y, mo, d, h, mi, s] = local.slice(1).map(Number) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const date = new Date(y, mo - 1, d, h, mi, s);
    if (
      date.getFullYear() !== y ||
      date.getMonth() !== mo - 1 ||
      date.getDate() !== d ||
      date.getHours() !== h ||
      date.getMinutes() !== mi ||
      date.getSeconds() !== s
    ) {
      throw fieldError('body.start', `${JSON.stringify(value)} is not a valid local date and time`);
    }
    return date.getTime();
  }
  if (WITH_OFFSET.test(value)) {
    const ms = Date.parse(value);
    if (Number.isFinite(ms)) return ms;
    throw fieldError('body.start', `${JSON.stringify(value)} is not a valid date`);
  }
  throw fieldError(
    'body.start',
    `${JSON.stringify(value.slice(0, 40))} must be YYYY-MM-DDTHH:MM:SS (server local time) or ISO 8601 with an offset`,
  );
}

/** Epoch ms → `YYYY-MM-DDTHH:MM:SS` in server local time (Gong's format). */
export function formatLocal(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/**
 * Maps service errors to HTTP errors (validation → 400, full queue → 409, TTS service → 502,
 * playback unavailable → 503, sox / espeak-ng missing, failing or too slow → 503 naming the
 * program).
 */
export function toHttpError(error: unknown): unknown {
  if (error instanceof TelephonyValidationError) return new HttpError(400, error.message);
  if (error instanceof AnnounceUnavailableError) {
    return new HttpError(503, error.message, 'playback_unavailable');
  }
  if (error instanceof AnnounceInputError) return new HttpError(400, error.message, error.code);
  if (error instanceof AnnounceQueueFullError) {
    return new HttpError(409, error.message, 'too_many_pending');
  }
  if (error instanceof MediaError) {
    if (['NOT_AUDIO', 'EMPTY_TEXT', 'UNSUPPORTED_LANGUAGE', 'INPUT_MISSING'].includes(error.code)) {
      return new HttpError(400, error.message, error.code.toLowerCase());
    }
    if (error.code === 'TTS_SERVICE_ERROR' || error.code === 'TTS_HTTP_ERROR') {
      return new HttpError(
        502,
        `speech synthesis failed: ${error.message}`,
        error.code.toLowerCase(),
      );
    }
    if (error.code === 'TOOL_MISSING') {
      // A missing program is the server's state, not a fault of the request: 503 naming it.
      return new HttpError(
        503,
        `audio cannot be prepared: ${error.message} (${INSTALL_TOOLS})`,
        'tool_missing',
      );
    }
    if (error.code === 'TOOL_FAILED' || error.code === 'TIMEOUT') {
      return new HttpError(503, `audio cannot be prepared: ${error.message}`, 'tool_failed');
    }
  }
  return error;
}

/**
 * Answers a 503 `playback_unavailable` quietly: an expected state (the reason was logged once
 * at start), not a server fault to log with its stack on every request.
 * @returns the reply, or undefined when `error` is something else (to rethrow).
 */
function answerUnavailable(
  error: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply | undefined {
  if (!(error instanceof HttpError) || error.code !== 'playback_unavailable') return undefined;
  return sendError(reply, request, toErrorInfo(error), gongErrorFormatter);
}

/**
 * One field of a form-encoded or JSON body: a string (a finite number as its decimal text).
 * @throws {HttpError} 400 naming the field for anything else (object, array = repeated
 * form field, boolean).
 */
function field(fields: Record<string, unknown>, name: string): string | undefined {
  const value = fields[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (Array.isArray(value)) throw fieldError(`body.${name}`, 'must be given once');
  throw fieldError(`body.${name}`, 'must be a string');
}

/**
 * Adds one multipart text field to `fields`.
 * @throws {HttpError} 400 naming the field when it is given twice, is not text (a JSON part)
 * or was not valid UTF-8 (the multipart parser replaces bad bytes with U+FFFD).
 */
function addPartField(fields: Record<string, string>, name: string, value: unknown): void {
  if (typeof value !== 'string') throw fieldError(`body.${name}`, 'must be a text field');
  if (Object.hasOwn(fields, name)) throw fieldError(`body.${name}`, 'must be given once');
  if (value.includes('\uFFFD')) throw fieldError(`body.${name}`, 'is not valid UTF-8');
  fields[name] = value;
}

/** Options of {@link announceRoutes}. */
export interface AnnounceRoutesOptions {
  service: AnnounceService;
  auth: AuthConfig;
  /** Largest audio upload, bytes. */
  uploadLimitBytes: number;
  /** Where uploads are written before conversion. */
  uploadDir: string;
}

/** Registers Gong's routes, its access rule and error shape on `app` (call inside a plugin). */
export async function announceRoutes(app: App, options: AnnounceRoutesOptions): Promise<void> {
  const { service } = options;
  useErrorFormatter(app, gongErrorFormatter, ['/messages']);
  app.setValidatorCompiler(seedValidatorCompiler);
  app.setSerializerCompiler(plainSerializer);
  app.setSchemaErrorFormatter(seedSchemaErrorFormatter);
  app.addHook(
    'onRequest',
    createAccessRule({ ...options.auth, module: 'announce', formatter: gongErrorFormatter }),
  );
  await app.register(multipart, {
    limits: { fileSize: options.uploadLimitBytes, files: 1, fields: 20, fieldSize: 1_048_576 },
    throwFileSizeLimit: true,
  });
  const view = (m: MessageView, all: boolean) => ({
    id: m.id,
    description: m.description,
    start: formatLocal(m.startMs),
    extension: m.extension,
    ...(all
      ? {
          status: m.status,
          outcome: m.outcome,
          requested_start: formatLocal(m.requestedMs),
          kind: m.kind,
          attempts: m.attempts,
          ...(m.finishedMs === null ? {} : { finished: formatLocal(m.finishedMs) }),
        }
      : {}),
  });

  app.get(
    '/messages',
    {
      schema: {
        tags: ['announce'],
        summary: 'Scheduled messages (Gong); ?all=1 adds the history',
        operationId: 'listMessages',
        security: ACCESS_RULE_SECURITY,
        querystring: Type.Object({
          all: Type.Optional(Type.String({ description: '1, true or yes: add the history' })),
        }),
        response: {
          200: Type.Object({ messages: Type.Array(MessageBody) }),
          ...errorResponses(GongErrorBody, [400, 401, 403, 503]),
        },
      },
    },
    async (request) => {
      const all = ['1', 'true', 'yes'].includes(
        String((request.query as { all?: string }).all ?? ''),
      );
      const messages = await service.list(all);
      return { messages: messages.map((m) => view(m, all)) };
    },
  );

  app.post(
    '/messages/add',
    {
      // Uploads may be large: their body may take http.uploadTimeoutMs to arrive.
      config: { upload: true },
      schema: {
        tags: ['announce'],
        summary:
          'Schedule an uploaded audio file (multipart: audio, extension, start, description)',
        operationId: 'addAudioMessage',
        security: ACCESS_RULE_SECURITY,
        body: { content: { 'multipart/form-data': { schema: UploadBody } } },
        response: {
          200: { ...MessageBody, description: 'Scheduled' },
          ...errorResponses(GongErrorBody, [400, 401, 403, 409, 413, 415, 503]),
        },
      },
    },
    async (request, reply) => {
      if (!request.isMultipart()) {
        throw new HttpError(
          400,
          'audio: a multipart/form-data upload with an "audio" file is required',
        );
      }
      const fields = Object.create(null) as Record<string, string>;
      let upload: string | undefined;
      try {
        for await (const part of request.parts()) {
          if (part.type === 'file') {
            if (part.fieldname !== 'audio' || upload !== undefined) {
              part.file.resume();
              continue;
            }
            // A name of ours, without the client's extension: sox reads `*.m3u`/`*.pls` as a
            // playlist (shell, URL fetches, any server file), and nothing a client names may
            // choose how a file is read. The format is detected from the content.
            await mkdir(options.uploadDir, { recursive: true });
            upload = path.join(options.uploadDir, `upload-${randomBytes(8).toString('hex')}`);
            await pipeline(part.file, createWriteStream(upload));
            if (part.file.truncated) {
              throw new HttpError(413, `audio: larger than ${options.uploadLimitBytes} bytes`);
            }
          } else addPartField(fields, part.fieldname, part.value);
        }
        if (upload === undefined) throw new HttpError(400, 'audio: the "audio" file is required');
        const startMs = parseStart(fields.start);
        const message = await service
          .addAudio({
            file: upload,
            ...(fields.extension ? { extension: fields.extension } : {}),
            description: fields.description ?? '',
            startMs,
          })
          .catch((error: unknown) => {
            throw toHttpError(error);
          });
        return view(message, false);
      } catch (error) {
        const quiet = answerUnavailable(error, request, reply);
        if (quiet) return quiet;
        const e = error as { statusCode?: number; code?: string };
        if (e.code === 'FST_REQ_FILE_TOO_LARGE' || e.statusCode === 413) {
          throw new HttpError(
            413,
            `audio: larger than ${options.uploadLimitBytes} bytes`,
            'payload_too_large',
          );
        }
        throw error;
      } finally {
        if (upload) await unlink(upload).catch(() => undefined);
      }
    },
  );

  app.post(
    '/messages/tts/add',
    {
      schema: {
        tags: ['announce'],
        summary: 'Schedule a synthesized message (text, extension, start, description, language)',
        operationId: 'addTextMessage',
        security: ACCESS_RULE_SECURITY,
        body: {
          content: {
            'application/x-www-form-urlencoded': { schema: TtsBody },
            'multipart/form-data': { schema: TtsBody },
            'application/json': { schema: TtsBody },
          },
        },
        response: {
          200: { ...MessageBody, description: 'Scheduled' },
          ...errorResponses(GongErrorBody, [400, 401, 403, 409, 413, 415, 502, 503]),
        },
      },
    },
    async (request: FastifyRequest, reply: FastifyReply) => {
      let fields: Record<string, unknown>;
      if (request.isMultipart()) {
        const parts = Object.create(null) as Record<string, string>;
        for await (const part of request.parts()) {
          if (part.type === 'file') part.file.resume();
          else addPartField(parts, part.fieldname, part.value);
        }
        fields = parts;
      } else if (request.body === undefined || request.body === null) {
        fields = {};
      } else if (typeof request.body !== 'object' || Array.isArray(request.body)) {
        throw fieldError('body', 'must be form fields, multipart or a JSON object');
      } else {
        fields = request.body as Record<string, unknown>;
      }
      const text = field(fields, 'text');
      if (text === undefined || text.trim() === '')
        throw fieldError('body.text', 'is required and must not be empty');
      const startMs = parseStart(field(fields, 'start'));
      const extension = field(fields, 'extension');
      const language = field(fields, 'language');
      try {
        const message = await service.addText({
          text,
          ...(extension ? { extension } : {}),
          ...(language ? { language } : {}),
          description: field(fields, 'description') ?? '',
          startMs,
        });
        return view(message, false);
      } catch (error) {
        const http = toHttpError(error);
        const quiet = answerUnavailable(http, request, reply);
        if (quiet) return quiet;
        throw http;
      }
    },
  );

  app.delete(
    '/messages/:id',
    {
      schema: {
        tags: ['announce'],
        summary: 'Delete a message not yet played (404 otherwise)',
        operationId: 'deleteMessage',
        security: ACCESS_RULE_SECURITY,
        params: Type.Object({ id: Type.String({ description: 'the message id' }) }),
        response: {
          200: { ...MessageBody, description: 'Deleted; the message with its history fields' },
          ...errorResponses(GongErrorBody, [401, 403, 404, 503]),
        },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      // Opaque: uuid4s and old integer ids alike, compared exactly; nothing else can match.
      if (!/^[0-9A-Za-z-]{1,64}$/.test(id))
        throw new HttpError(404, `message ${JSON.stringify(id.slice(0, 20))} not found`);
      const cancelled = await service.remove(id);
      if (!cancelled) throw new HttpError(404, `message ${id} not found or already played`);
      return view(cancelled, true);
    },
  );
}
