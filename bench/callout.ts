/**
 * Alert-call escalations (issue 4): `serve` with the callout module (Asterisk provider) against
 * the PBX simulator's scripted answers, on SQLite and PostgreSQL: N simultaneous parallel
 * escalations of 10 people each (half the numbers busy, half press 1). Figures: POST
 * /api/v1/call throughput and p99 latency, wall time until every event is finished, p99 delay
 * between a call being due and being placed (target < 1 s), peak RSS of the process during
 * the run.
 *
 * The simulator runs in a worker thread (its own event loop, as a real PBX has its own
 * process); its heap still counts in the process's RSS. Environment: `BENCH_CALLOUT_EVENTS`
 * (N, default 1000), `BENCH_CALLOUT_DB` (`sqlite,postgres`), `BENCH_CALLOUT_DUMP` (a file to
 * write every placed call's due and placed times to, JSON), `BENCH_LOG_LEVEL` (service logs).
 */

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { type Kysely, sql } from 'kysely';
import { calloutServiceModule } from '../src/callout/index.ts';
import { loadConfig } from '../src/config/load.ts';
import type { ServiceModule } from '../src/serve/module.ts';
import { createService } from '../src/serve/service.ts';
import { openDatabase } from '../src/store/db.ts';
import { type BenchResult, percentile } from './table.ts';

const PG_URL = process.env.SWITCHBOARD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

// The workload and its exact check are shared with test/callout/load.test.ts, so they live
// in test/support (tests never import bench code).
import { benchRequest, checkBenchCalls } from '../test/support/callout-workload.ts';

export {
  BENCH_CALLS_PER_EVENT,
  benchRequest,
  benchSimulatorOptions,
  checkBenchCalls,
} from '../test/support/callout-workload.ts';

type Originates = Array<{ number: string; variables: Record<string, string> }>;

/** Starts the simulator in a worker thread (its own event loop, like a real PBX). */
async function startSimWorker() {
  const worker = new Worker(new URL('./callout-sim-worker.ts', import.meta.url));
  const next = () =>
    new Promise<{ url?: string; originates?: Originates }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
  const { url } = await next();
  if (!url) throw new Error('simulator worker did not start');
  return {
    url: () => url,
    originates: async (): Promise<Originates> => {
      const reply = next();
      worker.postMessage('originates');
      return (await reply).originates ?? [];
    },
    close: async () => {
      worker.postMessage('close');
      await new Promise((resolve) => worker.once('exit', resolve));
    },
  };
}

