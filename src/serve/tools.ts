/**
 * The external programs the enabled features of `serve` need (issue 14 §4, "failures are
 * never disguised"): sox for every audio file (alert-call messages, announcements, uploads)
 * and, with `tts.engine: espeak`, espeak-ng with the voices of the configured languages.
 * Alert calls need them with the Asterisk provider (their message is synthesized), the
 * announce module always. Checked at start (one `error` line per missing tool, naming what it
 * breaks and the package that brings it) and in `/readyz` (check `tools`: the last result,
 * looked at again in the background when older than {@link TOOLS_RECHECK_MS}: installing the
 * package makes the service ready without a restart). The checks are `switchboard doctor`'s (`src/doctor/`).
 *
 * @module
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { CheckResult, ReadinessCheck } from '../http/server.ts';
import type { Feature } from './module.ts';

/** Longest reuse of a tool check's result by `/readyz`, ms. */
export const TOOLS_RECHECK_MS = 30_000;

/** The features that need sox and the speech engine, by their names in log lines. */
export function toolFeatures(config: Config, features: readonly Feature[]): string[] {
  return features.flatMap((feature) => feature.toolUse?.(config) ?? []);
}

/**
 * Checks sox and the speech engine once for `features` (none: nothing to check).
 * @returns one problem per missing or broken tool (`espeak-ng: not installed (...)`), empty
 *   when everything is there.
 */
export async function checkTools(config: Config, features: readonly string[]): Promise<string[]> {
  if (features.length === 0) return [];
  // Loaded on use: the doctor's module imports serve's.
  const { checkEspeak, checkSox } = await import('../doctor/index.ts');
  const results = await Promise.all([checkSox(), checkEspeak(config)]);
  return results.filter((r) => !r.ok).map((r) => `${r.name}: ${r.detail}`);
}

/** What {@link toolReadiness} gives `serve`. */
export interface ToolReadiness {
  /** The `/readyz` check `tools`. */
  check: ReadinessCheck;
  /** Settles once the check at start is done (`serve` waits for it before saying it started). */
  checked: Promise<void>;
}

/**
 * The tool check of `serve`: runs {@link checkTools} now (logging each problem once at
 * `error`, and once when they are all solved), and gives the `/readyz` check, not ready while
 * a tool is missing.
 */
export function toolReadiness(
  config: Config,
  modules: readonly Feature[],
  logger: Logger,
): ToolReadiness {
  const features = toolFeatures(config, modules);
  let logged = new Set<string>();
  let checkedAt = 0;
  let result: string[] | undefined;
  let running: Promise<string[]> | undefined;
  const run = (): Promise<string[]> => {
    if (running) return running;
    checkedAt = Date.now();
    running = checkTools(config, features)
      .then((problems) => {
        for (const problem of problems) {
          if (logged.has(problem)) continue;
          logger.error(
            { tool: problem.split(':')[0], features },
            `tools: ${problem}; ${features.join(' and ')} cannot work until it is installed (/readyz reports tools not ready)`,
          );
        }
        if (problems.length === 0 && logged.size > 0) {
          logger.info('tools: every needed tool found');
        }
        logged = new Set(problems);
        result = problems;
        return problems;
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const checked =
    features.length > 0
      ? run().then(
          () => undefined,
          () => undefined,
        )
      : Promise.resolve();
  const check = async (): Promise<CheckResult> => {
    if (features.length === 0) return { ok: true, detail: 'no feature needs sox or espeak-ng' };
    // The last result at once; a stale one is looked at again in the background.
    if (Date.now() - checkedAt > TOOLS_RECHECK_MS) void run().catch(() => undefined);
    const problems = result ?? (await run());
    return problems.length === 0
      ? { ok: true }
      : { ok: false, detail: `${problems.join('; ')} (needed by ${features.join(', ')})` };
  };
  return { check, checked };
}
