/**
 * `switchboard serve` under the AMI firehose with nobody subscribed to `ami.*`: a fake
 * Asterisk in its own process (bench/ami-server.ts) streams the conformance corpus stream
 * as fast as the socket takes it (the `watch` benchmark's stream), to `serve` as a real
 * child process. Two buses: the in-process one (no subscriber), and RabbitMQ with an
 * exchange of its own that no queue is bound to. Reports the serve process's peak RSS
 * (VmHWM, start-up included) and its rate: events counted in
 * `switchboard_ami_events_received_total` / (time the count reached the stream's events −
 * first byte sent).
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'amqplib';
import { lineChild, metricSum, startServe, until } from './serve-process.ts';
import type { BenchResult } from './table.ts';

const REPEAT = 200;
const URL = process.env.SWITCHBOARD_BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672/';

/** One serve run: events, seconds, VmHWM, ami.* messages dropped. */
export interface ServeRun {
  events: number;
  seconds: number;
  peakRssMb: number;
  dropped: number;
}

/** One run of serve (bus `amqpUrl`, empty = in-process) against the corpus stream. */
export async function serveRun(
  amqpUrl: string,
  exchange: string,
  nodeArgs: string[] = [],
): Promise<ServeRun> {
  const pbx = lineChild('ami-server.ts', [String(REPEAT), 'corpus']);
  const { port, events } = await pbx.next<{ port: number; events: number }>();
  const serve = await startServe(
    [
      'http: { listen: "127.0.0.1:0", docs: false }',
      'log: { level: info }',
      'database: { url: ":memory:" }',
      `amqp: { url: "${amqpUrl}", exchange: "${exchange}" }`,
      'ami:',
      '  servers:',
      `    - { url: "tcp://bench:bench@127.0.0.1:${port}", pingIntervalMs: 0 }`,
      '',
    ].join('\n'),
    nodeArgs,
  );
  try {
    const { startedAtMs } = await pbx.next<{ startedAtMs: number }>();
    await pbx.next(); // {"doneAtMs"}
    let doneAt = 0;
    await until(
      'serve counting every event',
      async () => {
        const n = await serve.metric('switchboard_ami_events_received_total');
        doneAt = Date.now();
        return n >= events;
      },
      300_000,
    );
    const text = await serve.metrics();
    return {
      events,
      seconds: (doneAt - startedAtMs) / 1000,
      peakRssMb: serve.peakRssMb(),
      dropped: metricSum(text, 'switchboard_bus_messages_dropped_total') || 0,
    };
  } finally {
    await serve.stop();
    await pbx.close();
  }
}

/** Runs the in-process and the AMQP variant, best rate / worst RSS of 2 runs each. */
export async function benchServe(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const bus of ['in-process', 'RabbitMQ'] as const) {
    const runs: ServeRun[] = [];
    for (let i = 0; i < 2; i++) {
      if (bus === 'in-process') {
        runs.push(await serveRun('', 'xivo'));
        continue;
      }
      const exchange = `bench-serve-${randomBytes(4).toString('hex')}`;
      runs.push(await serveRun(URL, exchange));
      const conn = await connect(URL);
      const ch = await conn.createChannel();
      await ch.deleteExchange(exchange).catch(() => {});
      await conn.close().catch(() => {});
    }
    const rates = runs.map((r) => r.events / r.seconds);
    const note = `${runs[0]?.events.toLocaleString('en')} events (corpus stream), fake Asterisk in its own process, serve a child process; runs ${rates.map((r) => Math.round(r / 1000)).join('k, ')}k events/s, ${runs.map((r) => r.peakRssMb.toFixed(0)).join(', ')} MB; ami.* dropped ${runs.map((r) => r.dropped).join(', ')}`;
    results.push(
      {
        name: `serve, no ami.* subscriber (${bus} bus): AMI events counted`,
        value: Math.max(...rates),
        unit: 'events/s',
        note,
      },
      {
        name: `serve, no ami.* subscriber (${bus} bus): peak RSS`,
        value: Math.max(...runs.map((r) => r.peakRssMb)),
        unit: 'MB',
        target: 200,
        higherIsBetter: false,
        note: 'VmHWM of the serve process, worst run',
      },
    );
  }
  return results;
}

if (import.meta.main) {
  const { formatTable } = await import('./table.ts');
  console.log(formatTable(await benchServe()));
}
