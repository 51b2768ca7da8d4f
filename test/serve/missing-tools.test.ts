// A `serve` whose PATH lacks espeak-ng (issue 14 §4, "failures are never disguised"): it says
// so at start, /readyz reports `tools` not ready naming espeak-ng, an alert call ends with
// eventstatus 99 and the reason in its history (no person is "no answer", no call is placed),
// and Gong's TTS answers 503 naming the missing program, not 500 "internal error".
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { after, test } from 'node:test';
import { startSimulator } from '../../src/sim/index.ts';
import {
  alertFields,
  calloutDialplan,
  getHistory,
  postCurlStyle,
  tempDir,
} from '../callout/helpers.ts';
import { startCli } from '../support/cli.ts';
import { freePort, until } from './helpers.ts';

const ENTRY = join(import.meta.dirname, 'cli-entry.ts');

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
});

/** A directory of symlinks to every program on PATH except `left` (first one of a name wins). */
function pathWithout(dir: string, left: readonly string[]): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  for (const source of (process.env.PATH ?? '').split(delimiter)) {
    if (source === '' || !existsSync(source)) continue;
    for (const name of readdirSync(source)) {
      if (left.includes(name) || existsSync(join(bin, name))) continue;
      try {
        symlinkSync(join(source, name), join(bin, name));
      } catch {
        // a name twice in one listing, or not linkable: skipped
      }
    }
  }
  return bin;
}

test('without espeak-ng: logged at start, /readyz not ready naming it, alert call eventstatus 99 with the reason, TTS 503', {
  timeout: 120_000,
}, async () => {
  const sim = await startSimulator({
    port: 0,
    dialplan: calloutDialplan(5_000),
    scripts: { '*': { answerAfterMs: 50, dtmf: '1', dtmfAfterMs: 100, hangupAfterMs: 2_000 } },
  });
  cleanups.push(() => sim.close());
  const dir = tempDir();
  const bin = pathWithout(dir, ['espeak-ng', 'espeak']);
  assert.ok(existsSync(join(bin, 'sox')), 'sox is still there');
  const port = await freePort();
  const config = join(dir, 'switchboard.yaml');
  writeFileSync(
    config,
    [
      'log: {level: info}',
      `database: {url: ${JSON.stringify(join(dir, 'switchboard.db'))}}`,
      'ami:',
      `  servers: [{url: "${sim.url()}", pingIntervalMs: 0, reconnectMinMs: 20, reconnectMaxMs: 100}]`,
      'callout:',
      `  mediaDir: ${JSON.stringify(join(dir, 'media'))}`,
      '  timeScale: 0.01',
      '  pollIntervalMs: 50',
      'announce:',
      `  soundsDir: ${JSON.stringify(join(dir, 'sounds'))}`,
      "  listen: ''",
      '  playback: originate',
      'push: {enabled: false}',
      '',
    ].join('\n'),
  );
  const cli = startCli(
    ['serve', '--config', config, '--listen', `127.0.0.1:${port}`],
    [process.execPath, ENTRY],
    { env: { ...process.env, PATH: bin } },
  );
  cleanups.push(() => cli.child.kill('SIGKILL'));
  const url = `http://127.0.0.1:${port}`;
  type Ready = {
    status: string;
    failed: string[];
    checks: Record<string, { ok: boolean; detail?: string }>;
  };
  let ready: Ready | undefined;
  // Up (AMI connected, database open) but not ready: only the tools fail.
  await until(
    async () => {
      const response = await fetch(`${url}/readyz`).catch(() => undefined);
      if (response === undefined) return false;
      ready = (await response.json()) as Ready;
      return response.status === 503 && ready.failed.join() === 'tools';
    },
    'readyz to report the tools alone',
    60_000,
  ).catch((error) => {
    throw new Error(
      `${error.message}: ${JSON.stringify(ready)} ${cli.stderr()} ${cli.stdout().slice(-2000)}`,
    );
  });
  assert.equal(ready?.status, 'not ready');
  assert.match(
    String(ready?.checks.tools?.detail),
    /^espeak-ng: espeak-ng not installed \(apt-get install .*espeak-ng\)/,
  );
  assert.match(String(ready?.checks.tools?.detail), /needed by alert calls .*announcements/);
  const entries = () =>
    cli
      .stdout()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: number; msg: string; [key: string]: unknown });
  const toolLinesNow = () => entries().filter((e) => e.msg.startsWith('tools: espeak-ng'));
  await until(() => toolLinesNow().length > 0, 'the tools line');
  const toolLines = toolLinesNow();
  assert.equal(toolLines.length, 1, 'one line at start');
  assert.equal(toolLines[0]?.level, 50, 'at error');
  assert.match(
    String(toolLines[0]?.msg),
    /alert calls .*announcements cannot work until it is installed/,
  );

  // An alert call: no call placed, eventstatus 99 with the reason; nobody is "no answer".
  const response = await postCurlStyle(
    url,
    alertFields(['1:tarou:601:Taro:1', '2:hanako:602:Hanako:1'], { calltype: '2', frequency: '3' }),
  );
  assert.equal(response.status, 200);
  const { eventid } = (await response.json()) as { eventid: string };
  let history = await getHistory(url, eventid);
  await until(
    async () => {
      history = await getHistory(url, eventid);
      return history.eventstatus !== '0' && history.eventstatus !== '1';
    },
    'the escalation to end',
    30_000,
  );
  assert.equal(history.eventstatus, '99', JSON.stringify(history));
  const body = history as unknown as { error?: string };
  assert.match(
    String(body.error),
    /^the message could not be prepared: espeak-ng is not installed/,
  );
  assert.deepEqual(
    history.result.map((r) => r.status),
    ['', ''],
    'no person counts as "no answer": no call was placed',
  );
  assert.equal(sim.originates().length, 0, 'nothing dialled');
  const failedLine = () => entries().find((e) => e.msg.startsWith('callout: escalation failed'));
  await until(() => failedLine() !== undefined, 'the log line of the failed escalation');
  const failed = failedLine();
  assert.equal(failed?.event, eventid);
  assert.equal(failed?.eventstatus, 99);
  assert.match(String(failed?.reason), /espeak-ng is not installed/);

  // Gong's TTS: 503 naming the program.
  const tts = await fetch(`${url}/messages/tts/add`, {
    method: 'POST',
    body: new URLSearchParams({ text: 'Lunch is ready' }),
  });
  const answer = (await tts.json()) as { error: string; code: string };
  assert.equal(tts.status, 503, JSON.stringify(answer));
  assert.equal(answer.code, 'tool_missing');
  assert.match(answer.error, /espeak-ng is not installed or not executable \(apt-get install/);

  cli.child.kill('SIGTERM');
  assert.equal(await cli.exited, 0);
});

