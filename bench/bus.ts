/**
 * Bus benchmarks against the real RabbitMQ (`SWITCHBOARD_BENCH_AMQP_URL`, default
 * amqp://guest:guest@127.0.0.1:5672/), each on its own exchange (deleted afterwards):
 *
 * 1. Publish rate with publisher confirms: `AmqpBus.publish` of N XiVO envelopes (the
 *    `ami.<Event>` messages of the conformance recordings) until the broker confirmed all,
 *    as a ratio to a bare amqplib confirm-channel loop publishing the same messages
 *    (JSON-serialised in the loop too, drain-aware, then `waitForConfirms`) on the same
 *    broker. Both persistent, both to an exchange with one bound queue. Best of 3 each.
 * 2. AMI-event-to-bus latency at 1,000 events/s: a fake Asterisk (AmiServer over TCP)
 *    broadcasts events carrying their send time, the service (`createService`, AMQP bus)
 *    publishes them on `ami.<Event>`, an amqplib consumer receives them; p50/p99 of
 *    receive time − send time (one process, `performance.now()`).
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { connect } from 'amqplib';
import type { AmiEvent } from '../src/ami/message.ts';
import { AmiServer } from '../src/ami/server.ts';
import { AmqpBus } from '../src/bus/amqp.ts';
import { amiEventMessage, type Routed } from '../src/bus/xivo.ts';
import { loadConfig } from '../src/config/load.ts';
import { createService } from '../src/serve/service.ts';
import { repeatedEvents } from './corpus.ts';
import { type BenchResult, percentile } from './table.ts';

const URL = process.env.SWITCHBOARD_BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672/';
const ORIGIN = '00000000-0000-4000-8000-000000000000';

function unique(prefix: string): string {
  return `${prefix}-${Math.random().toString(16).slice(2, 10)}`;
}

/** Declares `exchange` with one queue bound to `#`; returns a cleanup. */
async function sinkQueue(exchange: string): Promise<() => Promise<void>> {
  const conn = await connect(URL);
  const ch = await conn.createChannel();
  await ch.assertExchange(exchange, 'topic', { durable: true });
  const { queue } = await ch.assertQueue('', { exclusive: true });
  await ch.bindQueue(queue, exchange, '#');
  return async () => {
    await ch.deleteQueue(queue).catch(() => {});
    await ch.deleteExchange(exchange).catch(() => {});
    await conn.close().catch(() => {});
  };
}

async function barePublish(messages: Routed[], exchange: string): Promise<number> {
  const conn = await connect(URL);
  const ch = await conn.createConfirmChannel();
  await ch.assertExchange(exchange, 'topic', { durable: true });
  const options = {
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    persistent: true,
  };
  const start = performance.now();
  for (const { routingKey, message } of messages) {
    const ok = ch.publish(exchange, routingKey, Buffer.from(JSON.stringify(message)), options);
    if (!ok) await new Promise((resolve) => ch.once('drain', resolve));
  }
  await ch.waitForConfirms();
  const seconds = (performance.now() - start) / 1000;
  await conn.close();
  return messages.length / seconds;
}

async function busPublish(messages: Routed[], exchange: string): Promise<number> {
  const bus = new AmqpBus({
    url: URL,
    exchange,
    persistent: true,
    bufferSize: messages.length + 1,
    connectionName: 'switchboard bench',
  });
  await bus.flush(10_000);
  for (let i = 0; i < 50 && !bus.isConnected(); i++) await new Promise((r) => setTimeout(r, 20));
  const start = performance.now();
  for (const { routingKey, message } of messages) bus.publish(routingKey, message);
  const flushed = await bus.flush(120_000);
  const seconds = (performance.now() - start) / 1000;
  await bus.close(1000);
  if (!flushed) throw new Error('bus did not flush');
  return messages.length / seconds;
}