async function run(kind: 'sqlite' | 'postgres', events: number): Promise<BenchResult[]> {
  const sim = await startSimWorker();
  const dir = mkdtempSync(join(tmpdir(), 'bench-callout-'));
  const schema = `bench_callout_${process.pid}_${Date.now().toString(36)}`;
  const config = loadConfig({
    text: '',
    env: {},
    overrides: {
      listen: '127.0.0.1:0',
      database: kind === 'sqlite' ? join(dir, 'callout.db') : PG_URL,
      ami: [sim.url()],
    },
  });
  config.log.level = (process.env.BENCH_LOG_LEVEL ?? 'silent') as typeof config.log.level;
  config.callout.mediaDir = join(dir, 'media');
  config.callout.timeScale = 0.01;
  config.callout.pollIntervalMs = 100;
  config.callout.maxAddressees = 10;
  // Placements through the module's public seam (when each call became due, when it was placed).
  const placed: Array<{ dueAt: number; placedAt: number }> = [];
  const callout = calloutServiceModule({
    onPlaced: ({ dueAt, placedAt }) => placed.push({ dueAt, placedAt }),
  });
  const service = createService({
    config,
    modules: [callout as unknown as ServiceModule],
    ...(kind === 'postgres' ? { database: { schema, poolSize: 20 } } : {}),
  });
  const { url } = await service.start();
  while (!service.context?.ami.clients[0]?.connected) await new Promise((r) => setTimeout(r, 10));
  // Peak RSS during this run (the process's own high-water mark also covers earlier benchmarks).
  const startRss = process.memoryUsage.rss();
  let peakRss = startRss;
  const rssTimer = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 50);
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const pairs = benchRequest();
  const body = new URLSearchParams(pairs).toString();
  const started = performance.now();
  const client = new Worker(new URL('./callout-client-worker.ts', import.meta.url), {
    workerData: { url: `${url}/api/v1/call`, body, requests: events, concurrency: 50 },
  });
  const posted = await new Promise<{ latenciesMs: number[]; elapsedMs: number; failures: number }>(
    (resolve, reject) => {
      client.once('message', resolve);
      client.once('error', reject);
    },
  );
  await client.terminate();
  if (posted.failures > 0) throw new Error(`${posted.failures} POST /api/v1/call failed`);
  const latencies = posted.latenciesMs.sort((a, b) => a - b);
  const postedMs = posted.elapsedMs;
  const db = service.context?.db;
  if (!db) throw new Error('no db');
  const deadline = Date.now() + 180_000;
  for (;;) {
    const row = await sql<{
      n: number;
    }>`select count(*) as n from callout_event where status <> 2`.execute(db.db);
    if (Number(row.rows[0]?.n ?? 1) === 0) break;
    if (Date.now() > deadline) {
      const states = await sql<{
        state: string;
        outcome: string | null;
        n: number;
      }>`select state, outcome, count(*) as n from callout_attempt group by state, outcome`.execute(
        db.db,
      );
      throw new Error(
        `callout bench: ${row.rows[0]?.n} events unfinished after 3 min; attempts ${JSON.stringify(states.rows)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const wallS = (performance.now() - started) / 1000;
  // Exact counts, or the figures below are not about the workload they claim (throws).
  await checkBenchCalls(db.db as Kysely<unknown>, await sim.originates(), events);
  const delays = placed.map((p) => p.placedAt - p.dueAt).sort((a, b) => a - b);
  if (process.env.BENCH_CALLOUT_DUMP)
    writeFileSync(process.env.BENCH_CALLOUT_DUMP, JSON.stringify(placed));
  clearInterval(rssTimer);
  loopDelay.disable();
  const loopNote = `event-loop delay p99 ${Math.round(loopDelay.percentile(99) / 1e6)} ms, max ${Math.round(loopDelay.max / 1e6)} ms`;
  const rssMb = Math.max(peakRss, process.memoryUsage.rss()) / 2 ** 20;
  await service.stop();
  await sim.close();
  if (kind === 'postgres') {
    const admin = await openDatabase(PG_URL);
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(admin.db);
    await admin.close();
  }
  const label = `callout ${kind}`;
  return [
    {
      name: `${label}: POST /api/v1/call throughput`,
      value: events / (postedMs / 1000),
      unit: 'req/s',
      note: `${events} requests, 50 concurrent, from a worker thread`,
    },
    {
      name: `${label}: POST /api/v1/call p99`,
      value: percentile(latencies, 99),
      unit: 'ms',
      higherIsBetter: false,
    },
    {
      name: `${label}: ${events} escalations × 10 people, wall time`,
      value: wallS,
      unit: 's',
      higherIsBetter: false,
      note: `${placed.length} calls placed (parallel, frequency 2, half busy); ${loopNote}`,
    },
    {
      name: `${label}: due → placed p99`,
      value: percentile(delays, 99),
      unit: 'ms',
      target: 1000,
      higherIsBetter: false,
    },
    {
      name: `${label}: peak RSS`,
      value: rssMb,
      unit: 'MB',
      higherIsBetter: false,
      note: `sampled every 50 ms during the run (${Math.round(startRss / 2 ** 20)} MB at its start); simulator and client threads included`,
    },
  ];
}

/** The callout benchmark on SQLite then PostgreSQL. */
export async function benchCallout(): Promise<BenchResult[]> {
  const events = Number(process.env.BENCH_CALLOUT_EVENTS ?? 1000);
  const kinds = (process.env.BENCH_CALLOUT_DB ?? 'sqlite,postgres').split(',') as Array<
    'sqlite' | 'postgres'
  >;
  const results: BenchResult[] = [];
  for (const kind of kinds) results.push(...(await run(kind, events)));
  return results;
}
