/**
 * The dry-run provider (`testflg=1`, or `callout.provider: dryrun`): places no call; after
 * `dryRun.delayMs` it reports the configured result for the number (`dryRun.numbers`) or the
 * default (`dryRun.answer`): `1` / `2` = answered with that key, `noanswer`, `busy`,
 * `failed`. Source: seed parameter `testflg` (1 = 架電しない, no call).
 */
import type { AttemptSink, CalloutProvider, DialRequest } from './types.ts';

/** Options of {@link createDryRunProvider} (the `callout.dryRun` section). */
export interface DryRunOptions {
  /** Simulated call duration, in ms. */
  delayMs: number;
  /** Default result: a key (`1`, `2`, other digits count as no key) or an outcome name. */
  answer: string;
  /** Per-number results. */
  numbers: Readonly<Record<string, string>>;
}

/** Builds the dry-run provider. */
export function createDryRunProvider(options: DryRunOptions): CalloutProvider {
  const timers = new Set<NodeJS.Timeout>();
  return {
    name: 'dryrun',
    async dial(request: DialRequest, sink: AttemptSink) {
      await sink.placed(request.attemptId, `dryrun-${request.attemptId}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          timers.delete(timer);
          resolve();
        }, options.delayMs);
        timers.add(timer);
      });
      const result = options.numbers[request.telno] ?? options.answer;
      if (result === 'noanswer' || result === 'busy' || result === 'failed') {
        await sink.finished(request.attemptId, result);
      } else if (/^[0-9*#]$/.test(result)) {
        await sink.finished(request.attemptId, 'answered', result);
      } else {
        await sink.finished(request.attemptId, 'answered');
      }
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}
