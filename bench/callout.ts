/**
 * Alert-call escalations (issue 4): `serve` with the callout module (Asterisk provider) against
 * the PBX simulator's scripted answers, on SQLite and PostgreSQL: N simultaneous parallel
 * escalations of 10 people each (half the numbers busy, half press 1). Figures: POST
 * /api/v1/call throughput and p99 latency, wall time until every event is finished, p99 delay
 * between a call being due and being placed (target < 1 s), peak RSS of the process (service
 * and simulator together). `BENCH_CALLOUT_EVENTS` overrides N (default 1000).
 */

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { calloutServiceModule } from '../src/callout/index.ts';
import { loadConfig } from '../src/config/load.ts';
import type { ServiceModule } from '../src/serve/module.ts';
import { createService } from '../src/serve/service.ts';
import { startSimulator } from '../src/sim/index.ts';
import { openDatabase } from '../src/store/db.ts';
import type { BenchResult } from './table.ts';

const PG_URL = process.env.SWITCHBOARD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0;
}

async function run(kind: 'sqlite' | 'postgres', events: number): Promise<BenchResult[]> {
  const scripts: Record<string, object> = {};
  for (let i = 0; i < 10; i += 1) {
    scripts[`700${i}`] =
      i % 2 === 0
        ? { outcome: 'busy', answerAfterMs: 200 }
        : { answerAfterMs: 200, dtmf: '1', dtmfAfterMs: 100, hangupAfterMs: 2000 };
  }
  const sim = await startSimulator({
    port: 0,
    scripts,
    dtmfDurationMs: 20,
    dialplan: {
      'switchboard-callout': {
        playback: '',
        read: 'DIGIT,x,1,,1,1',
        readTimeoutMs: 1000,
        userEvent: {
          name: 'SwitchboardDTMF',
          // biome-ignore lint/suspicious/noTemplateCurlyInString: dialplan variables
          fields: { Digit: '${DIGIT}', CallId: '${SWITCHBOARD_CALL_ID}' },
        },
      },
    },
    maxRecordedActions: 100_000,
  });
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
  config.log.level = 'silent';
  config.callout.mediaDir = join(dir, 'media');
  config.callout.timeScale = 0.01;
  config.callout.pollIntervalMs = 100;
  config.callout.maxAddressees = 10;
  const callout = calloutServiceModule();
  const service = createService({
    config,
    modules: [callout as unknown as ServiceModule],
    ...(kind === 'postgres' ? { database: { schema, poolSize: 20 } } : {}),
  });
  const { url } = await service.start();
  while (!service.context?.ami.clients[0]?.connected) await new Promise((r) => setTimeout(r, 10));
  const pairs: Array<[string, string]> = [
    ['hostname', 'db1'],
    ['operator', 'bench'],
    ['calltype', '2'],
    ['frequency', '2'],
    ['language', 'en'],
    ['message', 'Disk full'],
    ['headid', '2'],
    ['footid', '1'],
    ...Array.from({ length: 10 }, (_, i): [string, string] => [
      'addressee',
      `${i + 1}:u${i}:700${i}:N:1`,
    ]),
  ];
  const body = new URLSearchParams(pairs).toString();
  const latencies: number[] = [];
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next < events) {
        next += 1;
        const t = performance.now();
        const response = await fetch(`${url}/api/v1/call`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body,
        });
        await response.arrayBuffer();
        latencies.push(performance.now() - t);
      }
    }),
  );
  const postedMs = performance.now() - started;
  const db = service.context?.db;
  if (!db) throw new Error('no db');
  for (;;) {
    const row = await sql<{
      n: number;
    }>`select count(*) as n from callout_event where status <> 2`.execute(db.db);
    if (Number(row.rows[0]?.n ?? 1) === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const wallS = (performance.now() - started) / 1000;
  const placed = callout.instance?.service.placedLog ?? [];
  const delays = placed.map((p) => p.placedAt - p.dueAt);
  const rssMb = process.resourceUsage().maxRSS / 1024;
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
      note: `${events} requests, 50 concurrent`,
    },
    {
      name: `${label}: POST /api/v1/call p99`,
      value: p99(latencies),
      unit: 'ms',
      higherIsBetter: false,
    },
    {
      name: `${label}: ${events} escalations × 10 people, wall time`,
      value: wallS,
      unit: 's',
      higherIsBetter: false,
      note: `${placed.length} calls placed (parallel, frequency 2, half busy)`,
    },
    {
      name: `${label}: due → placed p99`,
      value: p99(delays),
      unit: 'ms',
      target: 1000,
      higherIsBetter: false,
    },
    {
      name: `${label}: peak RSS (service + simulator)`,
      value: rssMb,
      unit: 'MB',
      higherIsBetter: false,
      note: 'process high-water mark so far',
    },
  ];
}

/** The callout benchmark on SQLite then PostgreSQL. */
export async function benchCallout(): Promise<BenchResult[]> {
  const events = Number(process.env.BENCH_CALLOUT_EVENTS ?? 1000);
  return [...(await run('sqlite', events)), ...(await run('postgres', events))];
}
