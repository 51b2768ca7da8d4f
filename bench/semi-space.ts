/**
 * What `--max-semi-space-size=4` (V8's young generation capped at 4 MB per semi-space) does
 * to `watch` and `serve` under the corpus firehose: runs alternate with V8's default
 * sizing (`=0`) and with the flag (3 pairs for watch, 2 for serve, in-process bus), reporting the best rate and the
 * worst peak RSS of each. Evidence for the docs, not a target.
 */
import { serveRun } from './serve.ts';
import type { BenchResult } from './table.ts';
import { expectedLines, watchRun } from './watch.ts';

const FLAG = '--max-semi-space-size=4';
/** V8's own sizing (0 = default); given, it also keeps bin/switchboard.js from adding FLAG. */
const DEFAULT = '--max-semi-space-size=0';

export async function benchSemiSpace(): Promise<BenchResult[]> {
  const lines = expectedLines('corpus');
  const results: BenchResult[] = [];
  const watch: Record<string, Array<{ rate: number; rss: number }>> = { default: [], flag: [] };
  for (let i = 0; i < 3; i++) {
    for (const [label, args] of [
      ['default', [DEFAULT]],
      ['flag', [FLAG]],
    ] as const) {
      const r = await watchRun('corpus', lines, [...args]);
      watch[label]?.push({ rate: r.events / r.seconds, rss: r.maxRssMb });
    }
  }
  const serve: Record<string, Array<{ rate: number; rss: number }>> = { default: [], flag: [] };
  for (let i = 0; i < 2; i++) {
    for (const [label, args] of [
      ['default', [DEFAULT]],
      ['flag', [FLAG]],
    ] as const) {
      const r = await serveRun('', 'xivo', [...args]);
      serve[label]?.push({ rate: r.events / r.seconds, rss: r.peakRssMb });
    }
  }
  for (const [what, runs] of [
    ['watch', watch],
    ['serve (in-process bus)', serve],
  ] as const) {
    for (const label of ['default', 'flag'] as const) {
      const list = runs[label] ?? [];
      const note = `runs ${list.map((r) => `${Math.round(r.rate / 1000)}k/s ${r.rss.toFixed(0)} MB`).join(', ')}; alternating with the other setting`;
      const name = `${what}, corpus stream, ${label === 'flag' ? FLAG : `V8 default (${DEFAULT})`}`;
      results.push(
        {
          name: `${name}: rate`,
          value: Math.max(...list.map((r) => r.rate)),
          unit: 'events/s',
          note,
        },
        {
          name: `${name}: peak RSS`,
          value: Math.max(...list.map((r) => r.rss)),
          unit: 'MB',
          higherIsBetter: false,
          note,
        },
      );
    }
  }
  return results;
}

if (import.meta.main) {
  const { formatTable } = await import('./table.ts');
  console.log(formatTable(await benchSemiSpace()));
}
