/**
 * Start-up: `switchboard --help` and `switchboard replay <small recording>` as whole
 * processes (stdout to /dev/null), 20 runs each after 2 warm-ups; the median and the best.
 * `hyperfine -N -w 2 -r 20 'node bin/switchboard.js --help'` measures the same.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { BenchResult } from './table.ts';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'switchboard.js');
const SMALL = join(
  ROOT,
  'test',
  'fixtures',
  'conformance',
  'fixtures',
  'simple',
  'ab_a_cancel.json',
);

function times(args: string[]): number[] {
  const out: number[] = [];
  for (let run = 0; run < 22; run++) {
    const start = process.hrtime.bigint();
    const result = spawnSync(process.execPath, [BIN, ...args], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (result.status !== 0)
      throw new Error(`switchboard ${args.join(' ')} exited ${result.status}`);
    if (run >= 2) out.push(ms);
  }
  return out.sort((a, b) => a - b);
}

export async function benchStartup(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const [label, args] of [
    ['switchboard --help', ['--help']],
    ['switchboard replay <small file>', ['replay', SMALL, '--format', 'jsonl']],
  ] as const) {
    const ms = times([...args]);
    const median = ms[Math.floor(ms.length / 2)] as number;
    results.push({
      name: `start-up: ${label}, median`,
      value: median,
      unit: 'ms',
      target: 150,
      higherIsBetter: false,
      note: `20 runs; best ${(ms[0] as number).toFixed(0)} ms, worst ${(ms[ms.length - 1] as number).toFixed(0)} ms`,
    });
  }
  return results;
}
