import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { inspect } from 'node:util';
import {
  AmiClient,
  type AmiClientOptions,
  AmiPool,
  backoffDelayMs,
  parseAmiUrl,
} from '../../src/ami/client.ts';
import {
  AmiActionError,
  AmiAuthError,
  AmiDisconnectedError,
  AmiTimeoutError,
  AmiUrlError,
} from '../../src/ami/errors.ts';
import type { AmiEvent } from '../../src/ami/message.ts';
import { AmiServer, type AmiServerConnection } from '../../src/ami/server.ts';

const USERS = { admin: 's3cr3t-pass' };
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function startServer(options: Partial<ConstructorParameters<typeof AmiServer>[0]> = {}) {
  const server = new AmiServer({ users: USERS, ...options });
  const port = await server.listen();
  cleanups.push(() => server.close());
  return { server, port };
}

function client(port: number, options: Partial<AmiClientOptions> = {}): AmiClient {
  const c = new AmiClient({
    port,
    username: 'admin',
    secret: USERS.admin,
    pingIntervalMs: 0,
    actionTimeoutMs: 2000,
    reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
    ...options,
  });
  cleanups.push(() => c.close());
  return c;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function once<T extends unknown[]>(
  emitter: { once(name: string, fn: (...args: T) => void): unknown },
  name: string,
) {
  return new Promise<T>((resolve) => emitter.once(name, (...args: T) => resolve(args)));
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

describe('AmiClient login', () => {
  test('plaintext login: connect resolves, FullyBooted arrives as an event tagged with the server name', async () => {
    const { server, port } = await startServer();
    const c = client(port, { name: 'pbx1' });
    const logins: boolean[] = [];
    server.on('login', (_conn, ok) => logins.push(ok));
    const firstEvent = once<[AmiEvent, string]>(c, 'event');
    await c.connect();
    assert.equal(c.connected, true);
    assert.equal(c.banner, 'Asterisk Call Manager/11.0.0');
    const [event, name] = await firstEvent;
    assert.equal(event.Event, 'FullyBooted');
    assert.equal(name, 'pbx1');
    assert.deepEqual(logins, [true]);
    const { response } = await c.action({ Action: 'Ping' });
    assert.equal(response.Ping, 'Pong');
  });

  test('MD5 challenge login sends Challenge then Login with Key, never the secret', async () => {
    const { server, port } = await startServer();
    const actions: string[] = [];
    server.on('action', (action) => actions.push(JSON.stringify(action)));
    const c = client(port, { auth: 'md5' });
    await c.connect();
    assert.match(actions[0] ?? '', /"Action":"Challenge".*"AuthType":"MD5"/);
    assert.match(actions[1] ?? '', /"Action":"Login".*"Key":"[0-9a-f]{32}"/);
    assert.ok(!actions.join('').includes(USERS.admin));
  });

  test("failed login rejects with AmiAuthError carrying Asterisk's message, and never reconnects", async () => {
    const { server, port } = await startServer();
    let connections = 0;
    server.on('connection', () => connections++);
    for (const auth of ['plain', 'md5'] as const) {
      connections = 0;
      const c = client(port, { secret: 'wrong', auth, retryInitialConnect: true });
      const err = await c.connect().then(
        () => assert.fail('login should fail'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof AmiAuthError);
      assert.equal(err.amiMessage, 'Authentication failed');
      assert.ok(!err.message.includes('wrong'));
      await sleep(300); // backoff is 20-100 ms: a retry would have happened by now
      assert.equal(connections, 1, auth);
      assert.equal(c.connected, false);
      await assert.rejects(c.action({ Action: 'Ping' }), AmiDisconnectedError);
    }
  });

  test('unreachable server: first connect rejects by default; with retryInitialConnect it keeps retrying until the server appears', async () => {
    const port = await closedPort();
    const c1 = client(port);
    await assert.rejects(c1.connect(), (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED');
    const c2 = client(port, { retryInitialConnect: true });
    const errors: Error[] = [];
    c2.on('error', (e) => errors.push(e));
    let resolved = false;
    const connecting = c2.connect().then(() => {
      resolved = true;
    });
    await sleep(250);
    assert.equal(resolved, false);
    assert.ok(errors.length >= 2, `retried ${errors.length} times`);
    const server = new AmiServer({ users: USERS });
    await server.listen(port);
    cleanups.push(() => server.close());
    await connecting;
    assert.equal(c2.connected, true);
  });
});

describe('AmiClient actions', () => {
  test('1,000 concurrent actions answered in shuffled order each get their own response, interleaved with events', async () => {
    const { server, port } = await startServer();
    const held: { conn: AmiServerConnection; id: string; n: string }[] = [];
    server.handle('Echo', (action, conn) => {
      held.push({ conn, id: action.ActionID as string, n: action.N as string });
      if (held.length === 1000) {
        for (let i = held.length - 1; i > 0; i--) {
          const j = Math.floor(Math.random() * (i + 1));
          [held[i], held[j]] = [held[j] as (typeof held)[0], held[i] as (typeof held)[0]];
        }
        let text = '';
        for (const h of held) {
          text += `Response: Success\r\nActionID: ${h.id}\r\nEcho: ${h.n}\r\n\r\nEvent: Noise\r\nN: ${h.n}\r\n\r\n`;
        }
        h0(held).conn.sendRaw(text);
      }
      return undefined;
    });
    const c = client(port);
    await c.connect();
    let noise = 0;
    c.on('event', (e) => {
      if (e.Event === 'Noise') noise++;
    });
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => c.action({ Action: 'Echo', N: String(i) })),
    );
    for (const [i, r] of results.entries()) assert.equal(r.response.Echo, String(i));
    assert.equal(noise, 1000);
    assert.equal(c.pendingActions, 0);
    const ids = new Set(held.map((h) => h.id));
    assert.equal(ids.size, 1000);
  });

  test('event list actions resolve with the whole list; list events are not emitted as events', async () => {
    const { server, port } = await startServer();
    server.handle('CoreShowChannels', () => ({
      response: { Message: 'Channels will follow' },
      events: [
        { Event: 'CoreShowChannel', Channel: 'Local/200@phones-1;1' },
        { Event: 'CoreShowChannel', Channel: 'Local/200@phones-1;2' },
      ],
      complete: 'CoreShowChannelsComplete',
    }));
    const c = client(port);
    await c.connect();
    const emitted: string[] = [];
    c.on('event', (e) => emitted.push(e.Event));
    const { response, events } = await c.action({ Action: 'CoreShowChannels' });
    assert.equal(response.EventList, 'start');
    assert.deepEqual(
      events.map((e) => [e.Event, e.Channel ?? e.ListItems]),
      [
        ['CoreShowChannel', 'Local/200@phones-1;1'],
        ['CoreShowChannel', 'Local/200@phones-1;2'],
        ['CoreShowChannelsComplete', '2'],
      ],
    );
    await c.action({ Action: 'Ping' });
    assert.deepEqual(emitted, []);
  });

  test('Response: Error rejects with AmiActionError carrying the message', async () => {
    const { port } = await startServer();
    const c = client(port);
    await c.connect();
    const err = await c.action({ Action: 'NoSuchThing' }).catch((e: unknown) => e);
    assert.ok(err instanceof AmiActionError);
    assert.equal(err.amiMessage, 'Invalid/unknown command');
    assert.equal(err.action, 'NoSuchThing');
    assert.equal(err.response.Response, 'Error');
  });

  test('per-action timeout rejects with AmiTimeoutError and forgets the ActionID (a late answer is ignored)', async () => {
    const { server, port } = await startServer();
    let late: (() => void) | undefined;
    server.handle('Slow', (action, conn) => {
      late = () => conn.respond(action, { Message: 'too late' });
      return undefined;
    });
    const c = client(port);
    await c.connect();
    const err = await c.action({ Action: 'Slow' }, { timeoutMs: 80 }).catch((e: unknown) => e);
    assert.ok(err instanceof AmiTimeoutError);
    assert.equal(err.timeoutMs, 80);
    assert.equal(c.pendingActions, 0);
    late?.();
    const { response } = await c.action({ Action: 'Ping' });
    assert.equal(response.Ping, 'Pong');
  });

  test('actions in flight at a disconnect reject at once with AmiDisconnectedError; actions while disconnected too', async () => {
    const { server, port } = await startServer();
    server.handle('Hang', () => undefined);
    const c = client(port, { reconnect: { initialDelayMs: 5000 } });
    await c.connect();
    const inFlight = Array.from({ length: 5 }, () =>
      c.action({ Action: 'Hang' }, { timeoutMs: 10_000 }),
    );
    await sleep(30);
    server.dropConnections();
    // AmiDisconnectedError, not the AmiTimeoutError of their 10 s timeout: rejected at the drop.
    for (const p of inFlight) await assert.rejects(p, AmiDisconnectedError);
    assert.equal(c.pendingActions, 0);
    await assert.rejects(c.action({ Action: 'Ping' }), AmiDisconnectedError);
  });

  test('injection attempt is refused before anything is sent', async () => {
    const { server, port } = await startServer();
    const c = client(port);
    await c.connect();
    const seen: string[] = [];
    server.on('action', (a) => seen.push(a.Action as string));
    await assert.rejects(c.action({ Action: 'Originate', Channel: 'x\r\nAction: Hangup' }));
    await c.action({ Action: 'Ping' });
    assert.deepEqual(seen, ['Ping']);
  });
});

describe('AmiClient keep-alive and reconnect', () => {
  test('pong timeout declares the connection dead and reconnects; connect emitted again', async () => {
    const { server, port } = await startServer();
    let answerPings = true;
    server.handle('Ping', (action, conn) => {
      if (answerPings) conn.respond(action, { Ping: 'Pong', Timestamp: '0' });
      return undefined;
    });
    let logins = 0;
    server.on('login', () => logins++);
    const c = client(port, { pingIntervalMs: 40, pongTimeoutMs: 60 });
    await c.connect();
    await sleep(150);
    assert.equal(logins, 1, 'answered pings keep the connection');
    answerPings = false;
    const disconnected = once<[string, Error | undefined]>(c, 'disconnect');
    const reconnected = once(c, 'connect');
    const [, error] = await disconnected;
    assert.ok(error instanceof AmiTimeoutError);
    answerPings = true;
    await reconnected;
    assert.equal(logins, 2);
    assert.equal(c.connected, true);
  });

  test('after dropConnections the client reconnects and events flow again', async () => {
    const { server, port } = await startServer();
    const c = client(port);
    await c.connect();
    const reconnected = once(c, 'connect');
    server.dropConnections();
    await reconnected;
    const got = once<[AmiEvent, string]>(c, 'event');
    server.broadcast({ Event: 'Hello', Value: '1' });
    const [event] = await got;
    // FullyBooted comes first after a login; wait for ours.
    if (event.Event === 'FullyBooted')
      assert.equal((await once<[AmiEvent]>(c, 'event'))[0].Event, 'Hello');
  });

  test('backoff grows exponentially up to maxDelayMs, with full jitter', async () => {
    const opts = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2 };
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map((n) => backoffDelayMs(n, opts, () => 0.999999)),
      [99, 199, 399, 799, 999, 999],
    );
    assert.equal(
      backoffDelayMs(3, opts, () => 0),
      0,
    );
    // On the wire: attempts against a dead port get further apart.
    const port = await closedPort();
    const times: number[] = [];
    const c = client(port, {
      retryInitialConnect: true,
      reconnect: { initialDelayMs: 10, factor: 2, maxDelayMs: 10_000 },
      random: () => 0.999,
    });
    c.on('error', () => times.push(Date.now()));
    c.connect().catch(() => undefined);
    await sleep(400);
    await c.close();
    assert.ok(times.length >= 4 && times.length <= 7, `${times.length} attempts`);
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    // Timers only fire late, never early: each gap is at least its backoff delay
    // (10, 20, 40, ... ms × 0.999, less a millisecond of clock rounding), and the last is far longer than the first.
    gaps.forEach((gap, i) => {
      assert.ok(gap >= Math.floor(10 * 2 ** i * 0.999) - 2, `gaps ${gaps}`);
    });
    assert.ok((gaps.at(-1) as number) >= 4 * (gaps[0] as number) - 20, `gaps ${gaps}`);
  });

  test('close() sends Logoff, ends iterators and rejects later actions', async () => {
    const { server, port } = await startServer();
    const seen: string[] = [];
    server.on('action', (a) => seen.push(a.Action as string));
    const c = client(port);
    await c.connect();
    const iterated: string[] = [];
    const loop = (async () => {
      for await (const { event } of c) iterated.push(event.Event);
    })();
    await sleep(20);
    server.broadcast({ Event: 'One' });
    await sleep(20);
    await c.close();
    await loop;
    assert.deepEqual(seen, ['Login', 'Logoff']);
    assert.deepEqual(iterated, ['One']);
    await assert.rejects(c.action({ Action: 'Ping' }), AmiDisconnectedError);
    await assert.rejects(c.connect(), AmiDisconnectedError);
  });
});

describe('async iterator and pool', () => {
  test('iterator yields events in order; bounded buffer drops the oldest', async () => {
    const { server, port } = await startServer({ fullyBooted: false });
    const c = client(port);
    await c.connect();
    const stream = c.events({ maxBuffered: 5 });
    for (let i = 0; i < 20; i++) server.broadcast({ Event: 'N', I: String(i) });
    await c.action({ Action: 'Ping' }); // all 20 events arrived before the pong
    const got: string[] = [];
    for await (const { event, server: name } of stream) {
      assert.equal(name, `127.0.0.1:${port}`);
      got.push(event.I as string);
      if (got.length === 5) break;
    }
    assert.deepEqual(got, ['15', '16', '17', '18', '19']);
    assert.equal(stream.dropped, 15);
  });

  test('pool tags each event with its server, in emitter and iterator', async () => {
    const a = await startServer({ fullyBooted: false });
    const b = await startServer({ fullyBooted: false });
    const base = { username: 'admin', secret: USERS.admin, pingIntervalMs: 0 };
    const pool = new AmiPool([
      { ...base, port: a.port, name: 'pbx-a' },
      new AmiClient({ ...base, port: b.port, name: 'pbx-b' }),
    ]);
    cleanups.push(() => pool.close());
    const connects: string[] = [];
    pool.on('connect', (s) => connects.push(s));
    await pool.connect();
    assert.deepEqual(connects.sort(), ['pbx-a', 'pbx-b']);
    const emitted: string[] = [];
    pool.on('event', (e, s) => emitted.push(`${s}:${e.Event}`));
    const stream = pool.events();
    a.server.broadcast({ Event: 'FromA' });
    b.server.broadcast({ Event: 'FromB' });
    const iterated: string[] = [];
    for await (const { server, event } of stream) {
      iterated.push(`${server}:${event.Event}`);
      if (iterated.length === 2) break;
    }
    assert.deepEqual(iterated.sort(), ['pbx-a:FromA', 'pbx-b:FromB']);
    assert.deepEqual(emitted.sort(), ['pbx-a:FromA', 'pbx-b:FromB']);
    assert.equal((await pool.action('pbx-b', { Action: 'Ping' })).response.Ping, 'Pong');
    assert.throws(() => pool.client('nope'));
    assert.throws(
      () =>
        new AmiPool([
          { ...base, name: 'x' },
          { ...base, name: 'x' },
        ]),
    );
  });
});

describe('parseAmiUrl and secrecy', () => {
  test('parses tcp and tls URLs, percent-decoding, query options', () => {
    const o = parseAmiUrl(
      'tcp://ad%40min:p%40ss%3Aw0rd%2F@pbx.example.com:5039?auth=md5&name=pbx1',
    );
    assert.equal(o.username, 'ad@min');
    assert.equal(o.secret, 'p@ss:w0rd/');
    assert.equal(o.host, 'pbx.example.com');
    assert.equal(o.port, 5039);
    assert.equal(o.auth, 'md5');
    assert.equal(o.name, 'pbx1');
    assert.equal(o.tls, undefined);
    const t = parseAmiUrl('tls://u:s@[::1]');
    assert.equal(t.tls, true);
    assert.equal(t.port, 5038);
    assert.equal(t.host, '::1');
  });

  test('errors never contain the secret', () => {
    for (const url of [
      'http://u:topsecret@h',
      'tcp://u:topsecret@h:99999',
      'tcp://u:topsecret@h?auth=sha1',
      'tcp://u:topsecret@h?bogus=1',
      'tcp://u:top%ZZsecret@h',
      'tcp://:topsecret@h',
      'tcp//u:topsecret@h',
      'tcp://u:topsecret@',
    ]) {
      assert.throws(
        () => parseAmiUrl(url),
        (e: unknown) =>
          e instanceof AmiUrlError &&
          !e.message.includes('topsecret') &&
          !e.message.includes('top%ZZ'),
        url,
      );
    }
  });

  test('JSON, inspect and toString of options and client hide the secret, also after spreading', async () => {
    const o = parseAmiUrl('tcp://u:topsecret@h');
    const spread = { ...o, name: 'x' };
    for (const value of [o, spread]) {
      assert.ok(!JSON.stringify(value).includes('topsecret'));
      assert.ok(!inspect(value).includes('topsecret'));
      assert.ok(!String(value).includes('topsecret'));
    }
    const c = new AmiClient(spread);
    assert.ok(!JSON.stringify(c).includes('topsecret'));
    assert.ok(!inspect(c, { showHidden: true, depth: 5 }).includes('topsecret'));
    assert.equal(spread.secret, 'topsecret');
  });
});

function h0<T>(list: T[]): T {
  return list[0] as T;
}
