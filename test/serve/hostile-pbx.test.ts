// A hostile or broken PBX cannot take `serve` down (issue 10 §4), over real sockets: a fake
// Asterisk → serve (AMI client, engine, XiVO publisher, in-process bus) → /api/events (SSE,
// JSON on the wire) and /metrics.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { KNOWN_AMI_EVENTS } from '../../src/ami/known-events.ts';
import { serializeMessage } from '../../src/ami/protocol.ts';
import { createService, type Service } from '../../src/serve/service.ts';
import { PROTOTYPE_NAMES, prototypeUserEventWire, valueFor } from '../support/hostile.ts';
import { type FakePbx, fakePbx, readSse, testConfig, until } from './helpers.ts';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function serveOn(yaml = ''): Promise<{ pbx: FakePbx; service: Service; url: string }> {
  const pbx = await fakePbx();
  cleanups.push(() => pbx.close());
  let logins = 0;
  pbx.server.on('login', (_c, ok) => {
    if (ok) logins++;
  });
  const service = createService({ config: testConfig({ ami: [pbx.url] }, yaml) });
  cleanups.push(() => service.stop());
  const { url } = await service.start();
  await until(() => service.context?.ami.clients[0]?.connected === true, 'AMI connected');
  await until(() => logins === 1, 'logged in');
  Object.defineProperty(pbx, 'logins', { get: () => logins });
  return { pbx, service, url };
}

