/**
 * Benchmark helper: `switchboard serve` as a real child process (`node bin/switchboard.js
 * serve --config <file>`), configured by a YAML file written to a temporary directory.
 * The HTTP address is taken from the JSON log line `HTTP server listening`; `metric()` reads
 * one sample of its `/metrics`; `peakRssMb()` its VmHWM (Linux).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const BIN = join(import.meta.dirname, '..', 'bin', 'switchboard.js');

/** A running `serve` child. */
export interface ServeProcess {
  pid: number;
  /** Base URL of its HTTP server, e.g. `http://127.0.0.1:40123`. */
  url: string;
  /** `/metrics` as text. */
  metrics(): Promise<string>;
  /** Sum of the samples of `name` whose labels contain `labels` (NaN when none). */
  metric(name: string, labels?: string): Promise<number>;
  /** VmHWM of the process, MB. */
  peakRssMb(): number;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/** VmHWM of a process (Linux), MB. */
export function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 'NaN') / 1024;
}

/** Sum of the samples of `name` in a Prometheus text exposition (NaN when none). */
export function metricSum(text: string, name: string, labels = ''): number {
  let sum = Number.NaN;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    if (labels !== '' && !rest.includes(labels)) continue;
    const value = Number(rest.slice(rest.lastIndexOf(' ') + 1));
    sum = Number.isNaN(sum) ? value : sum + value;
  }
  return sum;
}

/** Starts `serve` with `yaml` (log level info, JSON lines on stdout are read for the URL). */
export async function startServe(yaml: string, nodeArgs: string[] = []): Promise<ServeProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'sb-bench-serve-'));
  const file = join(dir, 'switchboard.yaml');
  writeFileSync(file, yaml);
  const child: ChildProcess = spawn(
    process.execPath,
    [...nodeArgs, BIN, 'serve', '--config', file, '--log-format', 'json'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, SWITCHBOARD_CONFIG: '', SWITCHBOARD_ANNOUNCE_LISTEN: '127.0.0.1:0' },
    },
  );
  const pid = child.pid ?? 0;
  if (child.stdout === null) throw new Error('serve has no stdout');
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('serve did not listen within 60 s')), 60_000);
    child.once('exit', (code) => reject(new Error(`serve exited (${code}) before listening`)));
    lines.on('line', (line) => {
      if (!line.includes('HTTP server listening')) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { url: string }).url);
    });
  });
  lines.on('line', () => {}); // keep draining stdout
  const metrics = async () => (await fetch(`${url}/metrics`)).text();
  return {
    pid,
    url,
    metrics,
    metric: async (name, labels) => metricSum(await metrics(), name, labels),
    peakRssMb: () => peakRssMb(pid),
    stop: async () => {
      if (child.exitCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until `check` holds (polling every 50 ms), or throws after `timeoutMs`. */
export async function until(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A helper process speaking JSON lines on stdout and taking command lines on stdin. */
export interface LineChild {
  pid: number;
  /** The next JSON line it prints. */
  next<T = Record<string, unknown>>(): Promise<T>;
  send(line: string): void;
  /** Closes its stdin and waits for the exit. */
  close(): Promise<void>;
}

/** Spawns `node <script> ...args` as a {@link LineChild}. */
export function lineChild(script: string, args: string[] = []): LineChild {
  const child = spawn(process.execPath, [join(import.meta.dirname, script), ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const iterator = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    pid: child.pid ?? 0,
    next: async <T>() => {
      const { value, done } = await iterator.next();
      if (done) throw new Error(`${script} ended`);
      return JSON.parse(value) as T;
    },
    send: (line) => child.stdin.write(`${line}\n`),
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.stdin.end();
      await exited;
    },
  };
}
