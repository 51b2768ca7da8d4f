// The call engine's state per server is bounded (issue 10 §4): a flood of Newchannel without
// Hangup (or of BridgeCreate without BridgeDestroy) leaves the engine at its cap, the oldest
// forgotten, counted and logged at a limited rate; calls after the flood are still followed.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { AmiEvent } from '../../src/ami/message.ts';
import { serializeMessage } from '../../src/ami/protocol.ts';
import { AmiServer } from '../../src/ami/server.ts';
import { CallEngine, type EngineLimitKind, MAX_LINKS_PER_CHANNEL } from '../../src/calls/engine.ts';
import type { CallEvent } from '../../src/calls/events.ts';
import { AmiRunner } from '../../src/calls/live.ts';
import { loadFixture, loadGolden } from '../support/conformance.ts';
import { until } from '../support/until.ts';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function newchannel(i: number): AmiEvent {
  return {
    Event: 'Newchannel',
    Privilege: 'call,all',
    Channel: `PJSIP/flood-${String(i).padStart(8, '0')}`,
    ChannelState: '0',
    ChannelStateDesc: 'Down',
    CallerIDNum: '666',
    CallerIDName: 'Flood',
    ConnectedLineNum: '<unknown>',
    ConnectedLineName: '<unknown>',
    Language: 'en',
    AccountCode: '',
    Context: 'from-trunk',
    Exten: '666',
    Priority: '1',
    Uniqueid: `1700000000.${i}`,
    Linkedid: `1700000000.${i}`,
  };
}

/** A fake Asterisk with no channels to list, and a runner with small bounds on it. */
async function floodTarget(maxChannels: number, maxBridges: number) {
  const server = new AmiServer({ users: { switchboard: 'flood-secret' } });
  server.handle('CoreShowChannels', () => ({ events: [], complete: 'CoreShowChannelsComplete' }));
  const port = await server.listen();
  cleanups.push(() => server.close());
  const out: CallEvent[] = [];
  const statuses: string[] = [];
  const warnings: string[] = [];
  const limits: EngineLimitKind[] = [];
  const runner = new AmiRunner(
    [{ port, name: 'pbx', username: 'switchboard', secret: 'flood-secret', pingIntervalMs: 0 }],
    { onCallEvent: (event: CallEvent) => void out.push(event) },
    {
      onStatus: (message) => statuses.push(message),
      onWarning: (message) => warnings.push(message),
      // Long enough that the flood is reported exactly twice: once at once, once at stop.
      warningIntervalMs: 3_600_000,
      maxChannels,
      maxBridges,
      onLimit: (_server, kind) => limits.push(kind),
    },
  );
  cleanups.push(() => runner.stop());
  await runner.start();
  await until(() => statuses.some((s) => s.includes('channels in progress')), 'first resync');
  const engine = runner.engines.get('pbx') as CallEngine;
  return { server, runner, engine, out, warnings, limits };
}

/** Streams events as wire text in blocks, respecting the socket's backpressure. */
async function stream(server: AmiServer, events: Iterable<AmiEvent>): Promise<void> {
  let text = '';
  let count = 0;
  for (const event of events) {
    text += serializeMessage(event);
    if (++count % 1000 === 0) {
      server.broadcastRaw(text);
      text = '';
      await server.drain();
    }
  }
  if (text !== '') server.broadcastRaw(text);
  await server.drain();
}

