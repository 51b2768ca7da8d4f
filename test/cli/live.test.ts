import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { AmiEvent } from '../../src/ami/message.ts';
import { AmiServer } from '../../src/ami/server.ts';
import { ROOT, runCli, startCli, until } from '../support/cli.ts';
import { loadFixture, loadGolden } from '../support/conformance.ts';
import { coreShowChannels } from '../support/pbx-state.ts';

const SECRET = 'n0t-in-any-output';
const dir = mkdtempSync(join(tmpdir(), 'switchboard-live-'));

async function fakePbx(): Promise<{
  server: AmiServer;
  url: string;
  send: (events: AmiEvent[]) => void;
  logins: boolean[];
}> {
  const sent: AmiEvent[] = [];
  const logins: boolean[] = [];
  const server = new AmiServer({ users: { switchboard: SECRET } });
  server.handle('CoreShowChannels', () => ({
    events: coreShowChannels(sent),
    complete: 'CoreShowChannelsComplete',
  }));
  server.on('login', (_connection, ok) => logins.push(ok));
  await server.listen();
  return {
    server,
    logins,
    url: `tcp://switchboard:${SECRET}@127.0.0.1:${server.port}`,
    send: (events) => {
      for (const event of events) {
        sent.push(event);
        const { content: _content, ...wire } = event;
        server.broadcast(wire as AmiEvent);
      }
    },
  };
}

function callEvents(name: string): AmiEvent[] {
  return loadFixture(name).filter((event) => event.Event !== 'FullyBooted');
}

describe('switchboard watch / record against a fake Asterisk', () => {
  const servers: AmiServer[] = [];
  after(async () => {
    for (const server of servers) await server.close();
  });

  test('watch --format jsonl prints the call events live and exits 0 on SIGINT', async () => {
    const pbx = await fakePbx();
    servers.push(pbx.server);
    const name = 'xfer_blind/xfer_blind_abbcac';
    const golden = loadGolden(name);
    const cli = startCli(['watch', '--ami', pbx.url, '--format', 'jsonl']);
    await until(() => cli.stderr().includes('channels in progress'), 'watch to connect');
    pbx.send(callEvents(name));
    await until(
      () => cli.stdout().split('\n').filter(Boolean).length >= golden.length,
      'the call events',
    );
    cli.child.kill('SIGINT');
    assert.equal(await cli.exited, 0);
    const lines = cli
      .stdout()
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as unknown);
    assert.deepStrictEqual(lines, golden);
    assert.ok(!cli.stderr().includes(SECRET));
  });

  test('watch with a wrong secret: one-line error with Asterisk message, exit 1, one login attempt', async () => {
    const pbx = await fakePbx();
    servers.push(pbx.server);
    const result = await runCli([
      'watch',
      '--ami',
      `tcp://switchboard:wrong-${SECRET}@127.0.0.1:${pbx.server.port}`,
    ]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^switchboard: .*Authentication failed/m);
    assert.ok(!result.stderr.includes(SECRET));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(pbx.logins, [false]);
  });

  test('watch --fail-fast on an unreachable server fails with one line', async () => {
    const result = await runCli(['watch', '--fail-fast', '--ami', 'tcp://u:p@127.0.0.1:1']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^switchboard: .*(ECONNREFUSED|refused)/m);
  });

  test('record writes every event as JSON Lines; the file replays to the golden', async () => {
    const pbx = await fakePbx();
    servers.push(pbx.server);
    const name = 'simple/ab_callgroup';
    const out = join(dir, 'callgroup.jsonl');
    const cli = startCli(['record', '--ami', pbx.url, '--out', out]);
    await until(() => cli.stderr().includes('recording'), 'record to connect');
    const events = callEvents(name);
    pbx.send(events);
    await new Promise((resolve) => setTimeout(resolve, 300));
    cli.child.kill('SIGINT');
    assert.equal(await cli.exited, 0);
    const recorded = readFileSync(out, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as AmiEvent);
    // FullyBooted (sent after login) and the recording's events, in order.
    assert.equal(recorded[0]?.Event, 'FullyBooted');
    assert.deepStrictEqual(
      recorded.slice(1),
      events.map(({ content: _content, ...rest }) => rest),
    );
    const replay = await runCli(['replay', out, '--format', 'jsonl']);
    assert.equal(replay.code, 0);
    assert.deepStrictEqual(
      replay.stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as unknown),
      loadGolden(name),
    );
    assert.ok(!cli.stderr().includes(SECRET));
  });

  test("the README's ReportAllTheThings example compiles and prints the call", async () => {
    const pbx = await fakePbx();
    servers.push(pbx.server);
    const cli = startCli(
      [pbx.url],
      [process.execPath, join(ROOT, 'examples', 'report-all-the-things.ts')],
    );
    await until(() => pbx.logins.length === 1, 'the example to log in');
    await new Promise((resolve) => setTimeout(resolve, 100));
    pbx.send(callEvents('xfer_attended/xfer_abacbc'));
    await until(() => cli.stdout().includes('hung up'), 'the hangup line');
    cli.child.kill('SIGINT');
    await cli.exited;
    assert.deepEqual(cli.stdout().trimEnd().split('\n'), [
      '202 is being called by 201',
      '202 is now in conversation with 201',
      '203 is being called by 201',
      '203 is now in conversation with 201',
      '201 transferred 202 to 203',
      '202 hung up (reason: completed)',
    ]);
  });
});