test('without sox: /readyz names it, and Gong answers 503 naming sox instead of 500', {
  timeout: 120_000,
}, async () => {
  const dir = tempDir();
  const bin = pathWithout(dir, ['sox', 'soxi', 'play', 'rec']);
  assert.ok(existsSync(join(bin, 'espeak-ng')), 'espeak-ng is still there');
  const port = await freePort();
  const config = join(dir, 'switchboard.yaml');
  writeFileSync(
    config,
    [
      'log: {level: info}',
      `database: {url: ${JSON.stringify(join(dir, 'switchboard.db'))}}`,
      'callout: {enabled: false}',
      'announce:',
      `  soundsDir: ${JSON.stringify(join(dir, 'sounds'))}`,
      "  listen: ''",
      '  playback: originate',
      'push: {enabled: false}',
      '',
    ].join('\n'),
  );
  const cli = startCli(
    ['serve', '--config', config, '--listen', `127.0.0.1:${port}`],
    [process.execPath, ENTRY],
    { env: { ...process.env, PATH: bin } },
  );
  cleanups.push(() => cli.child.kill('SIGKILL'));
  const url = `http://127.0.0.1:${port}`;
  let detail = '';
  await until(
    async () => {
      const response = await fetch(`${url}/readyz`).catch(() => undefined);
      if (response === undefined) return false;
      const body = (await response.json()) as { checks: Record<string, { detail?: string }> };
      detail = body.checks.tools?.detail ?? '';
      return response.status === 503 && detail !== '';
    },
    'readyz to report the tools',
    60_000,
  );
  assert.match(detail, /^sox: not installed \(apt-get install sox libsox-fmt-all espeak-ng\)/);
  assert.match(detail, /\(needed by announcements\)$/);
  const tts = await fetch(`${url}/messages/tts/add`, {
    method: 'POST',
    body: new URLSearchParams({ text: 'Lunch is ready' }),
  });
  const answer = (await tts.json()) as { error: string; code: string };
  assert.equal(tts.status, 503, JSON.stringify(answer));
  assert.equal(answer.code, 'tool_missing');
  assert.match(answer.error, /\bsox is not installed or not executable/);
  cli.child.kill('SIGTERM');
  assert.equal(await cli.exited, 0);
});