async function publishRate(): Promise<BenchResult[]> {
  const events = repeatedEvents(20).slice(0, 50_000);
  const messages = events.map((event) => amiEventMessage(event, ORIGIN));
  let bare = 0;
  let bus = 0;
  for (let pass = 0; pass < 3; pass++) {
    const e1 = unique('bench-bare');
    const c1 = await sinkQueue(e1);
    bare = Math.max(bare, await barePublish(messages, e1));
    await c1();
    const e2 = unique('bench-bus');
    const c2 = await sinkQueue(e2);
    bus = Math.max(bus, await busPublish(messages, e2));
    await c2();
  }
  const note = `${messages.length.toLocaleString('en')} persistent messages, confirms, best of 3`;
  return [
    { name: 'bus publish, AmqpBus with confirms', value: bus, unit: 'msg/s', note },
    { name: 'bus publish, bare amqplib confirm channel', value: bare, unit: 'msg/s', note },
    {
      name: 'bus publish ratio (AmqpBus / bare amqplib)',
      value: bus / bare,
      unit: '×',
      target: 0.8,
      note: 'same messages, same broker',
    },
  ];
}

async function latency(): Promise<BenchResult[]> {
  const rate = 1000;
  const durationS = 5;
  const total = rate * durationS;
  const exchange = unique('bench-latency');
  const pbx = new AmiServer({ users: { bench: 'bench-secret' } });
  pbx.handle('CoreShowChannels', () => ({ events: [], complete: 'CoreShowChannelsComplete' }));
  const port = await pbx.listen();

  const conn = await connect(URL);
  const ch = await conn.createChannel();
  await ch.assertExchange(exchange, 'topic', { durable: true });
  const { queue } = await ch.assertQueue('', { exclusive: true });
  await ch.bindQueue(queue, exchange, 'ami.UserEvent');
  const latencies: number[] = [];
  await ch.consume(
    queue,
    (msg) => {
      if (msg === null) return;
      const body = JSON.parse(msg.content.toString()) as { data: { SentAt?: string } };
      if (body.data.SentAt !== undefined) {
        latencies.push(performance.now() - Number(body.data.SentAt));
      }
    },
    { noAck: true },
  );

  const config = loadConfig({
    text: '',
    env: {},
    overrides: {
      listen: '127.0.0.1:0',
      database: ':memory:',
      amqp: URL,
      ami: [`tcp://bench:bench-secret@127.0.0.1:${port}`],
    },
  });
  config.log.level = 'silent';
  config.amqp.exchange = exchange;
  config.ami.servers[0]!.pingIntervalMs = 0;
  const service = createService({ config });
  await service.start();
  const client = service.context!.ami.clients[0]!;
  for (let i = 0; i < 500 && !(client.connected && service.context!.bus.isConnected()); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }

  // Warm-up, then paced sending: at each tick, send what is due by the elapsed time.
  const event = (i: number): AmiEvent & { Event: string } => ({
    Event: 'UserEvent',
    Privilege: 'user,all',
    UserEvent: 'Bench',
    Channel: `PJSIP/bench-${i}`,
    Uniqueid: `bench.${i}`,
    SentAt: String(performance.now()),
  });
  for (let i = 0; i < 200; i++) pbx.broadcast(event(-1 - i));
  await new Promise((r) => setTimeout(r, 500));
  latencies.length = 0;
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
    while (sent < due) pbx.broadcast(event(sent++));
    await new Promise((r) => setTimeout(r, 1));
  }
  const deadline = performance.now() + 10_000;
  while (latencies.length < total && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  loop.disable();
  const received = latencies.length;
  await service.stop();
  await pbx.close();
  await ch.deleteExchange(exchange).catch(() => {});
  await conn.close().catch(() => {});
  const sorted = [...latencies].sort((a, b) => a - b);
  const loopP99 = loop.percentile(99) / 1e6;
  const loopMax = loop.max / 1e6;
  const note = `${received.toLocaleString('en')}/${total.toLocaleString('en')} UserEvents at ${rate}/s over TCP → serve → RabbitMQ → consumer, one process; event-loop delay p99 ${loopP99.toFixed(1)} ms, max ${loopMax.toFixed(1)} ms`;
  return [
    { name: 'AMI event → bus latency p50', value: percentile(sorted, 50), unit: 'ms', note },
    {
      name: 'AMI event → bus latency p99',
      value: percentile(sorted, 99),
      unit: 'ms',
      target: 5,
      higherIsBetter: false,
      note,
    },
  ];
}

/** Runs both bus benchmarks (needs RabbitMQ). */
export async function benchBus(): Promise<BenchResult[]> {
  return [...(await publishRate()), ...(await latency())];
}

if (import.meta.main) {
  const { formatTable } = await import('./table.ts');
  console.log(formatTable(await benchBus()));
}
