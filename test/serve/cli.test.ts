// `switchboard serve`, `listen` and `config check` as real processes (run from the
// TypeScript sources through ./cli-entry.ts), against the real RabbitMQ.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { BROKER_URL, rawConsumer, uniqueName } from '../bus/helpers.ts';
import { type RunningCli, startCli } from '../support/cli.ts';
import { loadGolden } from '../support/conformance.ts';
import { fakePbx, fixtureEvents, readSse, until } from './helpers.ts';

const ENTRY = join(import.meta.dirname, 'cli-entry.ts');
const COMMAND = [process.execPath, ENTRY];
const dir = mkdtempSync(join(tmpdir(), 'sb-serve-cli-'));

function run(args: string[], env: Record<string, string> = {}): RunningCli {
  const saved = { ...process.env };
  // startCli inherits process.env: scope extra variables to this child.
  for (const [k, v] of Object.entries(env)) process.env[k] = v;
  try {
    return startCli(args, COMMAND);
  } finally {
    for (const k of Object.keys(env)) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** JSON lines printed so far. */
function lines(out: string): { routing_key: string }[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { routing_key: string });
}

describe('switchboard serve / listen / config check', () => {
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('config check: every problem named, exit 1; a valid file prints ok or the redacted config', async () => {
    const bad = file(
      'bad.yaml',
      'amqp:\n  url: "http://broker"\nhttp:\n  listen: "nope"\n  colour: blue\nwebhooks:\n  endpoints:\n    - {url: "http://h/", events: ["call*"]}\n',
    );
    const failed = run(['config', 'check', '--config', bad]);
    assert.equal(await failed.exited, 1);
    const err = failed.stderr();
    for (const key of ['amqp.url', 'http.listen', 'http.colour']) {
      assert.match(err, new RegExp(`config: ${key.replace('.', '\\.')}`), err);
    }
    const webhook = run([
      'config',
      'check',
      '--config',
      file('hook.yaml', 'webhooks:\n  endpoints:\n    - {url: "http://h/", events: ["call*"]}\n'),
    ]);
    assert.equal(await webhook.exited, 1);
    assert.match(webhook.stderr(), /webhooks\.endpoints\[0\]\.events\[0\]/);

    const good = file('good.yaml', 'amqp:\n  url: "amqp://user:hunter2@broker:5672/"\n');
    const ok = run(['config', 'check', '--config', good]);
    assert.equal(await ok.exited, 0);
    assert.equal(ok.stdout(), 'ok\n');
    const printed = run(['config', 'check', '--config', good, '--print']);
    assert.equal(await printed.exited, 0);
    assert.match(printed.stdout(), /amqp:\/\/user:\*\*\*@broker:5672/);
    assert.doesNotMatch(printed.stdout(), /hunter2/);

    const env = run(['config', 'check'], { SWITCHBOARD_HTTP_LISTEN: 'bad' });
    assert.equal(await env.exited, 1);
    assert.match(env.stderr(), /http\.listen \(from SWITCHBOARD_HTTP_LISTEN\)/);
  });

  test('listen without a broker explains what to do, exit 1; a bad binding key is a usage error', async () => {
    const none = run(['listen', 'call.#'], { SWITCHBOARD_AMQP_URL: '' });
    assert.equal(await none.exited, 1);
    assert.match(none.stderr(), /no message broker configured.*--url/);
    const bad = run(['listen', 'call*', '--amqp', BROKER_URL]);
    assert.equal(await bad.exited, 2);
    assert.match(bad.stderr(), /call\*/);
  });

  test('serve publishes; listen (AMQP), listen --url (SSE) and /api/events see the same; SIGTERM exits 0 after deregistering', async () => {
    const exchange = uniqueName('sb-cli');
    const consumer = await rawConsumer(exchange, 'service.#');
    cleanups.push(() => consumer.close());
    const pbx = await fakePbx();
    cleanups.push(() => pbx.close());
    const config = file(
      `${exchange}.yaml`,
      `amqp:\n  exchange: ${exchange}\nlog:\n  level: warn\nami:\n  servers:\n    - {url: "${pbx.url}", reconnectMinMs: 20, pingIntervalMs: 0}\n`,
    );
    // A free port for HTTP: bind, read, release.
    const { createServer } = await import('node:net');
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));
    const base = `http://127.0.0.1:${port}`;

    const serve = run([
      'serve',
      '--config',
      config,
      '--amqp',
      BROKER_URL,
      '--database',
      join(dir, 'serve.db'),
      '--listen',
      `127.0.0.1:${port}`,
    ]);
    cleanups.push(() => serve.child.kill('SIGKILL'));
    await until(
      async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200,
      `serve ready (stderr: ${serve.stderr()})`,
      20_000,
    );
    await consumer.waitUntil((ms) =>
      ms.some((m) => m.fields.routingKey === 'service.registered.switchboard'),
    );

    const listen = run(['listen', 'call.#', '--amqp', BROKER_URL, '--config', config]);
    cleanups.push(() => listen.child.kill('SIGKILL'));
    const listenSse = run(['listen', 'call.#', '--url', base]);
    cleanups.push(() => listenSse.child.kill('SIGKILL'));
    const sse = await readSse(`${base}/api/events?bind=call.%23`);
    cleanups.push(() => sse.close());
    await until(() => listen.stderr().includes('listening on'), 'listen ready', 15_000);
    await until(() => listenSse.stderr().includes('listening on'), 'listen --url ready');
    await until(() => sse.ready, 'SSE ready');
    await new Promise((resolve) => setTimeout(resolve, 200)); // listen --url: ': ready' not awaited

    const name = 'xfer_attended/xfer_abacbc';
    const golden = loadGolden(name) as { event: string }[];
    pbx.send(fixtureEvents(name));
    await sse.until((ms) => ms.length >= golden.length);
    await until(() => lines(listen.stdout()).length >= golden.length, 'listen lines');
    await until(() => lines(listenSse.stdout()).length >= golden.length, 'listen --url lines');
    assert.deepEqual(
      sse.messages.map((m) => m.data),
      golden,
    );
    assert.deepEqual(lines(listen.stdout()), sse.messages);
    assert.deepEqual(lines(listenSse.stdout()), sse.messages);

    serve.child.kill('SIGTERM');
    assert.equal(await serve.exited, 0, serve.stderr());
    await consumer.waitUntil((ms) =>
      ms.some((m) => m.fields.routingKey === 'service.deregistered.switchboard'),
    );
    await sse.ended;
    assert.equal(await listenSse.exited, 1, 'listen --url reports the end of the stream');
    listen.child.kill('SIGINT');
    assert.equal(await listen.exited, 0);
  });
});
