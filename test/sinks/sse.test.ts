import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { MemoryBus } from '../../src/bus/memory.ts';
import { BusHistory, formatSseEvent, streamBusAsSse } from '../../src/sinks/sse.ts';

describe('SSE', () => {
  it('formats events with multi-line data and no injected fields', () => {
    assert.equal(formatSseEvent({ id: 1, event: 'a', data: 'x' }), 'id: 1\nevent: a\ndata: x\n\n');
    assert.equal(
      formatSseEvent({ event: 'a\nid: 9', data: 'x\ny' }),
      'event: a id: 9\ndata: x\ndata: y\n\n',
    );
  });

  it('streams matching bus messages, keeps alive, cleans up on client close', async () => {
    const bus = new MemoryBus();
    let bad: unknown;
    const srv = http.createServer((req, res) => {
      const bind = new URL(req.url ?? '/', 'http://x').searchParams.getAll('bind');
      try {
        streamBusAsSse(bus, res, { bindingKeys: bind, keepAliveMs: 30 });
      } catch (err) {
        bad = err;
        res.writeHead(400).end(String(err));
      }
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const port = (srv.address() as AddressInfo).port;
    try {
      const badRes = await fetch(`http://127.0.0.1:${port}/?bind=call..x`);
      assert.equal(badRes.status, 400);
      assert.ok(bad instanceof TypeError);

      const ctl = new AbortController();
      const res = await fetch(`http://127.0.0.1:${port}/?bind=call.*&bind=status.%23`, {
        signal: ctl.signal,
      });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
      for (let i = 0; i < 50 && bus.status().subscriptions < 2; i++)
        await new Promise((r) => setTimeout(r, 5));
      assert.equal(bus.status().subscriptions, 2);
      bus.publish('call.hangup', { name: 'hangup', origin_uuid: 'u', data: { event: 'hangup' } });
      bus.publish('ami.Newchannel', { name: 'Newchannel', origin_uuid: 'u', data: {} });
      bus.publish('status.agent', {
        name: 'agent_status_update',
        origin_uuid: 'u',
        data: { agent_id: 1 },
      });
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      let text = '';
      const decoder = new TextDecoder();
      const deadline = Date.now() + 2000;
      while (
        !(text.includes('agent_status_update') && text.includes(': keep-alive')) &&
        Date.now() < deadline
      ) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value);
      }
      assert.match(text, /^retry: 3000\n/);
      assert.match(
        text,
        /id: 1\nevent: hangup\ndata: \{"routing_key":"call.hangup","name":"hangup","origin_uuid":"u","data":\{"event":"hangup"\}\}\n\n/,
      );
      assert.match(text, /id: 2\nevent: agent_status_update\n/);
      assert.doesNotMatch(text, /Newchannel/);
      assert.match(text, /: keep-alive\n\n/);
      ctl.abort();
      for (let i = 0; i < 100 && bus.status().subscriptions > 0; i++)
        await new Promise((r) => setTimeout(r, 10));
      assert.equal(bus.status().subscriptions, 0, 'subscriptions closed with the client');
    } finally {
      srv.closeAllConnections();
      await new Promise((resolve) => srv.close(resolve));
      await bus.close();
    }
  });
});

describe('BusHistory (Last-Event-ID replay)', () => {
  const message = (n: number) => ({ name: `m${n}`, origin_uuid: 'u', data: { n } });

  it('gives what came after an id; nothing kept, other epoch or future id: undefined', () => {
    const history = new BusHistory({ maxMessages: 3 });
    const ids: string[] = [];
    history.listen((entry) => ids.push(history.id(entry)));
    for (let n = 1; n <= 5; n++) history.add(`test.${n}`, message(n));
    assert.equal(history.size, 3, 'bounded by count');
    assert.deepEqual(
      history.since(ids[2] as string)?.map((e) => e.message.name),
      ['m4', 'm5'],
    );
    assert.deepEqual(history.since(ids[4] as string), [], 'up to date');
    assert.equal(history.since(ids[2]?.replace(/^[0-9a-f]{8}/, '00000000') as string), undefined);
    assert.equal(history.since(ids[0] as string), undefined, 'm2 is no longer kept');
    assert.deepEqual(
      history.since(ids[1] as string)?.map((e) => e.message.name),
      ['m3', 'm4', 'm5'],
      'm3 is the oldest kept',
    );
    assert.equal(history.since(`${history.epoch}-99`), undefined, 'an id from the future');
    assert.equal(history.since('garbage\nid'), undefined);
  });

  it('is bounded by bytes, keeping at least the newest message', () => {
    const history = new BusHistory({ maxBytes: 1000 });
    for (let n = 1; n <= 50; n++) history.add('test.x', { ...message(n), data: 'x'.repeat(300) });
    assert.ok(history.size >= 1 && history.size <= 3, `kept ${history.size}`);
  });
});
