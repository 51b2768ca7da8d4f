/**
 * `switchboard watch` over TCP, the whole CLI process: a fake Asterisk in its own process
 * streams as fast as the socket takes it; `watch --format jsonl` prints the call events to a
 * pipe this process reads (counting lines). Throughput is events sent / (last expected line
 * − first byte sent); peak RSS is the watch process's VmHWM. Two streams: the conformance
 * corpus, and the real-Asterisk-shaped one where two thirds of the events are ones the
 * engine ignores (`benchEvents('asterisk')`).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CallEngine } from '../src/calls/engine.ts';
import { benchEvents, type StreamKind } from './ami-stream.ts';
import type { BenchResult } from './table.ts';

const REPEAT = 200;
const BIN = join(import.meta.dirname, '..', 'bin', 'switchboard.js');

/** Call events the engine reports for the stream (what watch must print). */
export function expectedLines(kind: StreamKind): number {
  let count = 0;
  const engine = new CallEngine({
    onCallEvent: () => {
      count++;
    },
  });
  for (const event of benchEvents(kind, REPEAT)) engine.handle(event);
  return count;
}

/** VmHWM of a process, in MB. */
function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 'NaN');
  return kb / 1024;
}

export interface WatchRun {
  events: number;
  seconds: number;
  maxRssMb: number;
}

/** One run of watch against a fake Asterisk streaming `kind`. */
export async function watchRun(
  kind: StreamKind,
  lines: number,
  extraArgs: string[] = [],
): Promise<WatchRun> {
  const server = spawn(
    process.execPath,
    [join(import.meta.dirname, 'ami-server.ts'), String(REPEAT), kind],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const serverLines = createInterface({ input: server.stdout });
  const messages = serverLines[Symbol.asyncIterator]();
  try {
    const first = await messages.next();
    const { port, events } = JSON.parse(String(first.value)) as { port: number; events: number };
    const watch = spawn(
      process.execPath,
      [
        ...extraArgs,
        BIN,
        'watch',
        '--ami',
        `tcp://bench:bench@127.0.0.1:${port}`,
        '--format',
        'jsonl',
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    try {
      let seen = 0;
      let lastAtMs = 0;
      const allLines = new Promise<void>((resolve, reject) => {
        watch.stdout.on('data', (chunk: Buffer) => {
          let at = chunk.indexOf(10);
          while (at !== -1) {
            seen++;
            at = chunk.indexOf(10, at + 1);
          }
          if (seen >= lines) {
            lastAtMs = Date.now();
            resolve();
          }
        });
        watch.on('exit', (code) =>
          reject(new Error(`watch exited (${code}) after ${seen} of ${lines} lines`)),
        );
      });
      const started = await messages.next();
      const { startedAtMs } = JSON.parse(String(started.value)) as { startedAtMs: number };
      await allLines;
      const maxRssMb = peakRssMb(watch.pid as number);
      return { events, seconds: (lastAtMs - startedAtMs) / 1000, maxRssMb };
    } finally {
      watch.kill(extraArgs.some((a) => a.startsWith('--cpu-prof')) ? 'SIGINT' : 'SIGKILL');
    }
  } finally {
    serverLines.close();
    server.stdin.end();
    server.kill();
  }
}

/**
 * The ceiling under the same conditions: a raw socket that only counts `\r\n\r\n`
 * (bench/ami-raw-client.ts) against the same fake Asterisk and stream.
 */
export async function rawRun(kind: StreamKind): Promise<WatchRun> {
  const server = spawn(
    process.execPath,
    [join(import.meta.dirname, 'ami-server.ts'), String(REPEAT), kind],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const serverLines = createInterface({ input: server.stdout });
  const messages = serverLines[Symbol.asyncIterator]();
  try {
    const first = await messages.next();
    const { port, events } = JSON.parse(String(first.value)) as { port: number; events: number };
    const client = spawn(
      process.execPath,
      [join(import.meta.dirname, 'ami-raw-client.ts'), String(port), String(events)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const clientLines = createInterface({ input: client.stdout });
    const started = await messages.next();
    const { startedAtMs } = JSON.parse(String(started.value)) as { startedAtMs: number };
    const [line] = (await once(clientLines, 'line')) as [string];
    const { lastAtMs, maxRssMb } = JSON.parse(line) as { lastAtMs: number; maxRssMb: number };
    return { events, seconds: (lastAtMs - startedAtMs) / 1000, maxRssMb };
  } finally {
    serverLines.close();
    server.stdin.end();
    server.kill();
  }
}

export async function benchWatch(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  let worstRss = 0;
  for (const [kind, target, label] of [
    ['corpus', 720_000, 'conformance corpus stream'],
    ['asterisk', 1_200_000, 'real-Asterisk-shaped stream, 2/3 events the engine ignores'],
  ] as const) {
    const lines = expectedLines(kind);
    const runs: WatchRun[] = [];
    for (let run = 0; run < 3; run++) runs.push(await watchRun(kind, lines));
    const rates = runs.map((r) => r.events / r.seconds);
    const best = Math.max(...rates);
    const raw = await rawRun(kind);
    const ceiling = raw.events / raw.seconds;
    worstRss = Math.max(worstRss, ...runs.map((r) => r.maxRssMb));
    results.push({
      name: `switchboard watch over TCP, ${label}`,
      value: best,
      unit: 'events/s',
      target,
      note: `${runs[0]?.events.toLocaleString('en')} events, ${lines.toLocaleString('en')} call-event lines to a pipe; fake Asterisk in its own process; best of 3 (${rates.map((r) => `${Math.round(r / 1000)}k`).join(', ')})`,
    });
    results.push({
      name: `  ceiling: raw socket counting frames, same stream (${kind})`,
      value: ceiling,
      unit: 'events/s',
      note: `watch reaches ${Math.round((100 * best) / ceiling)} % of it`,
    });
  }
  results.push({
    name: 'switchboard watch: peak RSS',
    value: worstRss,
    unit: 'MB',
    target: 150,
    higherIsBetter: false,
    note: 'VmHWM of the watch process, worst of the runs above',
  });
  return results;
}
