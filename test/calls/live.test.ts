import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { AmiEvent } from '../../src/ami/message.ts';
import { AmiServer } from '../../src/ami/server.ts';
import { CallEngine } from '../../src/calls/engine.ts';
import type { CallEvent } from '../../src/calls/events.ts';
import { AmiRunner } from '../../src/calls/live.ts';
import type { EventContext } from '../../src/calls/reporter.ts';
import { loadFixture, loadGolden } from '../support/conformance.ts';
import { coreShowChannels } from '../support/pbx-state.ts';
import { until } from '../support/until.ts';

/** A fake Asterisk that streams a recording and answers CoreShowChannels truthfully. */
async function fakePbx(): Promise<{
  server: AmiServer;
  sent: AmiEvent[];
  send: (events: AmiEvent[]) => void;
}> {
  const sent: AmiEvent[] = [];
  const server = new AmiServer({ users: { switchboard: 's3cret' } });
  server.handle('CoreShowChannels', () => ({
    events: coreShowChannels(sent),
    complete: 'CoreShowChannelsComplete',
  }));
  await server.listen();
  const send = (events: AmiEvent[]): void => {
    for (const event of events) {
      sent.push(event);
      const { content: _content, ...wire } = event;
      server.broadcast(wire as AmiEvent);
    }
  };
  return { server, sent, send };
}

/** The index just after the event at which an engine reports the first `up`. */
function indexAfterFirstUp(events: readonly AmiEvent[]): number {
  const seen: CallEvent[] = [];
  const engine = new CallEngine({ onCallEvent: (event) => seen.push(event) });
  for (let i = 0; i < events.length; i++) {
    engine.handle(events[i] as AmiEvent);
    if (seen.some((event) => event.event === 'up')) return i + 1;
  }
  throw new Error('no up in the recording');
}

function runnerFor(
  port: number,
  name: string,
  out: CallEvent[],
  statuses: string[],
  servers?: string[],
) {
  return new AmiRunner(
    [
      {
        port,
        name,
        username: 'switchboard',
        secret: 's3cret',
        pingIntervalMs: 0,
        reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
      },
    ],
    {
      onCallEvent: (event: CallEvent, context: EventContext) => {
        out.push(event);
        servers?.push(context.server);
      },
    },
    { onStatus: (message) => statuses.push(message) },
  );
}

