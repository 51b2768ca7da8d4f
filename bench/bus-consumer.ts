/**
 * Benchmark helper process: an amqplib consumer of `ami.UserEvent` on EXCHANGE (argv[2]) at
 * URL (argv[3]). Prints `{"ready": true}` once bound; for each `UserEvent: Bench` message,
 * the latency = receive wall clock − its `SentAtUs` (both `performance.timeOrigin +
 * performance.now()`, µs). On the line `report` on stdin prints
 * `{"received", "latenciesMs": [...]}` and starts over; `count` prints `{"received"}`;
 * exits (deleting the exchange) when stdin closes.
 */
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { connect } from 'amqplib';

const exchange = process.argv[2] ?? 'bench';
const url = process.argv[3] ?? 'amqp://guest:guest@127.0.0.1:5672/';
const conn = await connect(url);
const ch = await conn.createChannel();
await ch.assertExchange(exchange, 'topic', { durable: true });
const { queue } = await ch.assertQueue('', { exclusive: true });
await ch.bindQueue(queue, exchange, 'ami.UserEvent');
const latenciesMs: number[] = [];
await ch.consume(
  queue,
  (msg) => {
    if (msg === null) return;
    const atUs = (performance.timeOrigin + performance.now()) * 1000;
    const body = JSON.parse(msg.content.toString()) as {
      data: { UserEvent?: string; SentAtUs?: string };
    };
    if (body.data.UserEvent === 'Bench' && body.data.SentAtUs !== undefined) {
      latenciesMs.push((atUs - Number(body.data.SentAtUs)) / 1000);
    }
  },
  { noAck: true },
);
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
const input = createInterface({ input: process.stdin });
input.on('line', async (line) => {
  if (line.trim() === 'count') {
    process.stdout.write(`${JSON.stringify({ received: latenciesMs.length })}\n`);
    return;
  }
  if (line.trim() !== 'report') return;
  process.stdout.write(`${JSON.stringify({ received: latenciesMs.length, latenciesMs })}\n`);
  latenciesMs.length = 0;
});
input.on('close', async () => {
  await ch.deleteExchange(exchange).catch(() => {});
  await conn.close().catch(() => {});
  process.exit(0);
});
