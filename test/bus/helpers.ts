// Helpers for the AMQP tests: a raw amqplib consumer, a cuttable TCP proxy in front of
// RabbitMQ, and closing one named connection with rabbitmqctl.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { promisify } from 'node:util';
import { type Channel, type ChannelModel, type ConsumeMessage, connect } from 'amqplib';

const run = promisify(execFile);

export const BROKER_URL =
  process.env.SWITCHBOARD_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672/';

/** A name unique to this test run, e.g. `test-3f9a...`. */
export function uniqueName(prefix = 'test'): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}

/** A raw amqplib consumer on a named, non-exclusive queue bound to `exchange`. */
export interface RawConsumer {
  messages: ConsumeMessage[];
  channel: Channel;
  /** Resolves when at least `count` messages arrived, rejects after `timeoutMs`. */
  waitFor(count: number, timeoutMs?: number): Promise<void>;
  /** Resolves when `done(messages)` is true, rejects after `timeoutMs`. */
  waitUntil(done: (messages: ConsumeMessage[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function rawConsumer(exchange: string, bindingKey: string): Promise<RawConsumer> {
  const conn: ChannelModel = await connect(BROKER_URL);
  const channel = await conn.createChannel();
  await channel.assertExchange(exchange, 'topic', { durable: true });
  const queue = uniqueName('test-q');
  await channel.assertQueue(queue, { durable: false, autoDelete: false, exclusive: false });
  await channel.bindQueue(queue, exchange, bindingKey);
  const messages: ConsumeMessage[] = [];
  let waiter: (() => void) | undefined;
  await channel.consume(
    queue,
    (msg) => {
      if (msg === null) return;
      messages.push(msg);
      waiter?.();
    },
    { noAck: true },
  );
  const consumer: RawConsumer = {
    messages,
    channel,
    waitFor(count, timeoutMs = 10_000) {
      return consumer.waitUntil((m) => m.length >= count, timeoutMs);
    },
    async waitUntil(done, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!done(messages)) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`condition not met after ${messages.length} messages`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(left, 200));
          waiter = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
    },
    async close() {
      await channel.deleteQueue(queue).catch(() => {});
      await channel.deleteExchange(exchange).catch(() => {});
      await conn.close().catch(() => {});
    },
  };
  return consumer;
}

/** Deletes an exchange (best effort). */
export async function deleteExchange(exchange: string): Promise<void> {
  const conn = await connect(BROKER_URL);
  const ch = await conn.createChannel();
  await ch.deleteExchange(exchange).catch(() => {});
  await conn.close().catch(() => {});
}

/** Closes (broker side) every connection whose `connection_name` is `name`. */
export async function closeNamedConnection(name: string): Promise<number> {
  const { stdout } = await run('rabbitmqctl', [
    '-q',
    'list_connections',
    '--no-table-headers',
    'pid',
    'client_properties',
  ]);
  let closed = 0;
  for (const line of stdout.split('\n')) {
    // e.g. <rabbit@host.1795270635.1072.0>	[{"connection_name","sb-x"},...]
    if (!line.includes(`{"connection_name","${name}"}`)) continue;
    const pid = line.split('\t')[0] ?? '';
    await run('rabbitmqctl', ['close_connection', pid, 'switchboard bus test']);
    closed++;
  }
  return closed;
}

/** A TCP proxy to RabbitMQ that can be cut (all sockets destroyed, port closed) and restored. */
export interface Proxy {
  port: number;
  url: string;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startProxy(targetPort = 5672, startCut = false): Promise<Proxy> {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = net.createServer((client) => {
        const upstream = net.connect(targetPort, '127.0.0.1');
        sockets.add(client);
        sockets.add(upstream);
        client.pipe(upstream).pipe(client);
        const done = () => {
          client.destroy();
          upstream.destroy();
          sockets.delete(client);
          sockets.delete(upstream);
        };
        client.on('error', done).on('close', done);
        upstream.on('error', done).on('close', done);
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        port = (s.address() as net.AddressInfo).port;
        server = s;
        resolve();
      });
    });
  const cut = async () => {
    const s = server;
    server = undefined;
    for (const sock of sockets) sock.destroy();
    sockets.clear();
    if (s !== undefined) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  await listen();
  if (startCut) await cut();
  return {
    port,
    url: `amqp://guest:guest@127.0.0.1:${port}/`,
    cut,
    restore: listen,
    close: cut,
  };
}

/** Current value of a prom-client metric with the given labels (0 when absent). */
export async function metricValue(
  registry: { getSingleMetric(name: string): unknown },
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const metric = registry.getSingleMetric(name) as
    | { get(): Promise<{ values: { value: number; labels: Record<string, string | number> }[] }> }
    | undefined;
  if (metric === undefined) return 0;
  const { values } = await metric.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return hit?.value ?? 0;
}

/** Resolves once a TCP connection to 127.0.0.1:`port` succeeds, or throws after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`port ${port} not accepting after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** `rabbitmqctl stop_app`, then `fn()`, then always `start_app` and wait for the port. */
export async function withBrokerStopped(fn: () => Promise<void>): Promise<void> {
  await run('rabbitmqctl', ['stop_app']);
  try {
    await fn();
  } finally {
    await run('rabbitmqctl', ['start_app']);
    await waitForPort(5672);
  }
}