describe('live runner over TCP', () => {
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('a connection dropped mid-call: the call still reports its transfer and hangup', async () => {
    const name = 'xfer_attended/xfer_abacbc';
    const events = loadFixture(name).filter((event) => event.Event !== 'FullyBooted');
    const golden = loadGolden(name);
    const { server, send } = await fakePbx();
    cleanups.push(() => server.close());
    const out: CallEvent[] = [];
    const statuses: string[] = [];
    const runner = runnerFor(server.port, 'pbx', out, statuses);
    cleanups.push(() => runner.stop());
    await runner.start();
    await until(() => statuses.some((s) => s.includes('channels in progress')), 'first resync');

    const cut = indexAfterFirstUp(events);
    send(events.slice(0, cut));
    await until(() => out.some((event) => event.event === 'up'), 'the first up');
    const before = statuses.length;

    server.dropConnections();
    await until(
      () => statuses.slice(before).some((s) => s.includes('channels in progress')),
      'reconnect and resync',
    );
    assert.ok(statuses.slice(before).some((s) => s.includes('connection lost')));
    send(events.slice(cut));
    await until(() => out.length >= golden.length, 'every call event');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepStrictEqual(JSON.parse(JSON.stringify(out)), golden);
  });

  test('a call that ended during the outage is reported hung up at the reconnect', async () => {
    const events = loadFixture('simple/ab_success_a_hangup').filter(
      (e) => e.Event !== 'FullyBooted',
    );
    const { server, send, sent } = await fakePbx();
    cleanups.push(() => server.close());
    const out: CallEvent[] = [];
    const statuses: string[] = [];
    const runner = runnerFor(server.port, 'pbx', out, statuses);
    cleanups.push(() => runner.stop());
    await runner.start();
    await until(() => statuses.some((s) => s.includes('channels in progress')), 'first resync');
    const upAt = indexAfterFirstUp(events);
    send(events.slice(0, upAt));
    await until(() => out.some((event) => event.event === 'up'), 'up');
    server.dropConnections();
    // While disconnected, the rest of the call happens: the PBX's state moves on unseen.
    sent.push(...events.slice(upAt));
    await until(() => out.some((event) => event.event === 'hangup'), 'the hangup');
    const hangup = out.find((event) => event.event === 'hangup');
    assert.equal(hangup?.event === 'hangup' && hangup.reason, 'completed');
    assert.equal(hangup?.caller.name, 'SIP/150010001-00000004');
    const engine = runner.engines.get('pbx');
    assert.equal(engine?.channels.size, 0);
  });

  test('attaching to a PBX with a call in progress follows that call', async () => {
    const name = 'simple/ab_success_b_hangup';
    const events = loadFixture(name).filter((e) => e.Event !== 'FullyBooted');
    const golden = loadGolden(name) as CallEvent[];
    const { server, send, sent } = await fakePbx();
    cleanups.push(() => server.close());
    // The call is up before Switchboard starts.
    const upLine = golden.findIndex((line) => line.event === 'up');
    const upAt = events.findIndex((event, i) => {
      if (event.Event !== 'BridgeEnter') return false;
      const phones = coreShowChannels(events.slice(0, i + 1)).filter(
        (item) => !(item.Channel as string).startsWith('Local/') && item.BridgeId !== '',
      );
      return phones.length === 2 && phones[0]?.BridgeId === phones[1]?.BridgeId;
    });
    sent.push(...events.slice(0, upAt + 1));
    const out: CallEvent[] = [];
    const statuses: string[] = [];
    const runner = runnerFor(server.port, 'pbx', out, statuses);
    cleanups.push(() => runner.stop());
    await runner.start();
    await until(() => statuses.some((s) => s.includes('channels in progress')), 'resync');
    send(events.slice(upAt + 1));
    await until(() => out.some((event) => event.event === 'hangup'), 'the hangup');
    const hangup = out.find((event) => event.event === 'hangup');
    const expected = golden.at(-1);
    assert.ok(upLine >= 0 && expected?.event === 'hangup');
    assert.equal(hangup?.caller.uniqueid, expected.caller.uniqueid);
  });

  test('several servers: every call event carries the server it came from', async () => {
    const a = await fakePbx();
    const b = await fakePbx();
    cleanups.push(
      () => a.server.close(),
      () => b.server.close(),
    );
    const out: CallEvent[] = [];
    const servers: string[] = [];
    const statuses: string[] = [];
    const options = (port: number, name: string) => ({
      port,
      name,
      username: 'switchboard',
      secret: 's3cret',
      pingIntervalMs: 0,
    });
    const runner = new AmiRunner(
      [options(a.server.port, 'east'), options(b.server.port, 'west')],
      {
        onCallEvent: (event, context) => {
          out.push(event);
          servers.push(context.server);
        },
      },
      { onStatus: (message) => statuses.push(message) },
    );
    cleanups.push(() => runner.stop());
    await runner.start();
    await until(
      () => statuses.filter((s) => s.includes('channels in progress')).length === 2,
      'resyncs',
    );
    a.send(loadFixture('simple/ab_reject').filter((e) => e.Event !== 'FullyBooted'));
    b.send(loadFixture('simple/ab_a_cancel').filter((e) => e.Event !== 'FullyBooted'));
    const expected =
      loadGolden('simple/ab_reject').length + loadGolden('simple/ab_a_cancel').length;
    await until(() => out.length >= expected, 'both calls');
    const east = out.filter((_, i) => servers[i] === 'east');
    const west = out.filter((_, i) => servers[i] === 'west');
    assert.deepStrictEqual(JSON.parse(JSON.stringify(east)), loadGolden('simple/ab_reject'));
    assert.deepStrictEqual(JSON.parse(JSON.stringify(west)), loadGolden('simple/ab_a_cancel'));
  });
});
