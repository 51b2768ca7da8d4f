/**
 * The announce module itself (Gong API, issue 5): {@link createAnnounceModule} builds the
 * service, its routes and its worker from explicit options. The `serve` feature plugin that
 * builds it from the spine is `./index.ts` ({@link announceServiceModule} there), which also
 * re-exports everything here. See docs/announce.md.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { envelope } from '../bus/xivo.ts';
import type { AnnounceConfig, AuthConfig, TtsConfig } from '../config/schema.ts';
import type { App } from '../http/server.ts';
import { convertForAsterisk } from '../media/audio.ts';
import { MediaError } from '../media/errors.ts';
import type { RawAudioFormat } from '../media/format.ts';
import { createSpeechEngine, type SpeechEngine } from '../media/tts/index.ts';
import type { Database, MigrationSet } from '../store/db.ts';
import { ExtensionAllowList } from '../telephony/allowlist.ts';
import { type AnnounceMetrics, announceMetrics } from './metrics.ts';
import {
  callFilePlayer,
  originatePlayer,
  type PlaybackClient,
  type PlayResult,
} from './playback.ts';
import {
  AnnounceInputError,
  AnnounceQueueFullError,
  AnnounceUnavailableError,
  announceMigrations,
  MessageRepository,
  type MessageRow,
  PENDING_STATUSES,
} from './repository.ts';
import { announceRoutes } from './routes.ts';
import { type AnnounceEventKind, AnnounceScheduler } from './scheduler.ts';

/** A message as the API and the bus show it. Times are epoch ms. */
export interface MessageView {
  /** Opaque string id (`public_id`): a uuid4, or an old integer id as a string. */
  id: string;
  description: string;
  extension: string;
  /** Effective start (epoch ms). */
  startMs: number;
  /** Requested start (epoch ms). */
  requestedMs: number;
  status: MessageRow['status'];
  outcome: string;
  kind: MessageRow['kind'];
  attempts: number;
  /** Duration of the audio, leading silence included, ms. */
  durationMs: number;
  finishedMs: number | null;
}

/** What the API (and the Jenkins watcher) can do. */
export interface AnnounceService {
  /**
   * Converts an audio file to 8 kHz mono 16-bit WAV with the leading silence and schedules
   * it. Its format is detected from the content against the allow-list (`src/media/format.ts`),
   * never from its name. The input file is left in place (the caller removes it).
   * Without `extension` the message goes to `announce.extension` with
   * `announce.defaultLeadingSilenceMs` of leading silence, else `announce.leadingSilenceMs`
   * (Gong: 3 s and 1 s).
   * @throws {TelephonyValidationError} bad or missing extension, or one neither
   *   `announce.extension` nor matched by `announce.allowedExtensions`.
   * @throws {AnnounceUnavailableError} messages cannot be placed now (call-file spool missing).
   * @throws {AnnounceInputError} field `audio`: code `unsupported_audio_format` (not an
   *   allowed format), `not_audio` (corrupt, no samples), `too_long` (over
   *   `announce.maxDurationS`).
   * @throws {AnnounceQueueFullError} `announce.maxPending` messages already pending.
   * @throws {MediaError} `TOOL_MISSING`, `TIMEOUT`, `TOOL_FAILED`.
   */
  addAudio(input: {
    file: string;
    extension?: string;
    description?: string;
    startMs?: number;
  }): Promise<MessageView>;
  /**
   * Synthesizes `text` (espeak-ng offline, or VoiceRSS / a command per `tts`) and schedules it.
   * @throws {AnnounceInputError} empty text, text over `textLimitChars`, speech longer than
   *   `announce.maxDurationS` (code `too_long`).
   * @throws {AnnounceQueueFullError} `announce.maxPending` messages already pending.
   * @throws {MediaError} `UNSUPPORTED_LANGUAGE`, `TTS_SERVICE_ERROR`, `TTS_HTTP_ERROR`, ...
   * @throws {TelephonyValidationError} bad, missing or not allowed extension.
   * @throws {AnnounceUnavailableError} messages cannot be placed now (call-file spool missing).
   */
  addText(input: {
    text: string;
    extension?: string;
    language?: string;
    description?: string;
    startMs?: number;
  }): Promise<MessageView>;
  /** Pending messages by effective start; with `all`, every message (history included). */
  list(all?: boolean): Promise<MessageView[]>;
  /**
   * Cancels a message not yet played.
   * @param id the id the API shows (compared exactly as a string).
   * @returns it, or undefined (unknown / already played).
   */
  remove(id: string): Promise<MessageView | undefined>;
}

