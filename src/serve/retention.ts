/**
 * Retention (issue 14 §4): what `serve` deletes, and when (`retention.*`, docs/deploy.md,
 * "Retention"). Run once at start and every `retention.intervalMinutes`:
 *
 * - **History**: finished alert-call escalations (status 2 or 99, `finished_at` older than
 *   `historyDays`) with their people and calls; finished announcements (`played`, `failed`,
 *   `spooled`, `cancelled`, `finished_at` older than `historyDays`). Pending ones (status 0
 *   or 1; `scheduled`, `playing`) are never deleted, whatever their age.
 * - **Converted audio**: `callout-<eventid>-<language>.wav` in `callout.mediaDir` once its
 *   escalation finished `mediaGraceMinutes` ago (or is unknown and the file that old);
 *   `announce-*.wav` in `announce.soundsDir` once its announcement finished that long ago
 *   (or no message refers to it and the file is that old). Files of pending ones are kept.
 * - **Speech cache** (`<mediaDir>/cache`, `<soundsDir>/.tts-cache`): entries not used for
 *   `ttsCacheDays`, then the least recently used while a directory is over `ttsCacheMaxMB`
 *   (`pruneSpeechCache`).
 *
 * Each step is a plain function of its own (tested on SQLite and PostgreSQL); the module
 * runs them and logs one `info` line when something was deleted. A step that fails is
 * logged (`warn`) and the others run. Several processes on one database may all run it:
 * every statement is idempotent.
 *
 * @module
 */
import { readdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import fp from 'fastify-plugin';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { AnnounceTables } from '../announce/repository.ts';
import { calloutDb } from '../callout/repository.ts';
import type { Config, RetentionConfig } from '../config/schema.ts';
import type { App } from '../http/server.ts';
import { pruneSpeechCache } from '../media/tts/cache.ts';
import type { Database } from '../store/db.ts';
import type { Feature, FeaturePlugin } from './module.ts';

const DAY_MS = 86_400_000;
/** Rows deleted per statement (PostgreSQL takes at most 65,535 parameters). */
const BATCH = 1000;

/** Callout event statuses that are final (seed: 2 finished, 99 system error). */
const FINAL_EVENT = [2, 99];
/** Announcement statuses that are final. */
const FINAL_MESSAGE = ['played', 'failed', 'spooled', 'cancelled'];

/**
 * Deletes finished escalations (status 2 or 99) whose `finished_at` is before `cutoffMs`,
 * with their calls and people, in batches (one transaction each). Pending escalations
 * (status 0, 1) are never touched.
 * @returns how many escalations were deleted.
 */
export async function pruneCalloutHistory(database: Database, cutoffMs: number): Promise<number> {
  const db = calloutDb(database);
  let deleted = 0;
  for (;;) {
    const ids = (
      await db
        .selectFrom('callout_event')
        .select('id')
        .where('status', 'in', FINAL_EVENT)
        .where('finished_at', 'is not', null)
        .where('finished_at', '<', cutoffMs)
        .limit(BATCH)
        .execute()
    ).map((row) => row.id);
    if (ids.length === 0) return deleted;
    await db.transaction().execute(async (trx) => {
      await trx.deleteFrom('callout_attempt').where('event_id', 'in', ids).execute();
      await trx.deleteFrom('callout_person').where('event_id', 'in', ids).execute();
      await trx
        .deleteFrom('callout_event')
        .where('id', 'in', ids)
        .where('status', 'in', FINAL_EVENT)
        .execute();
    });
    deleted += ids.length;
    if (ids.length < BATCH) return deleted;
  }
}

/**
 * Deletes finished announcements (`played`, `failed`, `spooled`, `cancelled`) whose
 * `finished_at` is before `cutoffMs`, and their audio files if still there. Pending ones
 * (`scheduled`, `playing`) are never touched.
 * @returns how many announcements were deleted.
 */
export async function pruneAnnounceHistory(database: Database, cutoffMs: number): Promise<number> {
  const db = database.db as Kysely<AnnounceTables>;
  let deleted = 0;
  for (;;) {
    const rows = await db
      .selectFrom('announce_message')
      .select(['id', 'audio_path'])
      .where('status', 'in', FINAL_MESSAGE as never[])
      .where('finished_at', 'is not', null)
      .where('finished_at', '<', cutoffMs)
      .limit(BATCH)
      .execute();
    if (rows.length === 0) return deleted;
    await db
      .deleteFrom('announce_message')
      .where(
        'id',
        'in',
        rows.map((r) => Number(r.id)),
      )
      .where('status', 'in', FINAL_MESSAGE as never[])
      .execute();
    for (const row of rows) await unlink(row.audio_path).catch(() => undefined);
    deleted += rows.length;
    if (rows.length < BATCH) return deleted;
  }
}

/** `callout-<eventid>-<language>.wav` (the Asterisk provider's file of one escalation). */
const CALLOUT_FILE = /^callout-([0-9A-HJKMNP-TV-Z]{26})-[0-9A-Za-z-]{1,16}\.wav$/;

/** Files in `dir` matching `pattern`, with their mtime (epoch ms); none when `dir` is missing. */
async function files(dir: string, pattern: RegExp) {
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: { name: string; file: string; mtimeMs: number; match: RegExpExecArray }[] = [];
  for (const name of names) {
    const match = pattern.exec(name);
    if (!match) continue;
    const file = path.join(dir, name);
    const info = await stat(file).catch(() => undefined);
    if (info?.isFile()) out.push({ name, file, mtimeMs: info.mtimeMs, match });
  }
  return out;
}

/**
 * Deletes the converted message of each escalation (`callout-<eventid>-<language>.wav` in
 * `mediaDir`) whose escalation finished before `cutoffMs`, or is not in the database (any
 * more) and whose file is older than `cutoffMs`. Files of pending escalations and the
 * shared confirmation files stay.
 * @returns how many files were deleted.
 */
export async function pruneCalloutMedia(
  database: Database,
  mediaDir: string,
  cutoffMs: number,
): Promise<number> {
  const found = await files(mediaDir, CALLOUT_FILE);
  if (found.length === 0) return 0;
  const db = calloutDb(database);
  const ids = [...new Set(found.map((f) => f.match[1] as string))];
  const events = new Map<string, { status: number; finished_at: number | null }>();
  for (let i = 0; i < ids.length; i += BATCH) {
    for (const row of await db
      .selectFrom('callout_event')
      .select(['id', 'status', 'finished_at'])
      .where('id', 'in', ids.slice(i, i + BATCH))
      .execute()) {
      events.set(row.id, {
        status: Number(row.status),
        finished_at: row.finished_at === null ? null : Number(row.finished_at),
      });
    }
  }
  let deleted = 0;
  for (const f of found) {
    const event = events.get(f.match[1] as string);
    const old =
      event === undefined
        ? f.mtimeMs < cutoffMs
        : FINAL_EVENT.includes(event.status) &&
          event.finished_at !== null &&
          event.finished_at < cutoffMs;
    if (!old) continue;
    await unlink(f.file).catch(() => undefined);
    deleted++;
  }
  return deleted;
}

/** `announce-<ms>-<hex>.wav` (the announce module's converted files). */
const ANNOUNCE_FILE = /^announce-\d+-[0-9a-f]+\.wav$/;

/**
 * Deletes the converted audio of announcements (`announce-*.wav` in `soundsDir`) that
 * finished before `cutoffMs` (a `spooled` one: its call file may have been retried by
 * Asterisk until then), or that no message refers to and whose file is older than
 * `cutoffMs`. Files of pending announcements stay.
 * @returns how many files were deleted.
 */
export async function pruneAnnounceMedia(
  database: Database,
  soundsDir: string,
  cutoffMs: number,
): Promise<number> {
  const found = await files(soundsDir, ANNOUNCE_FILE);
  if (found.length === 0) return 0;
  const db = database.db as Kysely<AnnounceTables>;
  const rows = new Map<string, { status: string; finished_at: number | null }>();
  const paths = found.map((f) => f.file);
  for (let i = 0; i < paths.length; i += BATCH) {
    for (const row of await db
      .selectFrom('announce_message')
      .select(['audio_path', 'status', 'finished_at'])
      .where('audio_path', 'in', paths.slice(i, i + BATCH))
      .execute()) {
      const previous = rows.get(row.audio_path);
      // a file referred to by a pending message (a copy, a retry) is kept
      if (previous && !FINAL_MESSAGE.includes(previous.status)) continue;
      rows.set(row.audio_path, {
        status: row.status,
        finished_at: row.finished_at === null ? null : Number(row.finished_at),
      });
    }
  }
  let deleted = 0;
  for (const f of found) {
    const row = rows.get(f.file);
    const old =
      row === undefined
        ? f.mtimeMs < cutoffMs
        : FINAL_MESSAGE.includes(row.status) &&
          row.finished_at !== null &&
          row.finished_at < cutoffMs;
    if (!old) continue;
    await unlink(f.file).catch(() => undefined);
    deleted++;
  }
  return deleted;
}

/** What one {@link runRetention} deleted. */
export interface RetentionResult {
  escalations: number;
  announcements: number;
  mediaFiles: number;
  cacheFiles: number;
  cacheBytes: number;
}

/** The directories {@link runRetention} looks at (resolved from the config). */
export function retentionDirs(config: Config): {
  mediaDirs: { callout: string; announce: string };
  cacheDirs: string[];
} {
  const callout = path.resolve(config.callout.mediaDir);
  const announce = path.resolve(config.announce.soundsDir);
  return {
    mediaDirs: { callout, announce },
    cacheDirs: [path.join(callout, 'cache'), path.join(announce, '.tts-cache')],
  };
}

/**
 * Applies every rule of `retention` once (see the module comment).
 * @param onError called for a step that failed (the others still run).
 */
export async function runRetention(
  database: Database,
  config: Config,
  nowMs = Date.now(),
  onError: (step: string, error: unknown) => void = () => {},
): Promise<RetentionResult> {
  const r: RetentionConfig = config.retention;
  const result: RetentionResult = {
    escalations: 0,
    announcements: 0,
    mediaFiles: 0,
    cacheFiles: 0,
    cacheBytes: 0,
  };
  const step = async (name: string, run: () => Promise<void>) => {
    try {
      await run();
    } catch (error) {
      onError(name, error);
    }
  };
  const dirs = retentionDirs(config);
  // Media first: a file is judged by its escalation or announcement while it is still there.
  const mediaCutoff = nowMs - r.mediaGraceMinutes * 60_000;
  await step('callout media', async () => {
    result.mediaFiles += await pruneCalloutMedia(database, dirs.mediaDirs.callout, mediaCutoff);
  });
  await step('announce media', async () => {
    result.mediaFiles += await pruneAnnounceMedia(database, dirs.mediaDirs.announce, mediaCutoff);
  });
  if (r.historyDays > 0) {
    const cutoff = nowMs - r.historyDays * DAY_MS;
    await step('callout history', async () => {
      result.escalations = await pruneCalloutHistory(database, cutoff);
    });
    await step('announce history', async () => {
      result.announcements = await pruneAnnounceHistory(database, cutoff);
    });
  }
  for (const dir of dirs.cacheDirs) {
    await step(`speech cache ${dir}`, async () => {
      const pruned = await pruneSpeechCache(dir, {
        nowMs,
        ...(r.ttsCacheDays > 0 ? { maxAgeMs: r.ttsCacheDays * DAY_MS } : {}),
        ...(r.ttsCacheMaxMB > 0 ? { maxBytes: r.ttsCacheMaxMB * 1024 * 1024 } : {}),
      });
      result.cacheFiles += pruned.removed;
      result.cacheBytes += pruned.removedBytes;
    });
  }
  return result;
}

/** `switchboard_retention_deleted_total{what}`: rows and files deleted by retention. */
function deletedCounter(registry: Registry): Counter<'what'> {
  const name = 'switchboard_retention_deleted_total';
  return (
    (registry.getSingleMetric(name) as Counter<'what'> | undefined) ??
    new Counter({
      name,
      help: 'Deleted by retention: escalations, announcements (history rows), media_files, cache_files',
      labelNames: ['what'],
      registers: [registry],
    })
  );
}

/**
 * Retention as a Fastify plugin (name `retention`; needs `switchboard-store` and the
 * features whose history it deletes, `callout` and `announce`): runs once in `onReady` and
 * every `retention.intervalMinutes`; `onClose` stops the timer and waits for a run in
 * progress.
 */
export function retentionServiceModule(): FeaturePlugin {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  return fp(
    async (app: App) => {
      const ctx = app.switchboard;
      app.addHook('onReady', async () => {
        stopped = false;
        const logger: Logger = ctx.logger.child({ module: 'retention' });
        const deleted = deletedCounter(ctx.metrics.registry);
        const once = async () => {
          const result = await runRetention(app.db, ctx.config, Date.now(), (step, error) =>
            logger.warn({ err: error, step }, 'retention: step failed; the others ran'),
          );
          deleted.inc({ what: 'escalations' }, result.escalations);
          deleted.inc({ what: 'announcements' }, result.announcements);
          deleted.inc({ what: 'media_files' }, result.mediaFiles);
          deleted.inc({ what: 'cache_files' }, result.cacheFiles);
          if (Object.values(result).some((n) => n > 0)) logger.info(result, 'retention: deleted');
        };
        const tick = () => {
          if (stopped || running) return;
          running = once()
            .catch((error: unknown) => logger.warn({ err: error }, 'retention: run failed'))
            .finally(() => {
              running = undefined;
            });
        };
        tick();
        timer = setInterval(tick, ctx.config.retention.intervalMinutes * 60_000);
        timer.unref?.();
      });
      app.addHook('onClose', async () => {
        stopped = true;
        clearInterval(timer);
        await running;
      });
    },
    {
      name: 'retention',
      dependencies: ['switchboard-store', 'callout', 'announce'],
      fastify: '5.x',
    },
  );
}

/** Retention in the feature list (src/serve/modules.ts, after callout and announce): its plugin. */
export const retentionFeature: Feature = {
  name: 'retention',
  plugin: () => retentionServiceModule(),
};
