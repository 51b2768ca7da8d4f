// Issue 10, §3: the AMQP buffer was shared with the raw AMI stream, so a broker outage that
// the AMI firehose overflowed also dropped call events (1,500 AMI events/s, 15 s outage: about
// 790 call events of 99 calls lost). Raw `ami.*` messages now have a budget of their own
// (`amiBufferSize`): here the real RabbitMQ sits behind a TCP proxy that is cut, the recorded
// calls of the conformance corpus are published through the XiVO publisher (their AMI events
// and the call events the engine derives from them) until raw AMI overflows its budget many
// times over, the proxy is restored, and every call event must arrive, in order; the drops
// are raw AMI only, counted by family and logged once with a summary.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Registry } from 'prom-client';
import type { AmiEvent } from '../../src/ami/message.ts';
import { AmqpBus } from '../../src/bus/amqp.ts';
import { MemoryBus } from '../../src/bus/memory.ts';
import { type CallEventLike, XivoPublisher } from '../../src/bus/xivo.ts';
import { CallEngine } from '../../src/calls/engine.ts';
import { conformanceNames, loadFixture } from '../support/conformance.ts';
import { until } from '../support/until.ts';
import { metricValue, rawConsumer, startProxy, uniqueName } from './helpers.ts';

const ORIGIN = 'ca7f87e9-c2c8-5fad-ba1b-c3140ebb9be3';

/** A logger keeping every line. */
function memoryLogger() {
  const lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = [];
  const at =
    (level: string) =>
    (obj: object, msg = '') =>
      lines.push({ level, obj: obj as Record<string, unknown>, msg });
  return {
    lines,
    logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') },
  };
}

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

test('a broker outage that raw AMI overflows loses no call event: raw AMI dropped first, counted, logged once', async () => {
  const exchange = uniqueName();
  const calls = await rawConsumer(exchange, 'call.#');
  cleanups.push(() => calls.close());
  const ami = await rawConsumer(exchange, 'ami.#');
  cleanups.push(() => ami.close());
  const proxy = await startProxy(5672);
  cleanups.push(() => proxy.close());
  const registry = new Registry();
  const { lines, logger } = memoryLogger();
  const bufferSize = 5_000;
  const amiBufferSize = 5_000;
  const bus = new AmqpBus({
    url: proxy.url,
    exchange,
    bufferSize,
    amiBufferSize,
    registry,
    logger,
    reconnectInitialDelayMs: 50,
    reconnectMaxDelayMs: 200,
    connectionName: uniqueName('priority'),
  });
  cleanups.push(() => bus.close(1000));
  assert.equal(await bus.waitConnected(10_000), true);
  const publisher = new XivoPublisher(bus, { originUuid: ORIGIN });

  await proxy.cut();
  await until(() => !bus.isConnected());

  // Ten passes over the recorded calls: 25,890 AMI events and 1,560 call events (plus the
  // status events derived from AMI), all while the broker is unreachable.
  const expected: string[] = [];
  let amiPublished = 0;
  for (let pass = 0; pass < 10; pass++) {
    for (const name of conformanceNames()) {
      const engine = new CallEngine({
        onCallEvent: (event) => {
          expected.push(JSON.stringify({ ...event, server: `pass${pass}` }));
          publisher.call(event as unknown as CallEventLike, `pass${pass}`);
        },
      });
      for (const event of loadFixture(name)) {
        // `ami.<Event>`, plus the status events (`status.*`) it implies: those share the call
        // events' budget
        publisher.ami(event as AmiEvent);
        amiPublished++;
        engine.handle(event as never);
      }
    }
  }
  assert.ok(
    amiPublished > 5 * amiBufferSize,
    `the AMI flood overflows its budget: ${amiPublished}`,
  );
  assert.equal(expected.length, 1_560);

  await proxy.restore();
  assert.equal(await bus.flush(60_000), true, 'the buffer is delivered after the outage');
  // A last message on each binding: once it arrived, everything routed before it did.
  bus.publish('call.test_end', { name: 'test_end', origin_uuid: ORIGIN, data: null });
  bus.publish('ami.TestEnd', { name: 'TestEnd', origin_uuid: ORIGIN, data: null });
  const ended = (m: { fields: { routingKey: string } }[]) =>
    /test_?end$/i.test(m.at(-1)?.fields.routingKey ?? '');
  await calls.waitUntil(ended, 60_000);
  await ami.waitUntil(ended, 60_000);
  const received = calls.messages
    .slice(0, -1)
    .map((m) => JSON.stringify((JSON.parse(m.content.toString()) as { data: unknown }).data));
  assert.equal(received.length, expected.length, 'call events lost or repeated');
  assert.deepEqual(received, expected, 'every call event, in order, once');
  assert.equal(ami.messages.length - 1, amiBufferSize, 'the raw AMI events within their budget');

  const dropped = (family: string) =>
    metricValue(registry, 'switchboard_bus_messages_dropped_total', {
      bus: 'amqp',
      reason: 'buffer_full',
      family,
    });
  const amiDropped = await dropped('ami');
  assert.equal(amiDropped, amiPublished - amiBufferSize, 'every raw AMI event beyond its budget');
  assert.equal(await dropped('call'), 0, 'no call event dropped');
  assert.equal(await dropped('status'), 0, 'no status event dropped');

  // Logged once when dropping began, once with the counts when the bus caught up.
  const dropLines = lines.filter((l) => /bus dropp/.test(l.msg));
  assert.equal(dropLines.length, 2, JSON.stringify(dropLines));
  assert.equal(dropLines[0]?.obj.family, 'ami');
  assert.deepEqual(dropLines[1]?.obj.dropped, { ami: { buffer_full: amiDropped } });
});

