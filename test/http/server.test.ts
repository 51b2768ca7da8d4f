import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Type from 'typebox';
import { defaultConfig } from '../../src/config/load.ts';
import { HttpError, useErrorFormatter } from '../../src/http/errors.ts';
import {
  type App,
  createLogger,
  createServer,
  parseListen,
  type SwitchboardServer,
} from '../../src/http/server.ts';
import { VERSION } from '../../src/version.ts';

function testConfig(overrides: { bodyLimitBytes?: number; trustProxy?: boolean } = {}) {
  const config = defaultConfig();
  config.http.listen = '127.0.0.1:0';
  config.http.bodyLimitBytes = overrides.bodyLimitBytes ?? config.http.bodyLimitBytes;
  config.http.trustProxy = overrides.trustProxy ?? false;
  config.log.level = 'info';
  return config;
}

/** Collects log lines written by pino. */
function logSink() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      callback();
    },
  });
  return { stream, lines };
}

/** A feature module as the real ones are written: a plugin owning its routes. */
async function demoModule(app: App) {
  app.post(
    '/demo/echo',
    {
      schema: {
        summary: 'echo',
        body: Type.Object({ n: Type.Integer({ minimum: 1 }), name: Type.String() }),
      },
    },
    async (request) => ({ n: request.body.n, name: request.body.name }),
  );
  app.get('/demo/items/:id', async (request) => ({ id: (request.params as { id: string }).id }));
  app.get('/demo/slow', async () => {
    await sleep(300);
    return { done: true };
  });
  app.get('/demo/boom', async () => {
    throw new Error('database password is hunter2');
  });
}

/** A module with its own error shape (Barista's). */
async function baristaLike(app: App) {
  useErrorFormatter(app, (error) => ({
    body: {
      success: 'false',
      error: error.statusCode === 400 ? '1' : '99',
      message: error.message,
    },
  }));
  app.get('/barista/fail', async () => {
    throw new HttpError(400, 'frequency must be 1-10');
  });
}