describe('bounded engine state over TCP', () => {
  test('a flood of Newchannel without Hangup: the engine stays at maxChannels, the oldest forgotten, counted and logged', async () => {
    const cap = 500;
    const flood = 20_000;
    const pbx = await floodTarget(cap, 100);
    await stream(
      pbx.server,
      (function* () {
        for (let i = 0; i < flood; i++) yield newchannel(i);
      })(),
    );
    await until(() => pbx.engine.forgotten.channels === flood - cap, 'the flood processed');
    assert.equal(pbx.engine.channels.size, cap);
    assert.equal(pbx.limits.length, flood - cap);
    assert.ok(pbx.limits.every((kind) => kind === 'channel'));
    // The newest are kept, oldest first.
    const kept = [...pbx.engine.channels.keys()];
    assert.equal(kept[0], `1700000000.${flood - cap}`);
    assert.equal(kept.at(-1), `1700000000.${flood - 1}`);
    // Logged at a limited rate: one line at once, the rest counted for the next line.
    assert.equal(pbx.warnings.length, 1);
    assert.match(
      pbx.warnings[0] ?? '',
      /pbx: 1 channel\(s\) forgotten: more than 500 live channels \(ami\.maxChannels\)/,
    );

    // A real call after the flood is followed exactly (each of its channels pushes out a
    // flood channel).
    const name = 'simple/ab_success_a_hangup';
    await stream(
      pbx.server,
      loadFixture(name).filter((e) => e.Event !== 'FullyBooted'),
    );
    const golden = loadGolden(name);
    await until(() => pbx.out.length >= golden.length, 'the call events');
    assert.deepStrictEqual(JSON.parse(JSON.stringify(pbx.out)), golden);
    assert.ok(pbx.engine.channels.size <= cap);

    await pbx.runner.stop();
    assert.equal(pbx.warnings.length, 2, 'the rest reported in one line');
    const counted = pbx.warnings
      .map((w) => Number(/: (\d+) channel\(s\) forgotten/.exec(w)?.[1]))
      .reduce((a, b) => a + b, 0);
    assert.equal(counted, pbx.engine.forgotten.channels);
  });

  test('a flood of BridgeCreate without BridgeDestroy: the engine stays at maxBridges', async () => {
    const pbx = await floodTarget(100, 50);
    await stream(
      pbx.server,
      (function* () {
        for (let i = 0; i < 5000; i++) {
          yield {
            Event: 'BridgeCreate',
            Privilege: 'call,all',
            BridgeUniqueid: `bridge-${i}`,
            BridgeType: 'basic',
            BridgeTechnology: 'simple_bridge',
            BridgeCreator: '<unknown>',
            BridgeName: '<unknown>',
            BridgeNumChannels: '0',
            BridgeVideoSourceMode: 'none',
          };
        }
      })(),
    );
    await until(() => pbx.engine.forgotten.bridges === 4950, 'the flood processed');
    assert.equal(pbx.engine.bridges.size, 50);
    assert.equal(pbx.limits.filter((kind) => kind === 'bridge').length, 4950);
    assert.equal(pbx.engine.bridges.has('bridge-4999'), true);
    assert.equal(pbx.engine.bridges.has('bridge-0'), false);
    assert.match(
      pbx.warnings[0] ?? '',
      /bridge\(s\) forgotten: more than 50 live bridges \(ami\.maxBridges\)/,
    );
  });
});

describe('bounded engine state (engine API)', () => {
  test('a forgotten channel leaves no link behind: bridges, Local pairs and dials drop it', () => {
    const engine = new CallEngine({ onCallEvent: () => undefined, maxChannels: 3 });
    for (let i = 0; i < 3; i++) engine.handle(newchannel(i));
    engine.handle({ Event: 'BridgeCreate', BridgeUniqueid: 'b1' });
    engine.handle({ Event: 'BridgeEnter', BridgeUniqueid: 'b1', Uniqueid: '1700000000.0' });
    engine.handle({ Event: 'BridgeEnter', BridgeUniqueid: 'b1', Uniqueid: '1700000000.1' });
    engine.handle({ Event: 'DialBegin', Uniqueid: '1700000000.1', DestUniqueid: '1700000000.2' });
    const bridge = engine.bridges.get('b1');
    assert.equal(bridge?.peers.size, 2);
    engine.handle(newchannel(3)); // forgets .0
    assert.equal(engine.channels.has('1700000000.0'), false);
    assert.equal(bridge?.peers.size, 1);
    engine.handle(newchannel(4)); // forgets .1, the dialer of .2
    assert.equal(engine.channels.get('1700000000.2')?.backDial, null);
    assert.equal(bridge?.peers.size, 0);
    assert.deepEqual(engine.forgotten, { channels: 2, bridges: 0 });
    // Events about a forgotten channel are skipped like those of any unknown channel.
    assert.doesNotThrow(() =>
      engine.handle({ Event: 'Hangup', Uniqueid: '1700000000.0', Cause: '16' }),
    );
  });

  test('one bridge and one channel follow at most MAX_LINKS_PER_CHANNEL others', () => {
    const n = MAX_LINKS_PER_CHANNEL + 200;
    const skips: string[] = [];
    const engine = new CallEngine({
      onCallEvent: () => undefined,
      onSkip: (reason) => skips.push(reason),
    });
    engine.handle({ Event: 'BridgeCreate', BridgeUniqueid: 'conf' });
    engine.handle(newchannel(0));
    for (let i = 1; i <= n; i++) {
      engine.handle(newchannel(i));
      engine.handle({ Event: 'BridgeEnter', BridgeUniqueid: 'conf', Uniqueid: `1700000000.${i}` });
      engine.handle({
        Event: 'DialBegin',
        Uniqueid: '1700000000.0',
        DestUniqueid: `1700000000.${i}`,
      });
    }
    assert.equal(engine.bridges.get('conf')?.peers.size, MAX_LINKS_PER_CHANNEL);
    assert.equal(engine.channels.get('1700000000.0')?.fwdDials.length, MAX_LINKS_PER_CHANNEL);
    assert.equal(skips.filter((s) => s === 'too many channels in one bridge').length, 200);
    assert.equal(skips.filter((s) => s === 'too many open dials on one channel').length, 200);
  });
});
