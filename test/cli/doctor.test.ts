// `switchboard doctor` against the real PostgreSQL, Redis and RabbitMQ, a fake Asterisk, and
// the machine's sox and espeak-ng: one line per check, exit 1 on any failure, no secret shown.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { AmiServer } from '../../src/ami/server.ts';
import { BROKER_URL } from '../bus/helpers.ts';
import { AMI_SECRET, fakePbx, freePort } from '../serve/helpers.ts';
import { runCli } from '../support/cli.ts';

const PG_URL = process.env.SWITCHBOARD_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.SWITCHBOARD_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const dir = mkdtempSync(join(tmpdir(), 'sb-doctor-'));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

/** The check names of the output, in order, with `ok` or `FAIL`. */
function verdicts(stdout: string): string[] {
  return lines(stdout).map((line) => {
    const match = /^(ok|FAIL) +([^:]+):/.exec(line);
    assert.ok(match, `not a check line: ${line}`);
    return `${match[1]} ${match[2]}`;
  });
}

describe('switchboard doctor', () => {
  const cleanups: (() => unknown)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('everything reachable: one ok line per check, exit 0', async () => {
    const pbx = await fakePbx();
    cleanups.push(() => pbx.close());
    const spool = join(dir, 'spool', 'outgoing');
    mkdirSync(spool, { recursive: true });
    const config = file(
      'ok.yaml',
      [
        'ami:',
        `  servers: [{url: "${pbx.url}", name: pbx1}]`,
        `database: {url: "${PG_URL}"}`,
        `redis: {url: "${REDIS_URL}"}`,
        `amqp: {url: "${BROKER_URL}"}`,
        `announce: {playback: callfile, spoolDir: "${spool}"}`,
        '',
      ].join('\n'),
    );
    const result = await runCli(['doctor', '--config', config]);
    assert.equal(result.code, 0, `${result.stdout}${result.stderr}`);
    assert.deepEqual(verdicts(result.stdout), [
      'ok config',
      'ok sox',
      'ok espeak-ng',
      'ok database',
      'ok ami pbx1',
      'ok redis',
      'ok rabbitmq',
      'ok spool',
    ]);
    const out = result.stdout;
    assert.match(out, /^ok {4}config: .*ok\.yaml$/m);
    assert.match(out, /^ok {4}sox: SoX \S+, MP3 and WAV handlers/m);
    assert.match(out, /^ok {4}espeak-ng: espeak-ng \S+, voices for [^\n]*\bja\b/m);
    assert.match(out, /^ok {4}database: PostgreSQL \d+/m);
    assert.match(out, /^ok {4}ami pbx1: logged in to tcp:\/\/switchboard:\*\*\*@127\.0\.0\.1:\d+/m);
    assert.match(out, /^ok {4}redis: Redis \d/m);
    assert.match(out, /^ok {4}rabbitmq: RabbitMQ/m);
    assert.match(out, new RegExp(`^ok {4}spool: ${spool.replaceAll('.', '\\.')} writable$`, 'm'));
    assert.equal(result.stderr, '');
    assert.ok(!out.includes(AMI_SECRET), 'the AMI secret is never shown');
  });

  test('each failure is its own FAIL line saying why, exit 1; the secrets stay hidden', async () => {
    const pbx = await fakePbx();
    cleanups.push(() => pbx.close());
    const wrongSecret = pbx.url.replace(AMI_SECRET, 'wrong-secret-42');
    const unreachable = await freePort();
    const broker = new URL(BROKER_URL);
    broker.password = 'wrong-broker-pw';
    const config = file(
      'bad.yaml',
      [
        'ami:',
        `  servers: [{url: "${wrongSecret}", name: pbx1}, {url: "tcp://u:p@127.0.0.1:${unreachable}", name: pbx2}]`,
        `redis: {url: "redis://127.0.0.1:${unreachable}"}`,
        `amqp: {url: "${broker.toString()}"}`,
        `database: {url: "${join(dir, 'doctor.db')}"}`,
        `announce: {playback: callfile, spoolDir: "${join(dir, 'no-such-spool')}"}`,
        '',
      ].join('\n'),
    );
    const result = await runCli(['doctor', '--config', config, '--timeout-ms', '3000']);
    assert.equal(result.code, 1);
    assert.deepEqual(verdicts(result.stdout), [
      'ok config',
      'ok sox',
      'ok espeak-ng',
      'ok database',
      'FAIL ami pbx1',
      'FAIL ami pbx2',
      'FAIL redis',
      'FAIL rabbitmq',
      'FAIL spool',
    ]);
    assert.match(result.stdout, /^FAIL {2}ami pbx2: .*ECONNREFUSED/m);
    assert.match(result.stdout, /^FAIL {2}redis: .*ECONNREFUSED/m);
    assert.match(result.stdout, /^FAIL {2}rabbitmq: .*ACCESS-REFUSED/m);
    assert.match(
      result.stdout,
      /^FAIL {2}spool: announce\.spoolDir: .*no-such-spool does not exist$/m,
    );
    assert.match(result.stdout, /^FAIL {2}ami pbx1: .*(Authentication|refused)/im);
    assert.deepEqual(lines(result.stderr), ['switchboard: 5 of 9 checks failed']);
    for (const secret of ['wrong-secret-42', 'wrong-broker-pw']) {
      assert.ok(!result.stdout.includes(secret), `${secret} shown`);
    }
  });

  test('without sox and espeak-ng on PATH: they fail naming the packages; a bad config fails, the tools are still checked', async () => {
    const empty = mkdtempSync(join(dir, 'path-'));
    const config = file('tools.yaml', 'http: {listen: nowhere}\n');
    const result = await runCli(['doctor', '--config', config], undefined, {
      env: { ...process.env, PATH: empty },
    });
    assert.equal(result.code, 1);
    assert.deepEqual(verdicts(result.stdout).slice(0, 3), [
      'FAIL config',
      'FAIL sox',
      'FAIL espeak-ng',
    ]);
    assert.match(result.stdout, /^FAIL {2}config: http\.listen: expected HOST:PORT/m);
    assert.match(
      result.stdout,
      /^FAIL {2}sox: not installed \(apt-get install sox libsox-fmt-all espeak-ng\)$/m,
    );
    assert.match(result.stdout, /^FAIL {2}espeak-ng: espeak-ng not installed \(apt-get install/m);
  });

  test('AMI user without write originate and read user: one FAIL line per missing class naming what it breaks', async () => {
    // manager.conf: read = system,call  write = system,reporting,user (no originate; the
    // UserEvent probe is sent but never comes back: no read user)
    const server = new AmiServer({
      users: {
        limited: { secret: 'limited-pw-77', read: 'system,call', write: 'system,reporting,user' },
      },
    });
    const port = await server.listen(0);
    cleanups.push(() => server.close());
    const config = file(
      'classes.yaml',
      [
        'ami:',
        `  servers: [{url: "tcp://limited:limited-pw-77@127.0.0.1:${port}", name: pbx1}]`,
        `database: {url: "${join(dir, 'classes.db')}"}`,
        'announce: {playback: originate}',
        '',
      ].join('\n'),
    );
    const result = await runCli(['doctor', '--config', config]);
    assert.equal(result.code, 1, `${result.stdout}${result.stderr}`);
    const amiLines = lines(result.stdout).filter((line) => line.includes(' ami pbx1'));
    assert.match(
      amiLines[0] ?? '',
      /^ok {4}ami pbx1: logged in to .*classes checked for calls, callout, announce/,
    );
    const failures = amiLines.slice(1);
    assert.equal(failures.length, 2, failures.join('\n'));
    const originate = failures.find((line) => line.includes('write class originate'));
    assert.ok(originate, failures.join('\n'));
    assert.match(
      originate,
      /^FAIL {2}ami pbx1 classes: the AMI user lacks write class originate \(Originate\)/,
    );
    assert.match(originate, /alert calls: no alert call can be placed/);
    assert.match(originate, /announcements: no announcement can be played/);
    assert.match(originate, /add originate to write = in manager\.conf/);
    const user = failures.find((line) => line.includes('read class user'));
    assert.ok(user, failures.join('\n'));
    assert.match(user, /^FAIL {2}ami pbx1 classes: the AMI user lacks read class user: /);
    assert.match(user, /alert calls: the key a callee presses/);
    assert.match(user, /call events: user_event is never reported/);
    assert.ok(!result.stdout.includes('limited-pw-77'), 'the secret is never shown');
  });
});
