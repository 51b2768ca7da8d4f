// Against the real RabbitMQ on 127.0.0.1:5672 (guest/guest). Each test uses its own
// exchange `test-<random>` and deletes it afterwards.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { connect } from 'amqplib';
import { Registry } from 'prom-client';
import { AmqpBus, backoffMs } from '../../src/bus/amqp.ts';
import type { BusMessage } from '../../src/bus/bus.ts';
import {
  BROKER_URL,
  closeNamedConnection,
  deleteExchange,
  metricValue,
  rawConsumer,
  startProxy,
  uniqueName,
  withBrokerStopped,
} from './helpers.ts';

const ORIGIN = 'ca7f87e9-c2c8-5fad-ba1b-c3140ebb9be3';
const numbered = (n: number): BusMessage => ({ name: 'seq', origin_uuid: ORIGIN, data: { n } });
const numberOf = (body: Buffer): number =>
  (JSON.parse(body.toString()) as { data: { n: number } }).data.n;

/** Asserts every number 1..count arrived, first occurrences in order (duplicates allowed). */
function assertNoGaps(numbers: number[], count: number): { duplicates: number } {
  const seen = new Set<number>();
  const firsts: number[] = [];
  for (const n of numbers) {
    if (!seen.has(n)) {
      seen.add(n);
      firsts.push(n);
    }
  }
  assert.equal(firsts.length, count, `expected ${count} distinct messages, got ${firsts.length}`);
  for (let i = 0; i < firsts.length; i++) {
    if (firsts[i] !== i + 1) assert.fail(`message ${i + 1} out of order: got ${firsts[i]} at ${i}`);
  }
  return { duplicates: numbers.length - count };
}

const buses: AmqpBus[] = [];
after(async () => {
  for (const bus of buses) await bus.close(100);
});

