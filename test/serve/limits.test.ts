// Resource bounds of the HTTP server over real sockets: an /api/events client that stops
// reading has its connection destroyed (its buffers freed), the number of streams is capped
// (503), and a request whose headers or body are drip-fed is cut by the server (408).
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import type { Service } from '../../src/serve/service.ts';
import { form, startServe } from '../support/http.ts';
import { readSse, until } from './helpers.ts';

/** The server side's count of open connections. */
function connections(service: Service): Promise<number> {
  return new Promise((resolve, reject) =>
    service.server?.app.server.getConnections((error, count) =>
      error ? reject(error) : resolve(count),
    ),
  );
}

/** A metric's value from /metrics text (0 when absent). */
async function metric(url: string, line: RegExp): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const match = text.split('\n').find((l) => line.test(l));
  return match === undefined ? 0 : Number(match.split(' ').pop());
}

/** A raw client socket recording what it receives and whether the server closed it. */
interface RawClient {
  socket: Socket;
  received: () => string;
  closed: Promise<void>;
}

function rawClient(url: string): Promise<RawClient> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    let received = '';
    const socket = connect({ host: hostname, port: Number(port) });
    const closed = new Promise<void>((done) => socket.on('close', () => done()));
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
    });
    socket.on('error', () => {}); // EPIPE / ECONNRESET once the server cut us
    socket.once('connect', () => resolve({ socket, received: () => received, closed }));
    socket.once('error', reject);
  });
}

/** Writes `chunk` every `everyMs` until the socket closes; resolves with the count written. */
function drip(client: RawClient, chunk: string, everyMs: number, max = 10_000): Promise<number> {
  return new Promise((resolve) => {
    let written = 0;
    const timer = setInterval(() => {
      if (client.socket.destroyed || written >= max) {
        clearInterval(timer);
        resolve(written);
        return;
      }
      client.socket.write(chunk);
      written += 1;
    }, everyMs);
    void client.closed.then(() => {
      clearInterval(timer);
      resolve(written);
    });
  });
}

describe('/api/events bounds', () => {
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('a client that stops reading has its socket destroyed by the server', async () => {
    const { service, url } = await startServe({ http: { sseMaxBufferedBytes: 65_536 } });
    cleanups.push(() => service.stop());
    const bus = service.context?.bus;
    assert.ok(bus);
    // Streams are served from the service's one bus history subscription (src/sinks/sse.ts
    // BusHistory): a stream's listener is added before the stream counts as open.
    const client = await rawClient(url);
    cleanups.push(() => client.socket.destroy());
    client.socket.pause(); // never reads: everything piles up in the kernel, then the server
    client.socket.write('GET /api/events?bind=call.%23 HTTP/1.1\r\nHost: test\r\n\r\n');
    await until(async () => (await metric(url, /^switchboard_sse_streams /)) === 1, 'stream open');
    const pad = 'x'.repeat(64 * 1024);
    let published = 0;
    await until(
      async () => {
        for (let i = 0; i < 16; i += 1) {
          bus.publish('call.test', { name: 'test', origin_uuid: 'u', data: { pad } });
          published += 1;
        }
        await new Promise((resolve) => setImmediate(resolve));
        return (await connections(service)) === 0;
      },
      'the slow client’s connection closed by the server',
      60_000,
    );
    assert.ok(published > 1, 'it took more than one message');
    assert.equal(await metric(url, /^switchboard_sse_streams /), 0);
    assert.equal(await metric(url, /^switchboard_sse_disconnects_total\{reason="slow"\}/), 1);
  });

  test('at most http.sseMaxStreams streams; beyond: 503 with Retry-After', async () => {
    const { service, url } = await startServe({ http: { sseMaxStreams: 2 } });
    cleanups.push(() => service.stop());
    const first = await readSse(`${url}/api/events`);
    cleanups.push(() => first.close());
    const second = await readSse(`${url}/api/events`);
    cleanups.push(() => second.close());
    assert.equal(first.status, 200);
    assert.equal(second.status, 200);
    const third = await fetch(`${url}/api/events`);
    assert.equal(third.status, 503);
    assert.equal(third.headers.get('retry-after'), '10');
    const body = (await third.json()) as Record<string, unknown>;
    assert.equal(body.error, 'unavailable');
    assert.equal(body.statusCode, 503);
    assert.match(String(body.message), /too many event streams/);
    assert.equal(await metric(url, /^switchboard_sse_disconnects_total\{reason="refused"\}/), 1);
    first.close();
    await until(async () => (await metric(url, /^switchboard_sse_streams /)) === 1, 'one left');
    const again = await readSse(`${url}/api/events`);
    cleanups.push(() => again.close());
    assert.equal(again.status, 200);
  });

  test('more than 32 binding keys is 400 naming the field', async () => {
    const { service, url } = await startServe();
    cleanups.push(() => service.stop());
    const query = Array.from({ length: 33 }, (_, i) => `bind=call.k${i}`).join('&');
    const r = await fetch(`${url}/api/events?${query}`);
    assert.equal(r.status, 400);
    assert.equal(((await r.json()) as { field: string }).field, 'querystring.bind');
  });
});