describe('http server', () => {
  let server: SwitchboardServer;
  let base: string;
  const logs = logSink();
  let busUp = true;

  before(async () => {
    server = await createServer({
      config: testConfig({ bodyLimitBytes: 2048 }),
      logger: createLogger('info', logs.stream),
    });
    server.readiness.add('ami', () => true);
    server.readiness.add('bus', () => ({ ok: busUp, detail: busUp ? 'connected' : 'broker down' }));
    await server.app.register(demoModule);
    await server.app.register(baristaLike);
    ({ url: base } = await server.listen());
  });

  after(async () => {
    await server.close();
  });

  test('parseListen handles IPv4, names and bracketed IPv6', () => {
    assert.deepEqual(parseListen('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 });
    assert.deepEqual(parseListen('[::1]:9'), { host: '::1', port: 9 });
    assert.deepEqual(parseListen('localhost:0'), { host: 'localhost', port: 0 });
    assert.throws(() => parseListen('8080'));
  });

  test('/healthz answers 200', async () => {
    const response = await fetch(`${base}/healthz`);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { status: 'ok' });
  });

  test('/readyz flips with the readiness checks and names the failed one', async () => {
    let response = await fetch(`${base}/readyz`);
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { status: string }).status, 'ready');

    busUp = false;
    response = await fetch(`${base}/readyz`);
    assert.equal(response.status, 503);
    const body = (await response.json()) as {
      failed: string[];
      checks: Record<string, { ok: boolean; detail?: string }>;
    };
    assert.deepEqual(body.failed, ['bus']);
    assert.equal(body.checks.bus?.detail, 'broker down');
    assert.equal(body.checks.ami?.ok, true);

    busUp = true;
    assert.equal((await fetch(`${base}/readyz`)).status, 200);

    const remove = server.readiness.add('db', () => {
      throw new Error('no connection');
    });
    response = await fetch(`${base}/readyz`);
    assert.equal(response.status, 503);
    assert.deepEqual(((await response.json()) as { failed: string[] }).failed, ['db']);
    remove();
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
  });

  test('/metrics exposes the HTTP histogram by route pattern after a request', async () => {
    await fetch(`${base}/demo/items/42`);
    await fetch(`${base}/demo/items/43`);
    await fetch(`${base}/no/such/path`);
    const response = await fetch(`${base}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /text\/plain/);
    const text = await response.text();
    assert.match(
      text,
      /^switchboard_http_request_duration_seconds_count\{route="\/demo\/items\/:id",method="GET",status_code="200"\} 2$/m,
    );
    assert.match(text, /route="unmatched",method="GET",status_code="404"/);
    assert.ok(!text.includes('/demo/items/42'), 'ids never become labels');
    // The standard process and Node.js names (stock dashboards), the rest switchboard_*.
    assert.match(text, /^process_cpu_seconds_total /m);
    assert.match(text, /^process_resident_memory_bytes /m);
    assert.match(text, /^nodejs_heap_size_used_bytes /m);
    assert.match(text, /^nodejs_eventloop_lag_p99_seconds /m);
    assert.match(
      text,
      new RegExp(
        `^switchboard_build_info\\{version="${VERSION.replaceAll('.', '\\.')}",node="${process.versions.node.replaceAll('.', '\\.')}"\\} 1$`,
        'm',
      ),
    );
    for (const line of text.split('\n')) {
      const name = /^([a-z_:]+)[{ ]/.exec(line)?.[1];
      if (name) {
        assert.ok(/^(switchboard|process|nodejs)_/.test(name), `${name}: unexpected prefix`);
        assert.ok(
          !name.startsWith('switchboard_process_') && !name.startsWith('switchboard_nodejs_'),
          name,
        );
      }
    }
  });

  test('JSON and form-encoded bodies are both accepted, with validation', async () => {
    const json = await fetch(`${base}/demo/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ n: 3, name: 'json' }),
    });
    assert.equal(json.status, 200);
    assert.deepEqual(await json.json(), { n: 3, name: 'json' });

    const form = await fetch(`${base}/demo/echo`, {
      method: 'POST',
      body: new URLSearchParams({ n: '4', name: 'form' }),
    });
    assert.equal(form.status, 200);
    assert.deepEqual(await form.json(), { n: 4, name: 'form' });

    const invalid = await fetch(`${base}/demo/echo`, {
      method: 'POST',
      body: new URLSearchParams({ n: '0', name: 'x' }),
    });
    assert.equal(invalid.status, 400);
    const error = (await invalid.json()) as { error: string; field: string; message: string };
    assert.equal(error.error, 'bad_request');
    assert.equal(error.field, 'body.n');
  });

  test('bodies over the limit get 413', async () => {
    const response = await fetch(`${base}/demo/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ n: 1, name: 'x'.repeat(4096) }),
    });
    assert.equal(response.status, 413);
    const form = await fetch(`${base}/demo/echo`, {
      method: 'POST',
      body: new URLSearchParams({ n: '1', name: 'x'.repeat(4096) }),
    });
    assert.equal(form.status, 413);
  });

  test('unexpected errors answer 500 without details', async () => {
    const response = await fetch(`${base}/demo/boom`);
    assert.equal(response.status, 500);
    const text = await response.text();
    assert.ok(!text.includes('hunter2'));
    assert.match(text, /internal error/);
  });

  test('a module renders errors in its own shape; others keep the default', async () => {
    const response = await fetch(`${base}/barista/fail`);
    assert.equal(response.status, 400);
    assert.deepEqual(await response.json(), {
      success: 'false',
      error: '1',
      message: 'frequency must be 1-10',
    });
    const other = await fetch(`${base}/no/such`);
    assert.equal(other.status, 404);
    assert.equal(((await other.json()) as { error: string }).error, 'not_found');
  });

  test('OpenAPI JSON at /docs/json lists module routes; UI at /docs', async () => {
    const response = await fetch(`${base}/docs/json`);
    assert.equal(response.status, 200);
    const doc = (await response.json()) as { openapi: string; paths: Record<string, unknown> };
    assert.match(doc.openapi, /^3\./);
    assert.ok(doc.paths['/demo/echo'], 'module route documented');
    assert.ok(doc.paths['/readyz']);
    const ui = await fetch(`${base}/docs`, { redirect: 'follow' });
    assert.equal(ui.status, 200);
    assert.match(await ui.text(), /swagger/i);
  });

  test('logs redact Authorization headers and secret query parameters', async () => {
    const before = logs.lines.length;
    await fetch(`${base}/demo/items/1?token=query-secret-123&x=1`, {
      headers: { authorization: 'Bearer header-secret-456', cookie: 'sid=cookie-secret-789' },
    });
    await sleep(50);
    const lines = logs.lines.slice(before);
    const written = lines.join('\n');
    // One line per request: method, URL (secret query parameters redacted), status, ms.
    assert.equal(lines.length, 1, written);
    const entry = JSON.parse(lines[0] as string) as {
      level: number;
      msg: string;
      http: { method: string; url: string; statusCode: number; ms: number };
    };
    assert.equal(entry.level, 30);
    assert.deepEqual(
      { ...entry.http, ms: typeof entry.http.ms },
      { method: 'GET', url: '/demo/items/1?token=***&x=1', statusCode: 200, ms: 'number' },
    );
    assert.match(entry.msg, /^GET \/demo\/items\/1\?token=\*\*\*&x=1 200 [\d.]+ ms$/);
    assert.doesNotMatch(written, /headers|authorization|cookie|user-agent/i, 'no header is logged');
    for (const secret of ['query-secret-123', 'header-secret-456', 'cookie-secret-789']) {
      assert.ok(!written.includes(secret), `${secret} leaked into logs`);
    }
    const logger = createLogger('info', logs.stream);
    logger.info({ password: 'pw-secret', nested: { token: 'tk-secret' } }, 'x');
    await sleep(10);
    const all = logs.lines.join('\n');
    assert.ok(!all.includes('pw-secret') && !all.includes('tk-secret'));
  });
});

describe('graceful shutdown', () => {
  test('in-flight requests finish, new connections are refused, readiness drops', async () => {
    const server = await createServer({
      config: testConfig(),
      logger: createLogger('silent'),
    });
    await server.app.register(demoModule);
    const { url } = await server.listen();
    const inflight = fetch(`${url}/demo/slow`);
    await sleep(50);
    const closed = server.close(5000);
    const readiness = await server.readiness.run();
    assert.equal(readiness.ready, false);
    assert.deepEqual(readiness.failed, ['shutdown']);
    const response = await inflight;
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { done: true });
    await closed;
    await assert.rejects(fetch(`${url}/healthz`));
    await server.close(); // idempotent
  });

  test('connections still open after the timeout are cut', async () => {
    const server = await createServer({ config: testConfig(), logger: createLogger('silent') });
    server.app.get('/hang', async () => {
      await sleep(5000);
      return {};
    });
    const { url } = await server.listen();
    const hanging = fetch(`${url}/hang`).then(
      () => 'answered',
      () => 'cut',
    );
    await sleep(50);
    await server.close(200);
    // Cut, not answered: close did not wait for the 5 s handler.
    assert.equal(await hanging, 'cut');
  });
});