describe('AmqpBus against RabbitMQ', () => {
  it('publishes JSON envelopes with the right routing keys to a durable topic exchange', async () => {
    const exchange = uniqueName();
    const consumer = await rawConsumer(exchange, '#');
    const bus = new AmqpBus({ url: BROKER_URL, exchange, persistent: true });
    buses.push(bus);
    try {
      assert.equal(await bus.waitConnected(5000), true);
      const ev: BusMessage = {
        name: 'QueueMemberStatus',
        origin_uuid: ORIGIN,
        data: { Queue: 'petak', Paused: '0' },
      };
      assert.equal(bus.publish('ami.QueueMemberStatus', ev), true);
      bus.publish('call.hangup', {
        name: 'hangup',
        origin_uuid: ORIGIN,
        data: { event: 'hangup' },
      });
      assert.equal(await bus.flush(5000), true);
      await consumer.waitFor(2);
      const [first, second] = consumer.messages;
      assert.equal(first?.fields.routingKey, 'ami.QueueMemberStatus');
      assert.equal(first?.properties.contentType, 'application/json');
      assert.equal(first?.properties.deliveryMode, 2);
      assert.deepEqual(JSON.parse(first?.content.toString() ?? ''), ev);
      assert.equal(second?.fields.routingKey, 'call.hangup');
      assert.equal(bus.status().published, 2);
      // The exchange is a durable topic exchange: re-declaring it as such succeeds,
      // re-declaring it non-durable is refused by the broker.
      await consumer.channel.assertExchange(exchange, 'topic', { durable: true });
    } finally {
      await bus.close();
      await consumer.close();
    }
  });

  it('subscriptions receive matching messages and survive a reconnect', async () => {
    const exchange = uniqueName();
    const connectionName = uniqueName('sb-sub');
    const registry = new Registry();
    const bus = new AmqpBus({ url: BROKER_URL, exchange, connectionName, registry });
    buses.push(bus);
    try {
      const got: [string, unknown][] = [];
      const sub = bus.subscribe('call.*', (m, rk) => {
        got.push([rk, m.data]);
      });
      await sub.ready;
      bus.publish('call.up', { name: 'up', origin_uuid: ORIGIN, data: 1 });
      bus.publish('ami.Hangup', { name: 'Hangup', origin_uuid: ORIGIN, data: 2 });
      bus.publish('call.hangup.extra', { name: 'x', origin_uuid: ORIGIN, data: 3 });
      bus.publish('call.hangup', { name: 'hangup', origin_uuid: ORIGIN, data: 4 });
      await bus.flush(5000);
      for (let i = 0; i < 50 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(got, [
        ['call.up', 1],
        ['call.hangup', 4],
      ]);

      assert.equal(await closeNamedConnection(connectionName), 1);
      for (let i = 0; i < 100 && bus.isConnected(); i++)
        await new Promise((r) => setTimeout(r, 20));
      assert.equal(await bus.waitConnected(10_000), true);
      assert.equal(
        await metricValue(registry, 'switchboard_bus_reconnects_total', { bus: 'amqp' }),
        1,
      );
      bus.publish('call.b_dial', { name: 'b_dial', origin_uuid: ORIGIN, data: 5 });
      await bus.flush(5000);
      for (let i = 0; i < 100 && got.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(got[2], ['call.b_dial', 5]);
      await sub.close();
    } finally {
      await bus.close();
      await deleteExchange(exchange);
    }
  });

  it('loses nothing when the broker closes the connection mid-stream (at-least-once, in order)', async (t) => {
    const exchange = uniqueName();
    const connectionName = uniqueName('sb-outage');
    const consumer = await rawConsumer(exchange, 'seq.#');
    const registry = new Registry();
    const bus = new AmqpBus({
      url: BROKER_URL,
      exchange,
      connectionName,
      registry,
      bufferSize: 200_000,
      reconnectInitialDelayMs: 50,
    });
    buses.push(bus);
    let total = 0;
    try {
      assert.equal(await bus.waitConnected(5000), true);
      // A steady stream (10 messages per ms-tick) that keeps going until the broker has
      // closed the connection and 2000 more messages were published after that.
      let killed: Promise<number> | undefined;
      let killedAt = 0;
      for (let n = 1; killedAt === 0 || n <= killedAt + 2000; n++) {
        assert.equal(bus.publish('seq.n', numbered(n)), true);
        total = n;
        if (n === 1000) {
          killed = closeNamedConnection(connectionName).then((count) => {
            killedAt = total;
            return count;
          });
        }
        if (n % 10 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      assert.equal(await killed, 1, 'the connection was closed by the broker');
      assert.equal(await bus.flush(20_000), true, 'everything confirmed after reconnecting');
      assert.ok(
        (await metricValue(registry, 'switchboard_bus_reconnects_total', { bus: 'amqp' })) >= 1,
        'the bus reconnected',
      );
      assert.equal(bus.status().dropped, 0);
      await consumer.waitUntil(
        (m) => new Set(m.map((x) => numberOf(x.content))).size >= total,
        15_000,
      );
      const { duplicates } = assertNoGaps(
        consumer.messages.map((m) => numberOf(m.content)),
        total,
      );
      const resent = await metricValue(registry, 'switchboard_bus_messages_resent_total', {
        bus: 'amqp',
      });
      t.diagnostic(`stream of ${total}, ${duplicates} duplicates, ${resent} re-sent`);
      assert.ok(
        duplicates <= resent,
        `duplicates (${duplicates}) only from re-sent messages (${resent})`,
      );
    } finally {
      await bus.close();
      await consumer.close();
    }
  });

  it('buffers while the broker is unreachable, counts drops past the bound, replays in order', async () => {
    const exchange = uniqueName();
    const consumer = await rawConsumer(exchange, '#');
    const proxy = await startProxy(5672, true);
    const registry = new Registry();
    const bus = new AmqpBus({
      url: proxy.url,
      exchange,
      registry,
      bufferSize: 100,
      reconnectInitialDelayMs: 20,
      reconnectMaxDelayMs: 200,
    });
    buses.push(bus);
    try {
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(bus.isConnected(), false);
      const accepted = [];
      for (let n = 1; n <= 120; n++) accepted.push(bus.publish('seq.n', numbered(n)));
      assert.equal(accepted.filter((a) => a).length, 100);
      assert.equal(accepted.indexOf(false), 100, 'the newest messages are the ones dropped');
      assert.equal(bus.status().buffered, 100);
      assert.equal(
        await metricValue(registry, 'switchboard_bus_messages_dropped_total', {
          bus: 'amqp',
          reason: 'buffer_full',
        }),
        20,
      );
      assert.equal(
        await metricValue(registry, 'switchboard_bus_messages_buffered', { bus: 'amqp' }),
        100,
      );
      assert.equal(await bus.flush(200), false, 'nothing can be confirmed while unreachable');

      await proxy.restore();
      assert.equal(await bus.waitConnected(5000), true);
      assert.equal(await bus.flush(5000), true);
      await consumer.waitFor(100);
      const numbers = consumer.messages.map((m) => numberOf(m.content));
      assert.deepEqual(
        numbers,
        [...Array(100).keys()].map((i) => i + 1),
      );

      // A second outage while connected: cut the proxy mid-stream, restore later.
      for (let n = 121; n <= 170; n++) bus.publish('seq.n', numbered(n));
      await proxy.cut();
      for (let n = 171; n <= 200; n++) bus.publish('seq.n', numbered(n));
      await new Promise((r) => setTimeout(r, 100));
      await proxy.restore();
      assert.equal(await bus.flush(5000), true);
      await consumer.waitUntil(
        (m) => new Set(m.map((x) => numberOf(x.content)).filter((n) => n > 120)).size >= 80,
      );
      const after = consumer.messages.map((m) => numberOf(m.content)).filter((n) => n > 120);
      assertNoGaps(
        after.map((n) => n - 120),
        80,
      );
      assert.equal(
        await metricValue(registry, 'switchboard_bus_messages_published_total', { bus: 'amqp' }),
        180,
      );
    } finally {
      await bus.close();
      await proxy.close();
      await consumer.close();
    }
  });

  it('close() flushes within its timeout and counts what it could not deliver', async () => {
    const proxy = await startProxy(5672, true);
    const registry = new Registry();
    const bus = new AmqpBus({ url: proxy.url, exchange: uniqueName(), registry });
    buses.push(bus);
    try {
      for (let n = 1; n <= 5; n++) bus.publish('seq.n', numbered(n));
      // Bounded by its timeout: the broker is unreachable, so close gives up and counts.
      await bus.close(150);
      assert.equal(bus.publish('seq.n', numbered(6)), false);
      assert.equal(
        await metricValue(registry, 'switchboard_bus_messages_dropped_total', {
          bus: 'amqp',
          reason: 'closed',
        }),
        6,
      );
    } finally {
      await proxy.close();
    }
  });

  // A real broker restart (stop_app/start_app) disturbs every other user of the broker, so
  // it runs only when asked: SWITCHBOARD_TEST_BROKER_RESTART=1.
  it('loses nothing across a real broker restart (durable queue, persistent messages)', {
    skip:
      process.env.SWITCHBOARD_TEST_BROKER_RESTART !== '1' &&
      'set SWITCHBOARD_TEST_BROKER_RESTART=1',
  }, async () => {
    const exchange = uniqueName();
    const queue = uniqueName('test-dq');
    const setup = await connect(BROKER_URL);
    const ch = await setup.createChannel();
    await ch.assertExchange(exchange, 'topic', { durable: true });
    await ch.assertQueue(queue, { durable: true });
    await ch.bindQueue(queue, exchange, 'seq.#');
    await setup.close();
    const bus = new AmqpBus({
      url: BROKER_URL,
      exchange,
      persistent: true,
      bufferSize: 100_000,
      reconnectInitialDelayMs: 100,
      reconnectMaxDelayMs: 500,
    });
    buses.push(bus);
    let n = 0;
    try {
      assert.equal(await bus.waitConnected(5000), true);
      for (; n < 500; n++) bus.publish('seq.n', numbered(n + 1));
      await withBrokerStopped(async () => {
        for (let i = 0; i < 500; i++, n++) {
          bus.publish('seq.n', numbered(n + 1));
          if (i % 50 === 0) await new Promise((r) => setTimeout(r, 5));
        }
      });
      for (let i = 0; i < 500; i++, n++) bus.publish('seq.n', numbered(n + 1));
      assert.equal(await bus.flush(30_000), true);
      const conn = await connect(BROKER_URL);
      const rch = await conn.createChannel();
      const numbers: number[] = [];
      for (;;) {
        const m = await rch.get(queue, { noAck: true });
        if (m === false) break;
        numbers.push(numberOf(m.content));
      }
      await rch.deleteQueue(queue);
      await rch.deleteExchange(exchange);
      await conn.close();
      assertNoGaps(numbers, n);
    } finally {
      await bus.close(1000);
    }
  });

  it('backoffMs grows exponentially within the cap', () => {
    for (let i = 0; i < 50; i++) {
      const d0 = backoffMs(0, 100, 10_000);
      assert.ok(d0 >= 80 && d0 <= 120, String(d0));
      const d3 = backoffMs(3, 100, 10_000);
      assert.ok(d3 >= 640 && d3 <= 960, String(d3));
      assert.ok(backoffMs(40, 100, 10_000) <= 10_000);
    }
  });
});
