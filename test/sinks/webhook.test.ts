import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import {
  signPayload,
  verifySignature,
  WebhookSink,
  webhookEventFilter,
} from '../../src/sinks/webhook.ts';
import { metricValue } from '../bus/helpers.ts';

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}

/** A local HTTP server; `respond` decides each status (or 'hang' to never answer). */
async function server(respond: (req: Received, index: number) => number | 'hang') {
  const received: Received[] = [];
  const hanging = new Set<http.ServerResponse>();
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = {
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
        at: Date.now(),
      };
      received.push(r);
      const status = respond(r, received.length - 1);
      if (status === 'hang') {
        hanging.add(res);
        return;
      }
      res.writeHead(status).end('ok');
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  return {
    base,
    received,
    async close() {
      for (const res of hanging) res.destroy();
      srv.closeAllConnections();
      await new Promise((resolve) => srv.close(resolve));
    },
  };
}

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers) await c();
});

const hangup = { event: 'hangup', caller: { name: 'SIP/1-1' }, reason: 'completed' };
const bDial = { event: 'b_dial', caller: { name: 'SIP/1-1' }, targets: [] };

describe('webhookEventFilter (webhooks.endpoints[].events)', () => {
  it('event kinds, routing-key patterns, and empty = every call event', () => {
    const kinds = webhookEventFilter(['hangup', 'up']);
    assert.deepEqual(['call.hangup', 'call.up', 'call.b_dial'].map(kinds), [true, true, false]);
    const pattern = webhookEventFilter(['call.*']);
    assert.deepEqual(['call.hangup', 'call.user_event', 'ami.Hangup'].map(pattern), [
      true,
      true,
      false,
    ]);
    for (const all of [webhookEventFilter([]), webhookEventFilter(['#'])]) {
      assert.ok(['call.hangup', 'call.b_dial_end'].every(all));
    }
  });

  it('an entry that is neither a kind nor a valid pattern throws naming it', () => {
    assert.throws(() => webhookEventFilter(['hangpu']), /"hangpu" is not a call event kind/);
    assert.throws(() => webhookEventFilter(['call*']), TypeError);
  });
});