/** Dependencies of {@link createAnnounceModule}. */
export interface AnnounceModuleOptions {
  config: AnnounceConfig;
  tts: TtsConfig;
  auth: AuthConfig;
  database: Database;
  logger: Logger;
  /** `originate` or `callfile` (resolve `auto` before). */
  playback: 'originate' | 'callfile';
  /**
   * The AMI clients to originate with (originate playback), connected ones best first
   * (`connectedInOrder(clients, config.amiServers)`); a single client is accepted too.
   */
  ami?: () => readonly PlaybackClient[] | PlaybackClient | undefined;
  /** Publishes an event (`announce.<kind>`); e.g. `bus.publish`. */
  publish?: (routingKey: string, message: ReturnType<typeof envelope>) => void;
  /** `origin_uuid` of published events. */
  originUuid?: string;
  /** Replaces the speech engine built from `tts` (tests, benches). */
  speech?: SpeechEngine;
  /** Replaces the player (tests). */
  play?: (message: MessageRow) => Promise<PlayResult>;
  /** Call files' temporary directory (default `tmp` next to the spool). */
  callFileTmpDir?: string;
  /** Worker's longest sleep, ms (default 1000). */
  pollMs?: number;
  /**
   * Why messages cannot be placed right now (e.g. the call-file spool is missing), or
   * undefined when they can. While it answers a reason, adds are refused with
   * {@link AnnounceUnavailableError} (503) and the worker leaves due messages queued.
   */
  unavailable?: () => Promise<string | undefined>;
  /** Registry of the Prometheus series (`announce/metrics.ts`); none = not exported. */
  metricsRegistry?: Registry;
}

/** The assembled module. */
export interface AnnounceModule {
  readonly migrations: MigrationSet;
  /** Fastify plugin with Gong's routes (own access rule and error shape). */
  readonly plugin: (app: App) => Promise<void>;
  readonly service: AnnounceService;
  readonly scheduler: AnnounceScheduler;
  readonly repository: MessageRepository;
  /** Starts the worker. */
  start(): Promise<void>;
  /** Stops the worker (after the message in progress). Idempotent. */
  stop(): Promise<void>;
}

function toView(row: MessageRow): MessageView {
  return {
    id: row.public_id,
    description: row.description,
    extension: row.extension,
    startMs: Number(row.due_at),
    requestedMs: Number(row.requested_at),
    status: row.status,
    outcome: row.outcome,
    kind: row.kind,
    attempts: Number(row.attempts),
    durationMs: Number(row.duration_ms),
    finishedMs: row.finished_at === null ? null : Number(row.finished_at),
  };
}

/**
 * One info line (and the series of `metrics.ts`) per step of a message: `announce: scheduled`,
 * `announce: played`, `announce: spooled` (call file handed to Asterisk), `announce: failed`
 * (with its outcome), `announce: cancelled`. Ids, extension and times only: never the text.
 */
function logStep(
  logger: Logger,
  metrics: AnnounceMetrics,
  kind: AnnounceEventKind,
  row: MessageRow,
): void {
  const ids = { id: row.public_id, extension: row.extension };
  switch (kind) {
    case 'scheduled':
      metrics.scheduled.inc({ kind: row.kind });
      logger.info(
        {
          ...ids,
          kind: row.kind,
          start: new Date(Number(row.due_at)).toISOString(),
          durationMs: Number(row.duration_ms),
        },
        'announce: scheduled',
      );
      return;
    case 'played':
      metrics.played.inc();
      metrics.duration.observe(Number(row.duration_ms) / 1000);
      logger.info({ ...ids, attempts: Number(row.attempts) }, 'announce: played');
      return;
    case 'spooled':
      metrics.spooled.inc();
      logger.info({ ...ids, callfile: row.callfile_path }, 'announce: spooled (call file)');
      return;
    case 'failed':
      metrics.failed.inc({ outcome: row.outcome || 'error' });
      logger.info(
        { ...ids, outcome: row.outcome, attempts: Number(row.attempts) },
        'announce: failed',
      );
      return;
    case 'cancelled':
      logger.info(ids, 'announce: cancelled');
      return;
  }
}

