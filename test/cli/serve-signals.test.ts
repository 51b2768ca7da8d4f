// `switchboard serve` and its signals, as a real process: SIGHUP reloads the configuration
// files (what can change at runtime is applied, a bad file changes nothing), repeated and
// duplicated stop signals do not cut the graceful shutdown short, a deliberate second Ctrl-C
// does.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DUPLICATE_WINDOW_MS } from '../../src/cli/signals.ts';
import { freePort, until as untilAsync } from '../serve/helpers.ts';
import { type RunningCli, startCli, until } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'sb-serve-signals-'));
const TOKEN_A = 'token-aaaaaaaaaaaaaaaa';
const TOKEN_B = 'token-bbbbbbbbbbbbbbbb';

interface Serve {
  cli: RunningCli;
  base: string;
  configFile: string;
  /** JSON log lines so far. */
  logs(): Array<{ level: number; msg: string } & Record<string, unknown>>;
}

function writeConfig(path: string, text: string): void {
  writeFileSync(path, text);
}

/**
 * The YAML of a serve that needs nothing outside the test (JSON logs unless `extra` has a
 * `log` section), plus `extra`; `http` keys beyond `listen` in `httpExtra`.
 */
function yaml(port: number, extra: string, httpExtra = ''): string {
  const log = /^log:/m.test(extra) ? '' : 'log:\n  format: json\n';
  return `http:\n  listen: 127.0.0.1:${port}\n${httpExtra}announce:\n  enabled: false\ndatabase:\n  url: ":memory:"\n${log}${extra}`;
}

async function startServe(
  name: string,
  extra: string,
  args: string[] = [],
  httpExtra = '',
): Promise<Serve> {
  const port = await freePort();
  const configFile = join(dir, `${name}.yaml`);
  writeConfig(configFile, yaml(port, extra, httpExtra));
  const cli = startCli(['serve', '--config', configFile, ...args]);
  const base = `http://127.0.0.1:${port}`;
  await untilAsync(
    async () =>
      cli.child.exitCode !== null ||
      (await fetch(`${base}/healthz`).catch(() => undefined))?.status === 200,
    'serve to start',
    20_000,
  ).catch((error: unknown) => {
    cli.child.kill('SIGKILL');
    throw error;
  });
  assert.equal(cli.child.exitCode, null, cli.stderr());
  return {
    cli,
    base,
    configFile,
    logs: () =>
      cli
        .stdout()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line)),
  };
}

/** The status of `GET /api/events` (behind the access rule) with this Bearer token. */
async function eventsStatus(base: string, token: string): Promise<number> {
  const abort = new AbortController();
  const response = await fetch(`${base}/api/events`, {
    headers: { authorization: `Bearer ${token}` },
    signal: abort.signal,
  });
  abort.abort();
  await response.body?.cancel().catch(() => {});
  return response.status;
}

