// The console's read APIs in-process: calls from the engine's state, escalations paged and
// filtered, announcements, push, health; the access rule; the OpenAPI document; and the
// Last-Event-ID replay of /api/events.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { featureModules } from '../../src/serve/modules.ts';
import { createService, type Service } from '../../src/serve/service.ts';
import { fakePbx, fixtureEvents, testConfig, until } from '../serve/helpers.ts';

const TOKEN = 'console-api-token-0123456789abcdef';

describe('console read APIs', () => {
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  async function start(yaml = '', ami: string[] = []): Promise<{ service: Service; url: string }> {
    const config = testConfig({ ami }, yaml);
    config.announce.enabled = false;
    const service = createService({ config, modules: featureModules(), sseKeepAliveMs: 50 });
    cleanups.push(() => service.stop());
    const { url } = await service.start();
    return { service, url };
  }
  const json = async (url: string, headers: Record<string, string> = {}) => {
    const response = await fetch(url, { headers });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  test('GET /api/calls: a call of the engine while it is up, gone after its hangup', async () => {
    const pbx = await fakePbx();
    cleanups.push(() => pbx.close());
    const { service, url } = await start('', [pbx.url]);
    await until(() => service.context?.ami.clients[0]?.connected === true, 'AMI connected');
    const events = fixtureEvents('simple/ab_success_a_hangup');
    const hangup = events.findIndex((e) => e.Event === 'Hangup');
    pbx.send(events.slice(0, hangup));
    let calls: { total: number; servers: { server: string; calls: Record<string, unknown>[] }[] };
    for (;;) {
      calls = (await json(`${url}/api/calls`)).body as typeof calls;
      if (calls.total === 1) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const call = calls.servers[0]?.calls[0] as {
      state: string;
      channels: { name: string; bridge: string | null; stateName: string }[];
    };
    assert.equal(call.state, 'up');
    assert.ok(call.channels.length >= 2, 'the caller and the called');
    assert.ok(call.channels.some((c) => c.stateName === 'up' && c.bridge !== null));
    pbx.send(events.slice(hangup));
    for (;;) {
      calls = (await json(`${url}/api/calls`)).body as typeof calls;
      if (calls.total === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const health = (await json(`${url}/api/health`)).body as {
      ami: { connected: boolean; lastEventMs: number | null; read: string[] }[];
    };
    assert.equal(health.ami[0]?.connected, true);
    assert.ok(health.ami[0]?.lastEventMs !== null);
  });

  test('GET /api/escalations: newest first, status filter, paging; detail; 400 and 404', async () => {
    const { url } = await start();
    const ids: string[] = [];
    for (const name of ['木村太郎', '中村梅雀', '加藤浩二']) {
      const response = await fetch(`${url}/api/v1/call`, {
        method: 'POST',
        body: new URLSearchParams([
          ['testflg', '1'],
          ['hostname', 'db1'],
          ['operator', 'me'],
          ['calltype', '1'],
          ['frequency', '1'],
          ['language', 'ja-jp'],
          ['message', 'ディスクがいっぱいです'],
          ['headid', '2'],
          ['footid', '1'],
          ['addressee', `1:u1:201:${name}:60`],
        ]),
      });
      ids.push(((await response.json()) as { eventid: string }).eventid);
    }
    const page = (await json(`${url}/api/escalations?limit=2`)).body as {
      total: number;
      items: { eventid: string; people: { name: string; state: string }[] }[];
    };
    assert.equal(page.total, 3);
    assert.deepEqual(
      page.items.map((e) => e.eventid),
      [ids[2], ids[1]],
      'newest first, two per page',
    );
    assert.equal(page.items[0]?.people[0]?.name, '加藤浩二');
    const next = (await json(`${url}/api/escalations?limit=2&offset=2`)).body as typeof page;
    assert.deepEqual(
      next.items.map((e) => e.eventid),
      [ids[0]],
    );
    const detail = await json(`${url}/api/escalations/${ids[0]}`);
    assert.equal(detail.status, 200);
    assert.equal(detail.body.eventid, ids[0]);
    const bad = await json(`${url}/api/escalations?status=bogus`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, 'bad_request');
    assert.equal((await json(`${url}/api/escalations?limit=0`)).status, 400);
    const missing = await json(`${url}/api/escalations/nope`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error, 'not_found');
    const none = (await json(`${url}/api/escalations?status=error`)).body as typeof page;
    assert.equal(none.total, 0);
  });

  test('announcements, push and health answer in their documented shapes', async () => {
    const { url } = await start();
    const schedule = await json(`${url}/api/announcements/schedule`);
    assert.equal(schedule.status, 200);
    assert.deepEqual(schedule.body.items, []);
    const history = await json(`${url}/api/announcements/history?limit=10`);
    assert.deepEqual([history.body.total, history.body.limit], [0, 10]);
    const push = (await json(`${url}/api/push`)).body as {
      devices: unknown[];
      histogram: { boundsMs: number[]; counts: number[] };
    };
    assert.deepEqual(push.devices, []);
    assert.equal(push.histogram.counts.length, push.histogram.boundsMs.length + 1);
    const health = (await json(`${url}/api/health`)).body as {
      bus: { kind: string; connected: boolean };
      database: { ok: boolean };
      redis: { configured: boolean };
      timeZone: string;
    };
    assert.deepEqual(health.bus, { ...health.bus, kind: 'memory', connected: true });
    assert.equal(health.database.ok, true);
    assert.equal(health.redis.configured, false);
    assert.ok(health.timeZone !== '');
  });

  test('the access rule: without loopback, 401 without a token, 200 with it; the page is public', async () => {
    const { url } = await start(
      `auth:\n  allowLoopback: false\n  tokens:\n    - {name: ops, token: ${TOKEN}}\n`,
    );
    for (const path of ['/api/calls', '/api/escalations', '/api/health', '/api/push']) {
      assert.equal((await fetch(`${url}${path}`)).status, 401, path);
      const ok = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(ok.status, 200, path);
    }
    const page = await fetch(`${url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    const html = await page.text();
    const script = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(script !== undefined, 'the page loads its script from /console/assets/');
    const js = await fetch(`${url}${script}`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
    assert.equal((await fetch(`${url}/console/assets/../../package.json`)).status, 404);
    assert.equal((await fetch(`${url}/console/nope.js`)).status, 404);
  });

  test('OpenAPI: every console endpoint with its operationId', async () => {
    const { url } = await start();
    const doc = (await json(`${url}/docs/json`)).body as {
      paths: Record<string, Record<string, { operationId?: string }>>;
    };
    const ids = Object.values(doc.paths).flatMap((methods) =>
      Object.values(methods).map((op) => op.operationId),
    );
    for (const id of [
      'listCalls',
      'listEscalations',
      'getEscalation',
      'listAnnouncementSchedule',
      'listAnnouncementHistory',
      'getPushOverview',
      'getHealth',
    ]) {
      assert.ok(ids.includes(id), id);
    }
    assert.equal(doc.paths['/']?.get, undefined, 'the page is not an API');
  });

  test('/api/events: Last-Event-ID replays what a reconnecting client missed; unknown id: reset', async () => {
    const { service, url } = await start();
    const bus = service.context?.bus;
    assert.ok(bus !== undefined);
    const read = async (headers: Record<string, string>, want: number, onReady = () => {}) => {
      const abort = new AbortController();
      const response = await fetch(`${url}/api/events?bind=test.%23`, {
        headers,
        signal: abort.signal,
      });
      const frames: { id?: string; event?: string; data?: string }[] = [];
      let buffer = '';
      const decoder = new TextDecoder();
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      let ready = false;
      while (frames.length < want || !ready) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let at = buffer.indexOf('\n\n');
        while (at !== -1) {
          const block = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          at = buffer.indexOf('\n\n');
          if (block.includes(': ready') && !ready) {
            ready = true;
            onReady();
          }
          const frame: { id?: string; event?: string; data?: string } = {};
          for (const line of block.split('\n')) {
            const [field, ...rest] = line.split(': ');
            const value = rest.join(': ');
            if (field === 'id') frame.id = value;
            if (field === 'event') frame.event = value;
            if (field === 'data') frame.data = value;
          }
          if (frame.data !== undefined) frames.push(frame);
        }
        if (ready && frames.length >= want) break;
      }
      abort.abort();
      return frames;
    };
    const publish = (n: number) =>
      bus.publish(`test.n${n}`, { name: `test_${n}`, origin_uuid: 'x', data: { n } });
    publish(1);
    // A client that saw message 2 (published once its stream was ready)...
    const [seen] = await read({}, 1, () => publish(2));
    assert.equal(seen?.event, 'test_2');
    assert.ok(seen?.id !== undefined);
    // ...misses 3 and 4 while away, and gets them first when it comes back.
    publish(3);
    publish(4);
    const again = await read({ 'last-event-id': seen.id }, 2);
    assert.deepEqual(
      again.map((f) => f.event),
      ['test_3', 'test_4'],
    );
    const reset = await read({ 'last-event-id': '00000000-5' }, 1);
    assert.equal(reset[0]?.event, 'reset');
  });
});