test('in-process bus: a subscriber behind the raw AMI firehose still gets every call event', async () => {
  const registry = new Registry();
  const { lines, logger } = memoryLogger();
  const bus = new MemoryBus({ subscriberQueueSize: 50, amiQueueSize: 20, registry, logger });
  cleanups.push(() => bus.close(100));
  const seen: string[] = [];
  let release: () => void = () => {};
  const blocked = new Promise<void>((resolve) => {
    release = resolve;
  });
  bus.subscribe('#', async (message, routingKey) => {
    seen.push(`${routingKey}:${JSON.stringify(message.data)}`);
    await blocked; // a slow consumer (an SSE client, a webhook) that fell behind
  });
  const expected: string[] = [];
  let amiPublished = 0;
  const engine = new CallEngine({
    onCallEvent: (event) => {
      bus.publish(`call.${event.event}`, { name: event.event, origin_uuid: ORIGIN, data: event });
      expected.push(`call.${event.event}:${JSON.stringify(event)}`);
    },
  });
  for (const event of loadFixture(conformanceNames()[0] as string)) {
    bus.publish(`ami.${String(event.Event)}`, {
      name: String(event.Event),
      origin_uuid: ORIGIN,
      data: event,
    });
    amiPublished++;
    engine.handle(event as never);
  }
  assert.ok(amiPublished > 20 && expected.length > 0);
  release();
  assert.equal(await bus.flush(10_000), true);
  assert.deepEqual(
    seen.filter((s) => s.startsWith('call.')),
    expected,
    'every call event, in order',
  );
  // delivery starts after the publishing turn: the first 20 raw AMI events fit
  assert.equal(seen.filter((s) => s.startsWith('ami.')).length, 20);
  assert.equal(
    await metricValue(registry, 'switchboard_bus_messages_dropped_total', {
      bus: 'memory',
      reason: 'subscriber_queue_full',
      family: 'ami',
    }),
    amiPublished - 20,
  );
  const dropLines = lines.filter((l) => /bus dropp/.test(l.msg));
  assert.equal(dropLines.length, 2, JSON.stringify(dropLines));
});