/** The samples of one metric in the Prometheus text: label text → value. */
async function samples(url: string, metric: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`)) continue;
    const end = line.lastIndexOf(' ');
    out.set(line.slice(metric.length, end), Number(line.slice(end + 1)));
  }
  return out;
}

async function streamRaw(pbx: FakePbx, text: string): Promise<void> {
  pbx.server.broadcastRaw(text);
  await pbx.server.drain();
}

describe('serve and a hostile PBX', () => {
  test('UserEvent with every Object.prototype name: published on the bus with every value, connection kept', async () => {
    const { pbx, service, url } = await serveOn();
    const sse = await readSse(
      `${url}/api/events?bind=ami.UserEvent&bind=call.user_event&bind=ami.Marker`,
    );
    cleanups.push(() => sse.close());
    await until(() => sse.ready, 'SSE ready');
    const channel = {
      Event: 'Newchannel',
      Privilege: 'call,all',
      Channel: 'PJSIP/200-00000001',
      ChannelState: '0',
      ChannelStateDesc: 'Down',
      CallerIDNum: '200',
      CallerIDName: 'Alice',
      Uniqueid: '1700000001.1',
      Linkedid: '1700000001.1',
    };
    let wire = serializeMessage(channel);
    // Each name alone, several times (generic and compiled parser paths), then all at once.
    for (const name of PROTOTYPE_NAMES) {
      for (let i = 0; i < 4; i++) {
        wire += `Event: UserEvent\r\nUniqueid: 1700000001.1\r\nUserEvent: One\r\n${name}: ${valueFor(name)}\r\n\r\n`;
      }
    }
    wire += prototypeUserEventWire('1700000001.1');
    wire += 'Event: Marker\r\nN: last\r\n\r\n';
    await streamRaw(pbx, wire);
    const perName = 4 * PROTOTYPE_NAMES.length + 1;
    await sse.until((ms) => ms.some((m) => m.routing_key === 'ami.Marker'), 20_000);
    const ami = sse.messages.filter((m) => m.routing_key === 'ami.UserEvent');
    const calls = sse.messages.filter((m) => m.routing_key === 'call.user_event');
    assert.equal(ami.length, perName);
    await sse.until(
      (ms) => ms.filter((m) => m.routing_key === 'call.user_event').length === perName,
    );
    assert.equal(calls.length, perName);
    const lastAmi = ami.at(-1)?.data as Record<string, unknown>;
    const lastCall = calls.at(-1)?.data as { event: string; amiEvent: Record<string, unknown> };
    assert.equal(lastCall.event, 'user_event');
    for (const name of PROTOTYPE_NAMES) {
      assert.equal(Object.getOwnPropertyDescriptor(lastAmi, name)?.value, valueFor(name), name);
      assert.equal(
        Object.getOwnPropertyDescriptor(lastCall.amiEvent, name)?.value,
        valueFor(name),
        name,
      );
      const single = ami.filter((m) => Object.hasOwn(m.data as object, name));
      assert.ok(single.length >= 5, `${name} on the bus`);
    }
    const client = service.context?.ami.clients[0];
    assert.equal(client?.connected, true);
    assert.equal(client?.skippedMessages, 0);
    assert.equal((pbx as unknown as { logins: number }).logins, 1, 'never reconnected');
    const skippedSeries = await samples(url, 'switchboard_ami_messages_skipped_total');
    assert.equal(skippedSeries.size, 0);
  });

  test('distinct Event names beyond the documented set are one series: event="other"', async () => {
    const { pbx, url } = await serveOn();
    const invented = 3000;
    let wire = '';
    for (let i = 0; i < invented; i++) wire += `Event: Invented${i}\r\nPrivilege: user,all\r\n\r\n`;
    wire += 'Event: Newexten\r\nPrivilege: dialplan,all\r\n\r\n';
    wire += 'Event: VarSet\r\nPrivilege: dialplan,all\r\n\r\n';
    await streamRaw(pbx, wire);
    let series = new Map<string, number>();
    await until(async () => {
      series = await samples(url, 'switchboard_ami_events_received_total');
      return [...series.values()].reduce((a, b) => a + b, 0) >= invented + 3;
    }, 'every event counted');
    const labels = [...series.keys()].map((key) => /event="([^"]*)"/.exec(key)?.[1] ?? '');
    assert.deepEqual(labels.sort(), ['FullyBooted', 'Newexten', 'VarSet', 'other']);
    assert.equal(series.get(`{server="127.0.0.1:${pbx.port}",event="other"}`), invented);
    for (const label of labels) assert.ok(label === 'other' || KNOWN_AMI_EVENTS.has(label));
  });

  test('ami.maxChannels: a Newchannel flood leaves the engine at the cap, counted in /metrics', async () => {
    const { pbx, service, url } = await serveOn('ami:\n  maxChannels: 100\n  maxBridges: 10\n');
    const flood = 5000;
    let wire = '';
    for (let i = 0; i < flood; i++) {
      wire += `Event: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/f-${i}\r\nChannelState: 0\r\nUniqueid: 1700000002.${i}\r\nLinkedid: 1700000002.${i}\r\n\r\n`;
    }
    for (let i = 0; i < 30; i++) wire += `Event: BridgeCreate\r\nBridgeUniqueid: b-${i}\r\n\r\n`;
    await streamRaw(pbx, wire);
    const server = `127.0.0.1:${pbx.port}`;
    let forgotten = new Map<string, number>();
    await until(async () => {
      forgotten = await samples(url, 'switchboard_call_engine_forgotten_total');
      return forgotten.get(`{server="${server}",kind="bridge"}`) === 20;
    }, 'the flood counted');
    assert.equal(forgotten.get(`{server="${server}",kind="channel"}`), flood - 100);
    const engine = service.context?.ami.engines.get(server);
    assert.equal(engine?.channels.size, 100);
    assert.equal(engine?.bridges.size, 10);
    const channels = await samples(url, 'switchboard_call_engine_channels');
    assert.equal(channels.get(`{server="${server}"}`), 100);
    const bridges = await samples(url, 'switchboard_call_engine_bridges');
    assert.equal(bridges.get(`{server="${server}"}`), 10);
    assert.equal(service.context?.ami.clients[0]?.connected, true);
  });

  test('an oversized message is skipped and counted; the connection stays up', async () => {
    const { pbx, service, url } = await serveOn();
    const sse = await readSse(`${url}/api/events?bind=ami.Marker`);
    cleanups.push(() => sse.close());
    await until(() => sse.ready, 'SSE ready');
    await streamRaw(
      pbx,
      `Event: Marker\r\nN: 1\r\n\r\nEvent: Big\r\nData: ${'x'.repeat(2 * 1024 * 1024)}\r\n\r\nEvent: Marker\r\nN: 2\r\n\r\n`,
    );
    await sse.until((ms) => ms.length === 2);
    const server = `127.0.0.1:${pbx.port}`;
    const skipped = await samples(url, 'switchboard_ami_messages_skipped_total');
    assert.equal(skipped.get(`{server="${server}",reason="too_large"}`), 1);
    assert.equal(service.context?.ami.clients[0]?.connected, true);
    assert.equal((pbx as unknown as { logins: number }).logins, 1);
  });
});
