/**
 * The readiness checks behind `/readyz` ({@link Readiness}). Re-exported by `server.ts`.
 *
 * @module
 */
import { TimeoutError, withTimeout } from '../util/timeout.ts';

/** Result of one readiness check. */
export interface CheckResult {
  ok: boolean;
  /** Short reason, shown in /readyz (never a secret). */
  detail?: string;
}

/** A readiness check: true/false, or a result with detail; may be async; throwing = not ready. */
export type ReadinessCheck = () => boolean | CheckResult | Promise<boolean | CheckResult>;

/** Registered readiness checks (e.g. `ami`: AMI connected, `bus`: bus connected). */
export class Readiness {
  readonly #checks = new Map<string, ReadinessCheck>();
  #closing = false;
  /** Longest time a check may take before counting as failed, ms. */
  readonly checkTimeoutMs: number;

  constructor(checkTimeoutMs = 2000) {
    this.checkTimeoutMs = checkTimeoutMs;
  }

  /** Registers (or replaces) a named check. Returns a function removing it. */
  add(name: string, check: ReadinessCheck): () => void {
    this.#checks.set(name, check);
    return () => {
      if (this.#checks.get(name) === check) this.#checks.delete(name);
    };
  }

  /** Marks the process as shutting down: every later run reports not ready. */
  markClosing(): void {
    this.#closing = true;
  }

  /** Runs every check in parallel; ready only if all pass and not shutting down. */
  async run(): Promise<{ ready: boolean; checks: Record<string, CheckResult>; failed: string[] }> {
    const entries = [...this.#checks];
    const results = await Promise.all(
      entries.map(async ([name, check]): Promise<[string, CheckResult]> => {
        try {
          const value = await withTimeout(
            Promise.resolve().then(check),
            this.checkTimeoutMs,
            `readiness check ${name}`,
          );
          return [name, typeof value === 'boolean' ? { ok: value } : value];
        } catch (error) {
          if (error instanceof TimeoutError) {
            return [name, { ok: false, detail: `timed out after ${this.checkTimeoutMs} ms` }];
          }
          return [name, { ok: false, detail: (error as Error).message || 'check failed' }];
        }
      }),
    );
    const checks = Object.fromEntries(results);
    if (this.#closing) checks.shutdown = { ok: false, detail: 'shutting down' };
    const failed = Object.entries(checks)
      .filter(([, r]) => !r.ok)
      .map(([name]) => name);
    return { ready: failed.length === 0, checks, failed };
  }
}