describe('request timeouts', () => {
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  async function serve() {
    const started = await startServe({
      http: { requestTimeoutMs: 300, headersTimeoutMs: 300, uploadTimeoutMs: 60_000 },
    });
    cleanups.push(() => started.service.stop());
    return started;
  }

  test('a drip-fed body is cut by the server: 408, connection closed', async () => {
    const { service, url } = await serve();
    const client = await rawClient(url);
    client.socket.write(
      'POST /api/v1/call HTTP/1.1\r\nHost: test\r\n' +
        'Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n',
    );
    const written = await drip(client, 'a', 50);
    assert.ok(written < 1000, 'the body never completed');
    assert.match(client.received(), /^HTTP\/1\.1 408 Request Timeout\r\n/);
    assert.match(client.received(), /"error":"request_timeout"/);
    await until(async () => (await connections(service)) === 0, 'no connection left');
    assert.equal(await metric(url, /^switchboard_http_request_timeouts_total /), 1);
  });

  test('drip-fed headers are cut by the server', async () => {
    const { service, url } = await serve();
    const client = await rawClient(url);
    client.socket.write('GET /healthz HTTP/1.1\r\nHost: test\r\n');
    await drip(client, 'X-Slow: 1\r\n', 50);
    assert.match(client.received(), /^HTTP\/1\.1 408/);
    await until(async () => (await connections(service)) === 0, 'no connection left');
  });

  test('an upload may take longer (http.uploadTimeoutMs) than other bodies', async () => {
    const { url } = await serve();
    const boundary = 'sbslowupload';
    const body =
      `--${boundary}\r\nContent-Disposition: form-data; name="description"\r\n\r\nslow\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n` +
      `Content-Type: audio/wav\r\n\r\n${'x'.repeat(20)}\r\n--${boundary}--\r\n`;
    const client = await rawClient(url);
    client.socket.write(
      `POST /messages/add HTTP/1.1\r\nHost: test\r\nConnection: close\r\n` +
        `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    // 20 chunks 50 ms apart: well past requestTimeoutMs (300 ms), well within the upload's.
    const chunks = body.match(/[\s\S]{1,12}/g) ?? [];
    const head = chunks.slice(0, 20);
    const rest = chunks.slice(20).join('');
    let sent = 0;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const chunk = head[sent];
        if (chunk === undefined || client.socket.destroyed) {
          clearInterval(timer);
          resolve();
          return;
        }
        client.socket.write(chunk);
        sent += 1;
      }, 50);
    });
    assert.equal(sent, head.length, 'the server did not cut the upload');
    client.socket.write(rest);
    await client.closed;
    const status = /^HTTP\/1\.1 (\d+)/.exec(client.received())?.[1];
    assert.notEqual(status, '408', client.received());
    assert.ok(status !== undefined && Number(status) < 500, client.received());
  });

  test('a request that arrives in time is not affected', async () => {
    const { url } = await serve();
    const r = await fetch(`${url}/messages/tts/add`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form({ text: '' }),
    });
    assert.equal(r.status, 400);
  });
});