describe('serve: SIGHUP reloads, SIGTERM/SIGINT stop gracefully', () => {
  const cleanups: (() => unknown)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('SIGHUP: tokens, log level and webhooks take effect; a bad file is one line and changes nothing; restart-only keys are named', async () => {
    const hooks: string[] = [];
    const receiver = createHttpServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        hooks.push(body);
        res.end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => receiver.close());
    const hookUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;

    const simulatorPort = await freePort();
    const s = await startServe(
      'reload',
      `log:\n  level: warn\n  format: json\nauth:\n  tokens:\n    - {name: a, token: ${TOKEN_A}}\nsimulator:\n  listen: 127.0.0.1:${simulatorPort}\n`,
      ['--simulator'],
    );
    cleanups.push(() => s.cli.child.kill('SIGKILL'));
    const port = new URL(s.base).port;
    const write = (extra: string) => writeConfig(s.configFile, yaml(Number(port), extra));
    assert.equal(await eventsStatus(s.base, TOKEN_A), 200);
    assert.equal(await eventsStatus(s.base, TOKEN_B), 401);
    const requestLines = () => s.logs().filter((l) => /^GET \/nope 404 /.test(l.msg)).length;
    await fetch(`${s.base}/nope`);
    assert.equal(requestLines(), 0, 'log.level warn: no request lines');

    // The new token replaces the old one; info logs; a webhook is added.
    write(
      `log:\n  level: info\n  format: json\nauth:\n  tokens:\n    - {name: b, token: ${TOKEN_B}}\nsimulator:\n  listen: 127.0.0.1:${simulatorPort}\nwebhooks:\n  endpoints:\n    - {url: "${hookUrl}", name: wall}\n`,
    );
    s.cli.child.kill('SIGHUP');
    await until(
      () => s.logs().some((l) => String(l.msg).startsWith('SIGHUP: configuration reloaded')),
      'the reload',
    );
    const reloaded = s
      .logs()
      .find((l) => String(l.msg).startsWith('SIGHUP: configuration reloaded'));
    assert.deepEqual([...((reloaded?.applied ?? []) as string[])].sort(), [
      'auth.tokens',
      'log.level',
      'webhooks.endpoints',
    ]);
    assert.equal(await eventsStatus(s.base, TOKEN_B), 200);
    assert.equal(await eventsStatus(s.base, TOKEN_A), 401);
    await fetch(`${s.base}/nope`);
    await until(() => requestLines() === 1, 'a request line at info');
    await until(() => hooks.length > 0, 'a call event on the new webhook', 20_000);

    // A bad file: one error line, the running configuration kept.
    writeConfig(s.configFile, `${yaml(Number(port), '')}auth:\n  tokens: [{token: short}]\n`);
    s.cli.child.kill('SIGHUP');
    await until(() => s.logs().some((l) => l.level === 50), 'the refused reload');
    const refused = s.logs().filter((l) => l.level === 50);
    assert.equal(refused.length, 1);
    assert.equal(
      refused[0]?.msg,
      'SIGHUP: configuration not reloaded, the running one is kept: config: auth.tokens[0].token: expected at least 16 characters',
    );
    assert.equal(await eventsStatus(s.base, TOKEN_B), 200);

    // A key that needs a restart: named, not applied.
    const newPort = await freePort();
    writeConfig(
      s.configFile,
      yaml(
        newPort,
        `auth:\n  tokens:\n    - {name: b, token: ${TOKEN_B}}\nsimulator:\n  listen: 127.0.0.1:${simulatorPort}\nwebhooks:\n  endpoints:\n    - {url: "${hookUrl}", name: wall}\n`,
      ),
    );
    s.cli.child.kill('SIGHUP');
    await until(
      () => s.logs().some((l) => l.level === 40 && String(l.msg).includes('restart')),
      'the restart warning',
    );
    const warning = s.logs().find((l) => l.level === 40 && String(l.msg).includes('restart'));
    assert.equal(warning?.msg, 'SIGHUP: changed but not applied until a restart: http.listen');
    assert.equal(await eventsStatus(s.base, TOKEN_B), 200, 'still on the old port');
    assert.ok(
      !s.cli.stdout().includes(TOKEN_B) && !s.cli.stdout().includes(TOKEN_A),
      'no token in the logs',
    );

    s.cli.child.kill('SIGTERM');
    assert.equal(await s.cli.exited, 0);
  });

  test('a SIGTERM repeated at once (systemd KillMode=control-group, a forwarding launcher) and a duplicated SIGINT still stop gracefully: exit 0', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const s = await startServe(`dup-${signal}`, '');
      cleanups.push(() => s.cli.child.kill('SIGKILL'));
      s.cli.child.kill(signal);
      s.cli.child.kill(signal);
      s.cli.child.kill(signal);
      assert.equal(await s.cli.exited, 0, `${signal}: ${s.cli.stderr()}`);
      assert.ok(
        s.logs().some((l) => l.msg === 'stopped'),
        'the shutdown ran to its end',
      );
    }
  });

  test('SIGHUP during the start, before any listener of serve would have been installed, does not kill it', async () => {
    const port = await freePort();
    const configFile = join(dir, 'early.yaml');
    writeConfig(configFile, yaml(port, ''));
    const cli = startCli(['serve', '--config', configFile]);
    cleanups.push(() => cli.child.kill('SIGKILL'));
    await until(() => cli.stdout().includes('"database ready"'), 'serve starting');
    cli.child.kill('SIGHUP');
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 0, cli.stderr());
  });

  test('a second Ctrl-C a moment after the first, while the shutdown waits for a request, exits 1 at once', async () => {
    const s = await startServe('force', '', [], '  shutdownTimeoutMs: 60000\n');
    cleanups.push(() => s.cli.child.kill('SIGKILL'));
    // A request whose body never arrives: the graceful shutdown waits for it.
    const { port } = new URL(s.base);
    const hanging = request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/api/cti/user_status_update',
      headers: { 'content-type': 'application/json', 'content-length': '1000' },
    });
    hanging.on('error', () => {});
    hanging.write('{"user_id":');
    cleanups.push(() => hanging.destroy());
    await sleep(100);
    s.cli.child.kill('SIGINT');
    await until(() => s.logs().some((l) => l.msg === 'stopping'), 'the shutdown to begin');
    await sleep(DUPLICATE_WINDOW_MS + 100);
    assert.equal(s.cli.child.exitCode, null, 'still waiting for the request');
    s.cli.child.kill('SIGINT');
    assert.equal(await s.cli.exited, 1);
    assert.ok(s.logs().some((l) => String(l.msg).startsWith('second Ctrl-C: exiting now')));
  });
});
