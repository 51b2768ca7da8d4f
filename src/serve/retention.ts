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
 * Each step is a plain function of the feature that owns the rows or files
 * (`src/callout/retention.ts`, `src/announce/retention.ts`, registered with
 * `app.store.addRetention`; tested on SQLite and PostgreSQL); this module runs the registered
 * rules and logs one `info` line when something was deleted. A step that fails is
 * logged (`warn`) and the others run. Several processes on one database may all run it:
 * every statement is idempotent.
 *
 * @module
 */
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { Config, RetentionConfig } from '../config/schema.ts';
import type { App } from '../http/server.ts';
import { pruneSpeechCache } from '../media/tts/cache.ts';
import type { Database } from '../store/db.ts';
import type { RetentionRule } from '../store/retention.ts';
import type { Feature, FeaturePlugin } from './module.ts';

const DAY_MS = 86_400_000;

/**
 * What one {@link runRetention} deleted: `mediaFiles`, `cacheFiles`, `cacheBytes`, and one
 * history count per rule under its `historyLabel` (`escalations`, `announcements`).
 */
export type RetentionResult = {
  mediaFiles: number;
  cacheFiles: number;
  cacheBytes: number;
} & Record<string, number>;

/**
 * Applies every rule once (see the module comment): each rule's media first (a file is
 * judged by its escalation or announcement while that is still there), then each rule's
 * history (unless `retention.historyDays` is 0), then every speech cache directory.
 * @param rules the features' rules (`app.store.retentionRules()` in `serve`).
 * @param onError called for a step that failed (the others still run).
 */
export async function runRetention(
  database: Database,
  config: Config,
  rules: readonly RetentionRule[],
  nowMs = Date.now(),
  onError: (step: string, error: unknown) => void = () => {},
): Promise<RetentionResult> {
  const r: RetentionConfig = config.retention;
  const result: RetentionResult = { mediaFiles: 0, cacheFiles: 0, cacheBytes: 0 };
  for (const rule of rules) result[rule.historyLabel] = 0;
  const step = async (name: string, run: () => Promise<void>) => {
    try {
      await run();
    } catch (error) {
      onError(name, error);
    }
  };
  const mediaCutoff = nowMs - r.mediaGraceMinutes * 60_000;
  for (const rule of rules) {
    const prune = rule.pruneMedia;
    if (!prune) continue;
    await step(`${rule.name} media`, async () => {
      result.mediaFiles += await prune(database, config, mediaCutoff);
    });
  }
  if (r.historyDays > 0) {
    const cutoff = nowMs - r.historyDays * DAY_MS;
    for (const rule of rules) {
      const prune = rule.pruneHistory;
      if (!prune) continue;
      await step(`${rule.name} history`, async () => {
        result[rule.historyLabel] = await prune(database, cutoff);
      });
    }
  }
  for (const dir of rules.flatMap((rule) => rule.cacheDirs?.(config) ?? [])) {
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
 * Retention as a Fastify plugin (name `retention`; needs `switchboard-store`): runs the rules
 * the features registered (`app.store.addRetention`: callout's and announce's, in
 * `src/<feature>/retention.ts`) once in `onReady` and
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
          const rules = app.store.retentionRules();
          const result = await runRetention(app.db, ctx.config, rules, Date.now(), (step, error) =>
            logger.warn({ err: error, step }, 'retention: step failed; the others ran'),
          );
          for (const rule of rules) {
            deleted.inc({ what: rule.historyLabel }, result[rule.historyLabel] ?? 0);
          }
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
      dependencies: ['switchboard-store'],
      fastify: '5.x',
    },
  );
}

/** Retention in the feature list (src/serve/modules.ts, after the features with rules): its plugin. */
export const retentionFeature: Feature = {
  name: 'retention',
  plugin: () => retentionServiceModule(),
};