describe('WebhookSink', () => {
  it('signs the raw body with a timestamp and filters by event name', async () => {
    const srv = await server(() => 200);
    closers.push(srv.close);
    const registry = new Registry();
    const sink = new WebhookSink({
      targets: [
        { url: `${srv.base}/only-hangup?token=x`, secret: 's3cret', events: ['hangup'] },
        { url: `${srv.base}/all` },
      ],
      registry,
    });
    assert.equal(sink.send(bDial), 1);
    assert.equal(sink.send(hangup), 2);
    assert.equal(await sink.flush(2000), true);
    const onlyHangup = srv.received.filter((r) => r.path.startsWith('/only-hangup'));
    const all = srv.received.filter((r) => r.path === '/all');
    assert.equal(onlyHangup.length, 1);
    assert.deepEqual(
      all.map((r) => JSON.parse(r.body).event),
      ['b_dial', 'hangup'],
    );
    const signed = onlyHangup[0] as Received;
    assert.deepEqual(JSON.parse(signed.body), hangup);
    assert.equal(signed.headers['content-type'], 'application/json');
    assert.equal(signed.headers['x-switchboard-event'], 'hangup');
    const ts = signed.headers['x-switchboard-timestamp'] as string;
    const sig = signed.headers['x-switchboard-signature'] as string;
    assert.match(sig, /^sha256=[0-9a-f]{64}$/);
    assert.equal(
      verifySignature({ secret: 's3cret', body: signed.body, signature: sig, timestamp: ts }),
      true,
    );
    assert.equal(
      verifySignature({ secret: 'wrong', body: signed.body, signature: sig, timestamp: ts }),
      false,
    );
    assert.equal(
      verifySignature({ secret: 's3cret', body: `${signed.body} `, signature: sig, timestamp: ts }),
      false,
    );
    assert.equal(all[0]?.headers['x-switchboard-signature'], undefined, 'no secret, no signature');
    // Without a name, both targets are labelled with the host only: never the path or the
    // query string, where a token may be.
    assert.equal(
      await metricValue(registry, 'switchboard_webhook_deliveries_total', {
        target: new URL(srv.base).host,
        result: 'delivered',
      }),
      3,
    );
    const exposition = await registry.metrics();
    assert.doesNotMatch(exposition, /only-hangup|token=/);
    await sink.close();
  });

  it('verifySignature rejects stale timestamps (replay)', () => {
    const body = '{"event":"up"}';
    const sig = signPayload('k', 1_000_000, body);
    assert.equal(
      verifySignature({ secret: 'k', body, signature: sig, timestamp: '1000000', nowS: 1_000_100 }),
      true,
    );
    assert.equal(
      verifySignature({ secret: 'k', body, signature: sig, timestamp: '1000000', nowS: 1_000_301 }),
      false,
    );
    assert.equal(
      verifySignature({ secret: 'k', body, signature: sig, timestamp: '1000001', nowS: 1_000_000 }),
      false,
    );
    assert.equal(
      verifySignature({ secret: 'k', body, signature: undefined, timestamp: '1' }),
      false,
    );
  });

  it('retries 500s with exponential backoff, then succeeds (same delivery id)', async () => {
    const srv = await server((_r, i) => (i < 2 ? 500 : 200));
    closers.push(srv.close);
    const registry = new Registry();
    const warnings: Array<Record<string, unknown>> = [];
    const sink = new WebhookSink({
      targets: [{ url: `${srv.base}/h`, name: 'h' }],
      initialBackoffMs: 40,
      maxRetries: 5,
      registry,
      logger: {
        debug() {},
        info() {},
        warn: (obj) => void warnings.push(obj as Record<string, unknown>),
        error() {},
      },
    });
    sink.send(hangup);
    assert.equal(await sink.flush(3000), true);
    assert.equal(srv.received.length, 3);
    // The delay scheduled (not a measured one): the first retry after initialBackoffMs; the
    // doubling itself is backoffMs's (test/util/util.test.ts). Later lines within a second
    // are held back by the log limit.
    assert.deepEqual(
      warnings.map((w) => [w.attempt, w.delayMs]),
      [[1, 40]],
    );
    assert.equal(new Set(srv.received.map((r) => r.headers['x-switchboard-delivery'])).size, 1);
    assert.deepEqual(
      srv.received.map((r) => r.headers['x-switchboard-attempt']),
      ['1', '2', '3'],
    );
    const v = (labels: Record<string, string>, name = 'switchboard_webhook_deliveries_total') =>
      metricValue(registry, name, { target: 'h', ...labels });
    assert.equal(await v({ result: 'delivered' }), 1);
    assert.equal(await v({ outcome: '5xx' }, 'switchboard_webhook_attempts_total'), 2);
    assert.equal(await v({ outcome: '2xx' }, 'switchboard_webhook_attempts_total'), 1);
    await sink.close();
  });

  it('gives up after the configured retries, rejects 4xx at once, and carries on', async () => {
    const srv = await server((r) => (r.path === '/down' ? 503 : r.path === '/bad' ? 400 : 200));
    closers.push(srv.close);
    const registry = new Registry();
    const sink = new WebhookSink({
      targets: [
        { url: `${srv.base}/down`, name: 'down' },
        { url: `${srv.base}/bad`, name: 'bad' },
      ],
      initialBackoffMs: 5,
      maxRetries: 2,
      registry,
    });
    sink.send(hangup);
    sink.send(bDial);
    assert.equal(await sink.flush(3000), true);
    const count = (p: string) => srv.received.filter((r) => r.path === p).length;
    assert.equal(count('/down'), 6, '2 events x (1 attempt + 2 retries)');
    assert.equal(count('/bad'), 2, 'no retry on 400');
    assert.equal(
      await metricValue(registry, 'switchboard_webhook_deliveries_total', {
        target: 'down',
        result: 'failed',
      }),
      2,
    );
    assert.equal(
      await metricValue(registry, 'switchboard_webhook_deliveries_total', {
        target: 'bad',
        result: 'rejected',
      }),
      2,
    );
    await sink.close();
  });

  it('never blocks: bounded queue with counted drops, request timeout, bounded close', async () => {
    const srv = await server(() => 'hang');
    closers.push(srv.close);
    const registry = new Registry();
    const sink = new WebhookSink({
      targets: [{ url: `${srv.base}/slow`, name: 'slow' }],
      queueSize: 3,
      timeoutMs: 60,
      maxRetries: 0,
      registry,
    });
    // send() does not wait for the network: it answers at once (a number, not a promise), and
    // the drops are counted before any request could have been answered.
    for (let i = 0; i < 10; i++) assert.equal(typeof sink.send(hangup), 'number');
    assert.equal(
      await metricValue(registry, 'switchboard_webhook_deliveries_total', {
        target: 'slow',
        result: 'dropped',
      }),
      7,
    );
    assert.equal(sink.pending().slow, 3);
    // Each delivery times out after 60 ms and is not retried.
    assert.equal(await sink.flush(2000), true);
    assert.equal(
      await metricValue(registry, 'switchboard_webhook_deliveries_total', {
        target: 'slow',
        result: 'failed',
      }),
      3,
    );
    assert.equal(
      await metricValue(registry, 'switchboard_webhook_attempts_total', {
        target: 'slow',
        outcome: 'timeout',
      }),
      3,
    );
    // close() with a hanging request and a long timeout: bounded by its own timeout.
    const sink2 = new WebhookSink({
      targets: [{ url: `${srv.base}/slow`, name: 'slow2' }],
      timeoutMs: 60_000,
      registry,
    });
    sink2.send(hangup);
    sink2.send(hangup);
    // Bounded by close's own timeout, not the 60 s request timeout: what is left is counted
    // `closed` (waiting for the requests would have made them `failed`).
    await sink2.close(100);
    assert.equal(
      await metricValue(registry, 'switchboard_webhook_deliveries_total', {
        target: 'slow2',
        result: 'closed',
      }),
      2,
    );
    assert.equal(sink2.send(hangup), 0, 'closed sink accepts nothing');
  });

  it('rejects non-http URLs', () => {
    assert.throws(() => new WebhookSink({ targets: [{ url: 'ftp://x/' }] }), TypeError);
  });
});
