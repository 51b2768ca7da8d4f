// Issue 11, §4: `watch` and `record` gave up when the AMI server was unreachable at start,
// although the README says they reconnect; they now retry as `serve` does (one line says
// so), and `--fail-fast` exits with one line instead. The AMI URL means the same everywhere:
// `?auth=md5&name=pbx1` given to serve (here through SWITCHBOARD_AMI_SERVERS, as --ami)
// shows in `config check --print`.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AmiServer } from '../../src/ami/server.ts';
import { runCli, startCli, until } from '../support/cli.ts';
import { freePort } from '../support/net.ts';

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

for (const command of ['watch', 'record'] as const) {
  test(`${command}: an AMI server unreachable at start is retried until it answers`, async () => {
    const port = await freePort();
    const out = join(mkdtempSync(join(tmpdir(), 'sb-ami-start-')), 'rec.jsonl');
    const url = `tcp://admin:secret@127.0.0.1:${port}?name=pbx1`;
    const cli = startCli(
      command === 'watch' ? ['watch', '--ami', url] : ['record', '--ami', url, '--out', out],
    );
    cleanups.push(async () => {
      cli.child.kill('SIGKILL');
      await cli.exited;
    });
    await until(() => cli.stderr().includes('pbx1: not reachable'), 'the retry line');
    assert.match(cli.stderr(), /retrying/);
    // Now the PBX comes up on that port: the command connects by itself.
    const pbx = new AmiServer({ users: { admin: 'secret' } });
    await pbx.listen(port);
    cleanups.push(() => pbx.close());
    const connected = command === 'watch' ? 'pbx1: connected' : 'recording pbx1';
    await until(() => cli.stderr().includes(connected), 'the connection after the retries', 30_000);
    cli.child.kill('SIGINT');
    assert.equal(await cli.exited, 0, cli.stderr());
    if (command === 'record') assert.match(readFileSync(out, 'utf8'), /FullyBooted/);
  });

  test(`${command} --fail-fast: an unreachable AMI server exits 1 with one line`, async () => {
    const port = await freePort();
    const out = join(mkdtempSync(join(tmpdir(), 'sb-ami-start-')), 'rec.jsonl');
    const url = `tcp://admin:secret@127.0.0.1:${port}`;
    const args =
      command === 'watch'
        ? ['watch', '--fail-fast', '--ami', url]
        : ['record', '--fail-fast', '--ami', url, '--out', out];
    const result = await runCli(args);
    assert.equal(result.code, 1);
    const lines = result.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0] as string, /^switchboard: .*ECONNREFUSED/);
    assert.doesNotMatch(result.stderr, /secret/);
  });
}

test('config check --print shows auth and name given in the AMI URL (as serve --ami uses them)', async () => {
  const env = {
    ...process.env,
    SWITCHBOARD_CONFIG: '',
    SWITCHBOARD_AMI_SERVERS: 'tcp://u:s3cret@pbx.example:5038?auth=md5&name=pbx1',
  };
  const result = await runCli(['config', 'check', '--print', '-c', '/dev/null'], undefined, {
    env,
  });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /\n {6}name: pbx1\n {6}auth: md5\n/);
  assert.doesNotMatch(result.stdout, /s3cret/);
});

test('config check: a key contradicting the URL is one line naming the key', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-ami-url-'));
  const file = join(dir, 'c.yaml');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(
    file,
    "ami:\n  servers:\n    - url: 'tcp://u:s3cret@pbx:5038?auth=md5&name=pbx1'\n      auth: plain\n",
  );
  const result = await runCli(['config', 'check', '-c', file]);
  assert.equal(result.code, 1);
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0] as string, /ami\.servers\[0\]\.url: auth plain contradicts auth=md5/);
  assert.doesNotMatch(result.stderr, /s3cret/);
});
