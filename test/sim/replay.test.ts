import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AmiEvent } from '../../src/ami/message.ts';
import { CallEngine } from '../../src/calls/engine.ts';
import type { CallEvent } from '../../src/calls/events.ts';
import { coreShowChannels, replayOffsets, startSimulator } from '../../src/sim/index.ts';
import { fixturePath, loadFixture, loadGolden } from '../support/conformance.ts';
import { until } from '../support/until.ts';
import { connect, sleep } from './helpers.ts';

/** A copy of a golden value with `suffix` appended to every non-empty uniqueid/linkedid. */
function suffixed(value: unknown, suffix: string): unknown {
  if (Array.isArray(value)) return value.map((item) => suffixed(item, suffix));
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] =
      (key === 'uniqueid' || key === 'linkedid') && typeof item === 'string' && item !== ''
        ? item + suffix
        : suffixed(item, suffix);
  }
  return out;
}

function passOf(event: CallEvent): number {
  const json = JSON.stringify(event);
  const match = /"uniqueid":"[^"]*?-r(\d+)"/.exec(json);
  return match ? Number(match[1]) : 0;
}

describe('replay', () => {
  for (const name of ['xfer_attended/xfer_abbcac', 'simple/ab_success_a_hangup']) {
    test(`${name} looped 3 times: distinct identifiers per loop, golden call events for each`, async () => {
      const sim = await startSimulator({
        replay: {
          recording: fixturePath(name),
          loop: true,
          maxLoops: 3,
          loopGapMs: 0,
          pace: { eventsPerSecond: 0 },
        },
      });
      const c = await connect(sim);
      try {
        await sim.replayFinished();
        const expected = loadFixture(name).filter((e) => e.Event !== 'FullyBooted').length;
        assert.equal(sim.replay.eventsSent, expected * 3);
        assert.equal(sim.replay.passes, 3);
        await until(() => c.events.length >= expected * 3 + 1);
        assert.equal(c.events[0]?.Event, 'FullyBooted');
        assert.equal(c.events.filter((e) => e.Event === 'FullyBooted').length, 1);
        assert.ok(!c.events.some((e) => 'content' in e));
        const ids = (pass: number): Set<string> =>
          new Set(
            c.events
              .slice(1 + pass * expected, 1 + (pass + 1) * expected)
              .map((e) => String(e.Uniqueid ?? ''))
              .filter((id) => id !== ''),
          );
        const [a, b, d] = [ids(0), ids(1), ids(2)];
        assert.ok(a.size > 0);
        for (const id of b) assert.ok(!a.has(id) && id.endsWith('-r1'), id);
        for (const id of d) assert.ok(!a.has(id) && !b.has(id) && id.endsWith('-r2'), id);

        const out: CallEvent[] = [];
        const engine = new CallEngine({ onCallEvent: (event) => out.push(event) });
        for (const event of c.events) engine.handle(event);
        const golden = loadGolden(name);
        for (const pass of [0, 1, 2]) {
          const got = JSON.parse(JSON.stringify(out.filter((e) => passOf(e) === pass)));
          assert.deepStrictEqual(
            got,
            suffixed(golden, pass === 0 ? '' : `-r${pass}`),
            `pass ${pass}`,
          );
        }
      } finally {
        await c.client.close();
        await sim.close();
      }
    });
  }

  test('CoreShowChannels mid-stream lists the channels streamed so far (recording timestamps pace it)', async () => {
    const events = loadFixture('simple/ab_success_a_hangup').filter(
      (e) => e.Event !== 'FullyBooted',
    );
    // The first point where both phones are up and bridged... or at least two channels live.
    let k = events.findIndex((_e, i) => coreShowChannels(events.slice(0, i + 1)).length === 2);
    assert.ok(k > 0);
    k += 2;
    const stamped: AmiEvent[] = events.map((event, i) => ({
      ...event,
      Timestamp: i <= k ? '1000.000000' : '1060.000000',
    }));
    const sim = await startSimulator({ replay: { recording: stamped } });
    const c = await connect(sim);
    try {
      await until(() => c.events.length === k + 2); // FullyBooted + k + 1 events
      await sleep(30);
      assert.equal(c.events.length, k + 2, 'the replay waits for the next timestamp');
      const live = coreShowChannels(events.slice(0, k + 1));
      assert.ok(live.length >= 2);
      const list = await c.client.action({ Action: 'CoreShowChannels' });
      const items = list.events.filter((e) => e.Event === 'CoreShowChannel');
      assert.deepEqual(
        items.map((e) => [e.Uniqueid, e.Channel, e.ChannelState, e.BridgeId]),
        live.map((e) => [e.Uniqueid, e.Channel, e.ChannelState, e.BridgeId]),
      );
    } finally {
      await c.client.close();
      await sim.close();
    }
  });

  test('nothing is streamed before a client logs in (startOnLogin)', async () => {
    const sim = await startSimulator({
      replay: {
        recording: fixturePath('simple/ab_success_a_hangup'),
        pace: { eventsPerSecond: 0 },
      },
    });
    try {
      await sleep(30);
      assert.equal(sim.replay.eventsSent, 0);
      const c = await connect(sim);
      await sim.replayFinished();
      assert.ok(sim.replay.eventsSent > 0);
      await c.client.close();
    } finally {
      await sim.close();
    }
  });
});

describe('replayOffsets', () => {
  const ev = (ts?: string): AmiEvent => (ts ? { Event: 'X', Timestamp: ts } : { Event: 'X' });

  test('timestamps: gaps kept, scaled by speed, capped by maxGapMs', () => {
    const events = [ev('10.0'), ev('10.5'), ev('11.0'), ev('100.0')];
    assert.deepEqual(replayOffsets(events), [0, 500, 1000, 6000]);
    assert.deepEqual(replayOffsets(events, { speed: 2, maxGapMs: 1000 }), [0, 250, 500, 1500]);
  });

  test('rate: evenly spaced; 0 = all at once', () => {
    assert.deepEqual(replayOffsets([ev(), ev(), ev()], { eventsPerSecond: 4 }), [0, 250, 500]);
    assert.deepEqual(replayOffsets([ev('1'), ev('2')], { eventsPerSecond: 0 }), [0, 0]);
  });

  test('default without timestamps: one pass over about 5 s, at least 10 events/s', () => {
    const hundred = Array.from({ length: 100 }, () => ev());
    assert.equal(replayOffsets(hundred).at(-1), 99 * 50);
    assert.deepEqual(replayOffsets([ev(), ev()]), [0, 100]);
  });
});
