// The failures an operator used to meet silently (or twice, or without their cause), each as
// one line on stderr and a non-zero exit, through the real `switchboard` command
// (bin/switchboard.js → dist/, as installed).
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { BROKER_URL } from '../bus/helpers.ts';
import { fakePbx, freePort } from '../serve/helpers.ts';
import { ROOT, runCli, startCli, until } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'sb-cli-errors-'));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** The lines of `text`, without empty ones. */
function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

/** A port nothing listens on (bound, then released). */
const closedPort = (): Promise<number> => freePort();

/** A TCP server occupying a port, as another program would. */
async function occupy(): Promise<{ server: NetServer; port: number }> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/** A config for serve that needs neither Asterisk's spool nor anything outside the test. */
function serveConfig(name: string, extra = ''): string {
  return file(
    name,
    `announce:\n  enabled: false\ndatabase:\n  url: ":memory:"\nlog:\n  format: json\n${extra}`,
  );
}

describe('one line for each failure', () => {
  const cleanups: (() => unknown)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('--version and -V print the version and the Node it runs on', async () => {
    const { version } = (await import(join(ROOT, 'package.json'), { with: { type: 'json' } }))
      .default as { version: string };
    for (const flag of ['--version', '-V']) {
      const result = await runCli([flag]);
      assert.equal(result.code, 0);
      assert.equal(result.stdout, `switchboard ${version} (Node ${process.versions.node})\n`);
    }
  });

  test('an invalid configuration: one line per problem, each naming its key, nothing else', async () => {
    const one = await runCli([
      'config',
      'check',
      '--config',
      file('one.yaml', 'http: {listen: x}\n'),
    ]);
    assert.equal(one.code, 1);
    assert.deepEqual(lines(one.stderr), [
      'switchboard: config: http.listen: expected HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)',
    ]);
    const two = await runCli([
      'serve',
      '--config',
      file('two.yaml', 'http: {listen: x}\namqp: {url: "http://x"}\n'),
    ]);
    assert.equal(two.code, 1);
    assert.deepEqual(lines(two.stderr), [
      'switchboard: config: http.listen: expected HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)',
      'switchboard: config: amqp.url: expected a URL (amqp:// or amqps://), or empty',
    ]);
  });

  test('invalid YAML names the file, the line and the column', async () => {
    const bad = file('bad.yaml', 'http:\n  listen: 127.0.0.1:8080\n   docs: true\n');
    for (const args of [['config', 'check'], ['serve'], ['doctor']]) {
      const result = await runCli([...args, '--config', bad]);
      assert.equal(result.code, 1, args.join(' '));
      assert.match(
        `${result.stdout}${result.stderr}`,
        new RegExp(
          `${bad.replaceAll('.', '\\.')}:2:11: invalid YAML: [^\\n]+\\(BLOCK_AS_IMPLICIT_KEY\\)`,
        ),
      );
    }
  });

  test('record --out to a directory that does not exist: one line at once, before connecting', async () => {
    const pbx = await fakePbx();
    cleanups.push(() => pbx.close());
    const result = await runCli(['record', '--ami', pbx.url, '--out', '/nonexistent/x.jsonl']);
    assert.equal(result.code, 1);
    assert.deepEqual(lines(result.stderr), [
      'switchboard: cannot write /nonexistent/x.jsonl: ENOENT',
    ]);
  });

  test('record whose writes fail (a full disk: /dev/full) stops with one line, exit 1', async () => {
    const pbx = await fakePbx();
    cleanups.push(() => pbx.close());
    const cli = startCli(['record', '--ami', pbx.url, '--out', '/dev/full']);
    cleanups.push(() => cli.child.kill('SIGKILL'));
    // FullyBooted after the login is the first event written; the flush a second later fails.
    assert.equal(await cli.exited, 1);
    const stderr = lines(cli.stderr());
    assert.match(stderr[0] ?? '', /^switchboard: recording .* to \/dev\/full \(Ctrl-C stops\)$/);
    assert.deepEqual(stderr.slice(1), [
      'switchboard: cannot write /dev/full: ENOSPC; recording stopped',
    ]);
  });

  test('watch --fail-fast with an unreachable Asterisk: the reason once, not as a status and then again', async () => {
    const port = await closedPort();
    // (without --fail-fast it retries: test/cli/ami-start.test.ts)
    const result = await runCli(['watch', '--fail-fast', '--ami', `tcp://u:p@127.0.0.1:${port}`]);
    assert.equal(result.code, 1);
    assert.deepEqual(lines(result.stderr), [
      `switchboard: 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`,
    ]);
  });

  test('replay of a JSON file that is not a recording says so', async () => {
    const result = await runCli(['replay', 'package.json']);
    assert.equal(result.code, 1);
    assert.deepEqual(lines(result.stderr), [
      'switchboard: package.json:1: not a recording: expected JSON Lines, one AMI event object with an "Event" string per line',
    ]);
    const array = await runCli(['replay', '-'], '[{"name": "x"}]');
    assert.equal(array.code, 1);
    assert.match(array.stderr, /^switchboard: <stdin>:1: not a recording: expected a JSON array/);
    // After a first event, a bad line is malformed JSON at its line.
    const later = await runCli(['replay', '-'], '{"Event":"FullyBooted"}\n{oops\n');
    assert.equal(later.code, 1);
    assert.match(later.stderr, /^switchboard: <stdin>:2: malformed JSON/);
  });

  test('listen --url to a port nothing listens on: ECONNREFUSED, not "fetch failed"', async () => {
    const port = await closedPort();
    const result = await runCli(['listen', '--url', `http://127.0.0.1:${port}`]);
    assert.equal(result.code, 1);
    assert.deepEqual(lines(result.stderr), [
      `switchboard: cannot reach http://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`,
    ]);
  });

  test('listen --amqp with a wrong password: one line at once, exit 1, the password never shown', async () => {
    const url = new URL(BROKER_URL);
    url.password = 'not-the-password';
    const result = await runCli(['listen', '--amqp', url.toString()]);
    assert.equal(result.code, 1);
    assert.deepEqual(lines(result.stderr), [
      `switchboard: RabbitMQ at ${url.hostname}:${url.port || 5672} (vhost /) refused the login (403 ACCESS-REFUSED): check the user and password of --amqp / amqp.url`,
    ]);
    assert.doesNotMatch(result.stderr, /not-the-password/);
  });

  test('listen --amqp with an unreachable broker says so at once and keeps trying until Ctrl-C', async () => {
    const port = await closedPort();
    const cli = startCli(['listen', '--amqp', `amqp://guest:guest@127.0.0.1:${port}/`]);
    cleanups.push(() => cli.child.kill('SIGKILL'));
    await until(() => cli.stderr().includes('ECONNREFUSED'), 'the unreachable broker reported');
    assert.equal(
      lines(cli.stderr())[0],
      `switchboard: cannot reach RabbitMQ at 127.0.0.1:${port} (vhost /): connect ECONNREFUSED 127.0.0.1:${port}; retrying (Ctrl-C stops)`,
    );
    cli.child.kill('SIGINT');
    assert.equal(await cli.exited, 0);
    assert.equal(cli.stderr().match(/ECONNREFUSED/g)?.length, 1, 'said once');
    assert.doesNotMatch(cli.stderr(), /guest:guest/);
  });

  test('serve on a port in use names the listener and the key that moves it (HTTP, simulator)', async () => {
    const taken = await occupy();
    cleanups.push(() => taken.server.close());
    const http = await runCli([
      'serve',
      '--config',
      serveConfig('eaddr-http.yaml'),
      '--listen',
      `127.0.0.1:${taken.port}`,
    ]);
    assert.equal(http.code, 1);
    assert.deepEqual(
      lines(http.stderr).filter((l) => l.startsWith('switchboard:')),
      [
        `switchboard: cannot start: HTTP server: cannot listen on 127.0.0.1:${taken.port}: address already in use (EADDRINUSE; another process listens there); set http.listen (or --listen)`,
      ],
    );
    const sim = await runCli([
      'serve',
      '--config',
      serveConfig('eaddr-sim.yaml', `simulator:\n  listen: 127.0.0.1:${taken.port}\n`),
      '--simulator',
      '--listen',
      '127.0.0.1:0',
    ]);
    assert.equal(sim.code, 1);
    assert.deepEqual(
      lines(sim.stderr).filter((l) => l.startsWith('switchboard:')),
      [
        `switchboard: cannot start: embedded PBX simulator: cannot listen on 127.0.0.1:${taken.port}: address already in use (EADDRINUSE; another process listens there); set simulator.listen`,
      ],
    );
    const alone = await runCli(['sim', '--listen', `127.0.0.1:${taken.port}`]);
    assert.equal(alone.code, 1);
    assert.match(
      alone.stderr,
      /^switchboard: PBX simulator: cannot listen on .*EADDRINUSE.*--listen/,
    );
  });

  test('a webhook that fails: each attempt at warn with its cause, the drop at error with the cause', async () => {
    const port = await closedPort();
    const config = serveConfig(
      'webhook.yaml',
      `webhooks:\n  retryBaseMs: 10\n  endpoints:\n    - {url: "http://127.0.0.1:${port}/hook?token=hook-secret-1", maxRetries: 1, events: [call.b_dial]}\n`,
    );
    const cli = startCli(
      ['serve', '--config', config, '--simulator', '--listen', '127.0.0.1:0'],
      undefined,
      {
        env: { ...process.env, SWITCHBOARD_SIMULATOR_LISTEN: '127.0.0.1:0' },
      },
    );
    cleanups.push(() => cli.child.kill('SIGKILL'));
    const logs = (): Array<Record<string, unknown>> =>
      lines(cli.stdout()).flatMap((line) => {
        try {
          return [JSON.parse(line) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
    await until(
      () => logs().some((l) => l.level === 50 && String(l.msg).startsWith('webhook')),
      `a dropped webhook delivery (output: ${cli.stdout()}${cli.stderr()})`,
      30_000,
    );
    const attempt = logs().find((l) => l.level === 40 && String(l.msg).startsWith('webhook'));
    assert.ok(attempt, 'the failed attempt is a warning');
    assert.equal(
      attempt.msg,
      `webhook 127.0.0.1:${port}: attempt 1 failed (connect ECONNREFUSED 127.0.0.1:${port}); retrying in 10 ms`,
    );
    const drop = logs().find((l) => l.level === 50 && String(l.msg).startsWith('webhook'));
    assert.equal(
      drop?.msg,
      `webhook 127.0.0.1:${port}: b_dial event dropped after 2 attempts (failed: connect ECONNREFUSED 127.0.0.1:${port})`,
    );
    assert.doesNotMatch(cli.stdout(), /hook-secret-1/);
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 0);
  });

  test('jenkins-watch --announce-url that nothing listens on: the announcement failure says ECONNREFUSED', async () => {
    let color = 'blue';
    const jenkins: Server = createHttpServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ jobs: [{ name: 'build', url: 'http://j/job/build/', color }] }));
    });
    await new Promise<void>((resolve) => jenkins.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => jenkins.close());
    const jenkinsUrl = `http://127.0.0.1:${(jenkins.address() as { port: number }).port}`;
    const port = await closedPort();
    const config = file(
      'jenkins.yaml',
      `jenkins:\n  url: "${jenkinsUrl}"\n  extension: "100"\ndatabase:\n  url: "${join(dir, 'jenkins.db')}"\nlog:\n  format: json\n`,
    );
    const args = [
      'jenkins-watch',
      '--config',
      config,
      '--once',
      '--announce-url',
      `http://127.0.0.1:${port}`,
    ];
    const baseline = await runCli(args);
    assert.equal(baseline.code, 0, baseline.stderr);
    color = 'red';
    const failed = await runCli(args);
    const entry = lines(failed.stderr)
      .map((line) => JSON.parse(line) as { msg: string; err?: string })
      .find((l) => l.msg.startsWith('jenkins: announcement failed'));
    assert.equal(
      entry?.err,
      `Gong API at http://127.0.0.1:${port} unreachable: connect ECONNREFUSED 127.0.0.1:${port}`,
    );
  });
});
