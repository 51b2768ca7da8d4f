// Issue 3's "Done when": with RabbitMQ configured, `switchboard listen 'call.#'` prints the
// calls of a recording streamed through `serve`, and a RabbitMQ restart in the middle loses
// none of them. serve and listen run as real processes; the broker really stops and starts
// (rabbitmqctl stop_app / start_app), so this runs only with
// SWITCHBOARD_TEST_BROKER_RESTART=1 (.ci/run sets it; tests there run one file at a time).
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { remapIdentifiers } from '../../src/ami/remap.ts';
import { BROKER_URL, deleteExchange, uniqueName, withBrokerStopped } from '../bus/helpers.ts';
import { type RunningCli, startCli } from '../support/cli.ts';
import { loadGolden } from '../support/conformance.ts';
import { fakePbx, fixtureEvents, freePort, until } from './helpers.ts';

const ENTRY = join(import.meta.dirname, 'cli-entry.ts');
const dir = mkdtempSync(join(tmpdir(), 'sb-broker-restart-'));
const NAME = 'xfer_attended/xfer_abacbc';
const CALLS = 30;

/** The golden call events with `-r<n>` appended to every uniqueid/linkedid. */
function suffixed(line: unknown, suffix: string): unknown {
  if (suffix === '' || line === null || typeof line !== 'object') return line;
  if (Array.isArray(line)) return line.map((item) => suffixed(item, suffix));
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(line)) {
    copy[key] =
      (key === 'uniqueid' || key === 'linkedid') && typeof value === 'string' && value !== ''
        ? value + suffix
        : suffixed(value, suffix);
  }
  return copy;
}

test('a RabbitMQ restart in the middle of a stream: listen --queue gets every call event', {
  skip:
    process.env.SWITCHBOARD_TEST_BROKER_RESTART !== '1' && 'set SWITCHBOARD_TEST_BROKER_RESTART=1',
  timeout: 180_000,
}, async () => {
  const exchange = uniqueName('test-restart');
  const queue = uniqueName('test-restart-listen');
  const pbx = await fakePbx();
  const children: RunningCli[] = [];
  after(async () => {
    for (const child of children) child.child.kill('SIGKILL');
    await pbx.close();
    await deleteExchange(exchange).catch(() => {});
  });
  const config = join(dir, 'switchboard.yaml');
  writeFileSync(
    config,
    `amqp:\n  exchange: ${exchange}\n  persistent: true\nlog:\n  level: warn\nami:\n  servers:\n    - {url: "${pbx.url}", pingIntervalMs: 0}\n`,
  );
  const port = await freePort();
  const serve = startCli(
    [
      'serve',
      '--config',
      config,
      '--amqp',
      BROKER_URL,
      '--database',
      join(dir, 'db.sqlite'),
      '--listen',
      `127.0.0.1:${port}`,
    ],
    [process.execPath, ENTRY],
  );
  children.push(serve);
  await until(
    async () =>
      (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200,
    `serve ready (${serve.stderr()})`,
    30_000,
  );
  const listen = startCli(
    ['listen', 'call.#', '--amqp', BROKER_URL, '--config', config, '--queue', queue],
    [process.execPath, ENTRY],
  );
  children.push(listen);
  await until(() => listen.stderr().includes('listening on'), 'listen ready', 20_000);

  const events = fixtureEvents(NAME);
  const golden = loadGolden(NAME);
  const expected: string[] = [];
  const sendCall = (n: number): void => {
    const suffix = n === 0 ? '' : `-r${n}`;
    pbx.send(events.map((event) => remapIdentifiers(event, suffix)));
    for (const line of golden) expected.push(JSON.stringify(suffixed(line, suffix)));
  };
  const pace = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 100));
  for (let n = 0; n < CALLS / 3; n++, await pace()) sendCall(n);
  // Calls keep coming while the broker is down: serve buffers them.
  await withBrokerStopped(async () => {
    for (let n = CALLS / 3; n < (2 * CALLS) / 3; n++, await pace()) sendCall(n);
  });
  for (let n = (2 * CALLS) / 3; n < CALLS; n++, await pace()) sendCall(n);

  const received = (): string[] =>
    listen
      .stdout()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.stringify((JSON.parse(line) as { data: unknown }).data));
  await until(
    () => new Set(received()).size >= new Set(expected).size,
    `every call event (got ${new Set(received()).size} of ${new Set(expected).size}; serve: ${serve.stderr().slice(-500)}; listen: ${listen.stderr().slice(-500)})`,
    90_000,
  );
  // At least once: duplicates are allowed (re-sent unconfirmed messages), gaps are not, and
  // first occurrences keep the publish order.
  const firsts: string[] = [];
  const seen = new Set<string>();
  for (const line of received()) {
    if (!seen.has(line)) {
      seen.add(line);
      firsts.push(line);
    }
  }
  assert.deepEqual(firsts, expected);
  serve.child.kill('SIGTERM');
  assert.equal(await serve.exited, 0, serve.stderr());
  listen.child.kill('SIGINT');
  assert.equal(await listen.exited, 0);
});