/**
 * Builds the announce module.
 * @throws {MediaError} `INVALID_OPTION` when `tts` selects VoiceRSS without a key.
 * @throws {TelephonyValidationError} a bad `announce.extension` or `announce.allowedExtensions`
 *   entry (the field is the config key).
 */
export function createAnnounceModule(options: AnnounceModuleOptions): AnnounceModule {
  const { config } = options;
  const logger = options.logger.child({ module: 'announce' });
  const extensions = new ExtensionAllowList({
    defaultExtension: config.extension,
    allowed: config.allowedExtensions,
  });
  const soundsDir = path.resolve(config.soundsDir);
  const speech =
    options.speech ??
    createSpeechEngine(options.tts, { cacheDir: path.join(soundsDir, '.tts-cache') });
  const repository = new MessageRepository(options.database);
  const settings = {
    dialString: config.dialString,
    context: config.context,
    exten: config.contextExtension,
    soundVariable: config.soundVariable,
    callerId: config.callerId,
    ringTimeS: config.ringTimeS,
    maxRetries: config.maxRetries,
    retryTimeS: config.retryTimeS,
  };
  const play =
    options.play ??
    (options.playback === 'originate'
      ? originatePlayer(settings, options.ami ?? (() => undefined))
      : callFilePlayer({
          ...settings,
          spoolDir: config.spoolDir,
          ...(options.callFileTmpDir ? { tmpDir: options.callFileTmpDir } : {}),
        }));
  const metrics = announceMetrics(options.metricsRegistry);
  const publish = (kind: AnnounceEventKind, row: MessageRow) => {
    logStep(logger, metrics, kind, row);
    if (!options.publish) return;
    const view = toView(row);
    try {
      options.publish(
        `announce.${kind}`,
        envelope(`announce_${kind}`, options.originUuid ?? '', {
          id: view.id,
          description: view.description,
          extension: view.extension,
          start: new Date(view.startMs).toISOString(),
          requested_start: new Date(view.requestedMs).toISOString(),
          status: view.status,
          outcome: view.outcome,
          kind: view.kind,
          attempts: view.attempts,
          duration_ms: view.durationMs,
        }),
      );
    } catch (error) {
      logger.warn({ err: error }, 'announce: event not published');
    }
  };
  const scheduler = new AnnounceScheduler({
    repository,
    play,
    ringTimeS: config.ringTimeS,
    gapS: config.gapS,
    // Call files carry their own retries (Asterisk's MaxRetries).
    maxRetries: options.playback === 'originate' ? config.maxRetries : 0,
    retryTimeS: config.retryTimeS,
    logger,
    ...(options.unavailable ? { unavailable: options.unavailable } : {}),
    onEvent: (kind, row) => {
      publish(kind, row);
      if (kind === 'played' || kind === 'failed')
        void unlink(row.audio_path).catch(() => undefined);
    },
    ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
  });

  /**
   * The extension to dial and the leading silence: Gong's 3 s before a message to the default
   * ringer (the request gave none), 1 s before one to an extension the request gave.
   */
  const resolveTarget = (value: string | undefined) => ({
    extension: extensions.resolve(value, 'extension'),
    leadingSilenceS:
      (value === undefined || value === ''
        ? config.defaultLeadingSilenceMs
        : config.leadingSilenceMs) / 1000,
  });
  /** Refuses early (before any conversion) when messages cannot be placed or the queue is full. */
  const checkRoom = async (): Promise<void> => {
    const reason = await options.unavailable?.();
    if (reason !== undefined) throw new AnnounceUnavailableError(reason);
    if ((await repository.countPending()) >= config.maxPending) {
      throw new AnnounceQueueFullError(config.maxPending);
    }
  };
  const tooLong = (field: string, what: string) =>
    new AnnounceInputError(
      field,
      `${what} longer than ${config.maxDurationS} s (announce.maxDurationS)`,
      'too_long',
    );
  /** Conversion errors of an upload as the client's fault (400), with a machine code. */
  const uploadError = (error: unknown): unknown => {
    if (!(error instanceof MediaError)) return error;
    if (error.code === 'UNSUPPORTED_FORMAT') {
      return new AnnounceInputError('audio', error.message, 'unsupported_audio_format');
    }
    if (error.code === 'TOO_LONG') return tooLong('audio', 'the audio is');
    if (error.code === 'NOT_AUDIO')
      return new AnnounceInputError('audio', error.message, 'not_audio');
    return error;
  };
  const target = () =>
    path.join(soundsDir, `announce-${Date.now()}-${randomBytes(6).toString('hex')}.wav`);
  const schedule = async (
    row: Parameters<MessageRepository['insert']>[0],
  ): Promise<MessageView> => {
    const inserted = await repository.insertIfRoom(row, config.maxPending);
    await scheduler.recompute();
    const fresh = (await repository.get(inserted.id)) ?? inserted;
    publish('scheduled', fresh);
    scheduler.poke();
    return toView(fresh);
  };

  const service: AnnounceService = {
    async addAudio(input) {
      const { extension, leadingSilenceS } = resolveTarget(input.extension);
      await checkRoom();
      const out = target();
      const info = await convertForAsterisk(input.file, out, {
        leadingSilenceS,
        maxDurationS: config.maxDurationS,
        inputName: 'the uploaded file',
        ...(config.rawAudioFormat === 'none'
          ? {}
          : { rawFormat: config.rawAudioFormat as RawAudioFormat }),
      }).catch((error: unknown) => {
        throw uploadError(error);
      });
      try {
        return await schedule({
          description: input.description ?? '',
          extension,
          kind: 'audio',
          text: '',
          language: '',
          audio_path: out,
          duration_ms: Math.round(info.durationS * 1000),
          requested_at: input.startMs ?? Date.now(),
        });
      } catch (error) {
        await unlink(out).catch(() => undefined);
        throw error;
      }
    },
    async addText(input) {
      const { extension, leadingSilenceS } = resolveTarget(input.extension);
      if (input.text.trim() === '') throw new AnnounceInputError('text', 'must not be empty');
      if ([...input.text].length > config.textLimitChars) {
        throw new AnnounceInputError('text', `longer than ${config.textLimitChars} characters`);
      }
      await checkRoom();
      const language = input.language ?? config.language;
      const out = target();
      const info = await speech.synthesize(input.text, language, out, { leadingSilenceS });
      try {
        if (info.durationS - leadingSilenceS > config.maxDurationS + 0.0005) {
          throw tooLong('text', 'spoken, the text is');
        }
        return await schedule({
          description: input.description ?? '',
          extension,
          kind: 'tts',
          text: input.text,
          language,
          audio_path: out,
          duration_ms: Math.round(info.durationS * 1000),
          requested_at: input.startMs ?? Date.now(),
        });
      } catch (error) {
        await unlink(out).catch(() => undefined);
        throw error;
      }
    },
    async list(all = false) {
      const rows = await repository.list(all ? undefined : PENDING_STATUSES);
      return rows.map(toView);
    },
    async remove(id) {
      const row = await repository.cancel(id);
      if (!row) return undefined;
      await unlink(row.audio_path).catch(() => undefined);
      await scheduler.recompute();
      publish('cancelled', row);
      scheduler.poke();
      return toView(row);
    },
  };

  const plugin = async (app: App) => {
    await announceRoutes(app, {
      service,
      auth: options.auth,
      uploadLimitBytes: config.uploadLimitBytes,
      uploadDir: path.join(soundsDir, '.uploads'),
    });
  };
  let stopping: Promise<void> | undefined;
  return {
    migrations: announceMigrations,
    plugin,
    service,
    scheduler,
    repository,
    start: () => scheduler.start(),
    stop() {
      stopping ??= scheduler.stop();
      return stopping;
    },
  };
}
