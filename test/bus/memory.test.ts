import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { BusMessage } from '../../src/bus/bus.ts';
import { MemoryBus } from '../../src/bus/memory.ts';
import { metricValue } from './helpers.ts';

const msg = (n: number): BusMessage => ({ name: 'n', origin_uuid: 'u', data: { n } });

describe('MemoryBus', () => {
  it('delivers asynchronously, in publish order, to every matching subscriber', async () => {
    const bus = new MemoryBus();
    const all: [string, number][] = [];
    const calls: number[] = [];
    bus.subscribe('#', (m, rk) => {
      all.push([rk, (m.data as { n: number }).n]);
    });
    bus.subscribe('call.*', (m) => {
      calls.push((m.data as { n: number }).n);
    });
    for (let i = 0; i < 1000; i++)
      bus.publish(i % 2 === 0 ? 'call.hangup' : 'ami.Newchannel', msg(i));
    assert.equal(all.length, 0, 'delivery must not happen inside publish');
    assert.equal(await bus.flush(1000), true);
    assert.deepEqual(
      all.map(([, n]) => n),
      [...Array(1000).keys()],
    );
    assert.equal(all[1]?.[0], 'ami.Newchannel');
    assert.deepEqual(
      calls,
      [...Array(1000).keys()].filter((i) => i % 2 === 0),
    );
    await bus.close();
  });

  it('isolates subscribers from the publisher object (JSON semantics)', async () => {
    const bus = new MemoryBus();
    let got: BusMessage | undefined;
    bus.subscribe('a', (m) => {
      got = m;
    });
    const data = { at: new Date(0), list: [1] };
    bus.publish('a', { name: 'x', origin_uuid: 'u', data });
    data.list.push(2);
    await bus.flush();
    assert.deepEqual(got, {
      name: 'x',
      origin_uuid: 'u',
      data: { at: '1970-01-01T00:00:00.000Z', list: [1] },
    });
    await bus.close();
  });

  it('awaits async handlers in order; a slow subscriber drops (counted) without blocking others', async () => {
    const registry = new Registry();
    const bus = new MemoryBus({ subscriberQueueSize: 10, registry });
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow: number[] = [];
    const fast: number[] = [];
    bus.subscribe('x', async (m) => {
      await gate;
      slow.push((m.data as { n: number }).n);
    });
    bus.subscribe('x', (m) => {
      fast.push((m.data as { n: number }).n);
    });
    // The slow subscriber's first message is taken off its queue, then 10 more fit.
    bus.publish('x', msg(0));
    await new Promise((resolve) => setImmediate(resolve));
    const accepted: boolean[] = [];
    for (let i = 1; i <= 20; i++) {
      accepted.push(bus.publish('x', msg(i)));
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(accepted.filter((a) => !a).length, 10);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(fast.length, 21, 'fast subscriber got everything while the slow one is stuck');
    release();
    assert.equal(await bus.flush(1000), true);
    assert.deepEqual(slow, [...Array(11).keys()]);
    assert.equal(
      await metricValue(registry, 'switchboard_bus_messages_dropped_total', {
        bus: 'memory',
        reason: 'subscriber_queue_full',
      }),
      10,
    );
    assert.equal(bus.status().dropped, 10);
    await bus.close();
  });

  it('unsubscribe stops delivery; close drops later publishes; bad keys throw', async () => {
    const bus = new MemoryBus();
    const got: number[] = [];
    const sub = bus.subscribe('a.#', (m) => {
      got.push((m.data as { n: number }).n);
    });
    await sub.ready;
    bus.publish('a.b', msg(1));
    await bus.flush();
    await sub.close();
    bus.publish('a.b', msg(2));
    await bus.flush();
    assert.deepEqual(got, [1]);
    assert.throws(() => bus.subscribe('a..b', () => {}), TypeError);
    assert.throws(() => bus.publish('a.*', msg(3)), TypeError);
    assert.equal(bus.isConnected(), true);
    await bus.close();
    assert.equal(bus.isConnected(), false);
    assert.equal(bus.publish('a.b', msg(4)), false);
  });

  it('a throwing handler does not stop delivery', async () => {
    const bus = new MemoryBus();
    const got: number[] = [];
    bus.subscribe('a', (m) => {
      const n = (m.data as { n: number }).n;
      if (n === 1) throw new Error('boom');
      got.push(n);
    });
    for (let i = 0; i < 3; i++) bus.publish('a', msg(i));
    await bus.flush();
    assert.deepEqual(got, [0, 2]);
    await bus.close();
  });
});
