// The service against the real RabbitMQ: a fake Asterisk streams conformance fixtures,
// the service publishes on a unique exchange, a raw amqplib consumer and /api/events see it.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { ConsumeMessage } from 'amqplib';
import { createService, type Service } from '../../src/serve/service.ts';
import {
  BROKER_URL,
  closeNamedConnection,
  rawConsumer,
  startProxy,
  uniqueName,
} from '../bus/helpers.ts';
import { loadGolden } from '../support/conformance.ts';
import { fakePbx, fixtureEvents, readSse, testConfig, until } from './helpers.ts';

const body = (m: ConsumeMessage) =>
  JSON.parse(m.content.toString()) as { name: string; origin_uuid: string; data: unknown };
const keys = (ms: ConsumeMessage[]) => ms.map((m) => m.fields.routingKey);

describe('serve → RabbitMQ', () => {
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  async function started(service: Service) {
    cleanups.push(() => service.stop());
    return service.start();
  }

  test('AMI and call events arrive with their routing keys and bodies; SSE sees the same; stop deregisters', async () => {
    const exchange = uniqueName('sb-serve');
    const consumer = await rawConsumer(exchange, '#');
    cleanups.push(() => consumer.close());
    const pbx = await fakePbx();
    cleanups.push(() => pbx.close());
    const config = testConfig({ ami: [pbx.url], amqp: BROKER_URL, exchange });
    const service = createService({ config, busFlushTimeoutMs: 5000 });
    const { url } = await started(service);

    await consumer.waitUntil((ms) => keys(ms).includes('service.registered.switchboard'));
    const registered = body(
      consumer.messages.find((m) => m.fields.routingKey === 'service.registered.switchboard')!,
    );
    assert.equal(registered.name, 'service_registered_event');
    assert.equal(registered.origin_uuid, config.instance.uuid);
    assert.deepEqual(Object.keys(registered.data as object).sort(), [
      'address',
      'port',
      'service_id',
      'service_name',
      'tags',
    ]);

    const sse = await readSse(`${url}/api/events?bind=call.%23&bind=ami.Newchannel`);
    cleanups.push(() => sse.close());
    assert.equal(sse.status, 200);
    await until(() => sse.ready, 'SSE subscriptions bound');
    const client = service.context!.ami.clients[0]!;
    await until(() => client.connected, 'AMI connected');
    await until(async () => (await fetch(`${url}/readyz`)).status === 200, '/readyz 200');

    const name = 'simple/ab_success_a_hangup';
    const events = fixtureEvents(name);
    const golden = loadGolden(name);
    pbx.send(events);
    const callKeys = golden.map((e) => `call.${(e as { event: string }).event}`);
    await consumer.waitUntil(
      (ms) => keys(ms).filter((k) => k.startsWith('call.')).length >= golden.length,
    );
    const calls = consumer.messages.filter((m) => m.fields.routingKey.startsWith('call.'));
    assert.deepEqual(keys(calls), callKeys);
    assert.deepEqual(
      calls.map((m) => body(m).data),
      golden,
    );
    for (const m of calls) {
      assert.equal(body(m).name, m.fields.routingKey.slice('call.'.length));
      assert.equal(m.properties.contentType, 'application/json');
    }
    // Every AMI event on ami.<Event>, in order, fields as received.
    await consumer.waitUntil(
      (ms) => keys(ms).filter((k) => k.startsWith('ami.')).length > events.length,
    );
    // (the fake Asterisk's FullyBooted after login comes first, as a real one's does)
    const ami = consumer.messages.filter(
      (m) => m.fields.routingKey.startsWith('ami.') && m.fields.routingKey !== 'ami.FullyBooted',
    );
    assert.deepEqual(
      keys(ami),
      events.map((e) => `ami.${e.Event}`),
    );
    const firstNew = ami.find((m) => m.fields.routingKey === 'ami.Newchannel')!;
    const { content: _c, ...wire } = events.find((e) => e.Event === 'Newchannel')!;
    assert.deepEqual(body(firstNew).data, wire);
    assert.equal(body(firstNew).name, 'Newchannel');

    // The SSE stream: the same call events and Newchannel events, in the same order.
    const expected = consumer.messages
      .filter(
        (m) => m.fields.routingKey.startsWith('call.') || m.fields.routingKey === 'ami.Newchannel',
      )
      .map((m) => ({ routing_key: m.fields.routingKey, ...body(m) }));
    await sse.until((ms) => ms.length >= expected.length);
    assert.deepEqual(sse.messages, expected);

    // Metrics.
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /switchboard_ami_connected\{server="127\.0\.0\.1:\d+"\} 1/);
    assert.match(
      metrics,
      /switchboard_ami_events_received_total\{server="[^"]+",event="Newchannel"\} \d+/,
    );
    assert.match(metrics, /switchboard_call_events_total\{event="b_dial"\} 1/);
    assert.match(metrics, /switchboard_bus_messages_published_total\{bus="amqp"\} \d+/);

    await service.stop();
    await sse.ended;
    await consumer.waitUntil((ms) => keys(ms).includes('service.deregistered.switchboard'));
    const dereg = body(
      consumer.messages.find((m) => m.fields.routingKey === 'service.deregistered.switchboard')!,
    );
    assert.equal(dereg.name, 'service_deregistered_event');
  });

  test('a broker connection closed mid-stream loses no call event', async () => {
    const exchange = uniqueName('sb-serve');
    const instance = uniqueName('outage');
    const consumer = await rawConsumer(exchange, 'call.#');
    cleanups.push(() => consumer.close());
    const pbx = await fakePbx();
    cleanups.push(() => pbx.close());
    const config = testConfig({ ami: [pbx.url], amqp: BROKER_URL, exchange, name: instance });
    const service = createService({ config });
    await started(service);
    await until(() => service.context!.ami.clients[0]!.connected, 'AMI connected');
    await until(() => service.context!.bus.isConnected(), 'bus connected');

    // Many calls: the same fixture with identifiers made unique per copy.
    const name = 'simple/ab_success_a_hangup';
    const base = fixtureEvents(name);
    const golden = loadGolden(name) as { event: string }[];
    const copies = 60;
    const expected: string[] = [];
    for (let i = 0; i < copies; i++) {
      const events = JSON.parse(
        JSON.stringify(base).replaceAll('195176c06ab8', `c${String(i).padStart(11, '0')}`),
      );
      pbx.send(events);
      for (const g of golden) expected.push(g.event);
      if (i === copies / 2) {
        const closed = await closeNamedConnection(`switchboard ${instance}`);
        assert.equal(closed, 1, 'the service connection was found and closed');
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // At-least-once: every call event arrives; duplicates (resends) are allowed.
    const seen = () => {
      const unique = new Map<string, string>();
      for (const m of consumer.messages) {
        const b = body(m);
        unique.set(`${b.name}:${JSON.stringify(b.data)}`, b.name);
      }
      return [...unique.values()];
    };
    await consumer.waitUntil(() => seen().length >= expected.length, 20_000);
    assert.equal(seen().length, expected.length);
    const reconnects = await (await fetch(`${(await service.start()).url}/metrics`)).text();
    assert.match(reconnects, /switchboard_bus_reconnects_total\{bus="amqp"\} [1-9]/);
  });

  test('unreachable broker and Asterisk at start: starts, /readyz 503, ready once both are up', async () => {
    const exchange = uniqueName('sb-serve');
    const proxy = await startProxy(5672, true);
    cleanups.push(() => proxy.close());
    // A port with nothing listening yet: take one, free it, start the PBX there later.
    const probe = await fakePbx();
    const amiPort = probe.port;
    await probe.close();
    const amiUrl = `tcp://switchboard:s3cret-ami@127.0.0.1:${amiPort}`;
    const config = testConfig({ ami: [amiUrl], amqp: proxy.url, exchange });
    const service = createService({ config });
    const { url } = await started(service);
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    const notReady = await fetch(`${url}/readyz`);
    assert.equal(notReady.status, 503);
    const report = (await notReady.json()) as { failed: string[] };
    assert.deepEqual(report.failed.sort(), [`ami:127.0.0.1:${amiPort}`, 'bus'].sort());

    const consumer = await rawConsumer(exchange, 'service.#');
    cleanups.push(() => consumer.close());
    await proxy.restore();
    const pbx = await fakePbx(amiPort);
    cleanups.push(() => pbx.close());
    await until(async () => (await fetch(`${url}/readyz`)).status === 200, '/readyz 200', 15_000);
    // The registration published while the broker was down was buffered, then delivered.
    await consumer.waitUntil((ms) => keys(ms).includes('service.registered.switchboard'));
  });
});
