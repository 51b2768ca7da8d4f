// What `serve` logs look like to a person and to a machine: one readable line per entry on a
// terminal (or with --log-format pretty), JSON lines otherwise; one line per HTTP request.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { resolveLogFormat } from '../../src/http/server.ts';
import { freePort, until } from '../serve/helpers.ts';
import { BIN, startCli } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'sb-logs-'));

async function config(name: string, extra = ''): Promise<{ file: string; base: string }> {
  const port = await freePort();
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `http: {listen: "127.0.0.1:${port}"}\nannounce: {enabled: false}\ndatabase: {url: ":memory:"}\n${extra}`,
  );
  return { file, base: `http://127.0.0.1:${port}` };
}

const ready = (base: string) => async () =>
  (await fetch(`${base}/healthz`).catch(() => undefined))?.status === 200;

describe('serve logs', () => {
  const cleanups: (() => unknown)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('auto: pretty for a terminal, JSON for anything else', () => {
    assert.equal(resolveLogFormat('auto', { isTTY: true }), 'pretty');
    assert.equal(resolveLogFormat('auto', { isTTY: false }), 'json');
    assert.equal(resolveLogFormat('auto', {}), 'json');
    assert.equal(resolveLogFormat('json', { isTTY: true }), 'json');
    assert.equal(resolveLogFormat('pretty', {}), 'pretty');
  });

  test('--log-format pretty: every line readable, a request is one line with its status and duration, no header, no secret', async () => {
    const { file, base } = await config('pretty');
    const cli = startCli(['serve', '--config', file, '--log-format', 'pretty']);
    cleanups.push(() => cli.child.kill('SIGKILL'));
    await until(ready(base), 'serve to start', 20_000);
    await fetch(`${base}/nope?token=query-secret-1&x=1`, {
      headers: { authorization: 'Bearer header-secret-2' },
    });
    await until(async () => cli.stdout().includes('GET /nope'), 'the request line');
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 0);
    const lines = cli.stdout().split('\n').filter(Boolean);
    for (const line of lines) {
      assert.match(line, /^\[\d\d:\d\d:\d\d\.\d{3}\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL): /, line);
    }
    assert.deepEqual(
      lines.filter((l) => l.includes('/nope')).map((l) => l.replace(/^\[[^\]]+\] /, '')),
      [`INFO: GET /nope?token=***&x=1 404 ${/ 404 ([\d.]+) ms/.exec(cli.stdout())?.[1]} ms`],
    );
    assert.ok(lines.some((l) => /INFO: service: HTTP server listening \{"url":"http/.test(l)));
    assert.doesNotMatch(cli.stdout(), /query-secret-1|header-secret-2|authorization|"time":/i);
  });

  test('auto on a terminal is pretty (a real pseudo-terminal, through script(1))', async (t) => {
    if (spawnSync('script', ['--version']).status !== 0) {
      t.skip('script(1) is not installed');
      return;
    }
    const { file, base } = await config('tty');
    const command = `${process.execPath} ${BIN} serve --config ${file}`;
    const cli = startCli(['-qefc', command, '/dev/null'], ['script']);
    cleanups.push(() => cli.child.kill('SIGKILL'));
    await until(ready(base), 'serve to start', 20_000);
    await until(async () => cli.stdout().includes('switchboard started'), 'the start line');
    // The colour codes are there because it is a terminal; the text is the pretty line.
    const plain = cli
      .stdout()
      .replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), '');
    assert.match(plain, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: service: switchboard started/m);
    assert.doesNotMatch(plain, /^\{"level"/m);
    cli.child.kill('SIGTERM');
    await cli.exited;
  });

  test('not a terminal (journald, a pipe): JSON lines, and the request line has its fields', async () => {
    const { file, base } = await config('json');
    const cli = startCli(['serve', '--config', file]);
    cleanups.push(() => cli.child.kill('SIGKILL'));
    await until(ready(base), 'serve to start', 20_000);
    await fetch(`${base}/nope`);
    await until(async () => cli.stdout().includes('GET /nope'), 'the request line');
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 0);
    const entries = cli
      .stdout()
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const request = entries.filter((e) => String(e.msg).includes('/nope'));
    assert.equal(request.length, 1, 'one line per request');
    assert.deepEqual((request[0] as { http: Record<string, unknown> }).http.statusCode, 404);
    assert.equal(typeof entries[0]?.time, 'number');
  });
});
