// `watch` and `replay` against hostile input, as real processes (issue 10 §4): a fake
// Asterisk sending UserEvents with headers named like Object.prototype members and a flood
// of Newchannel; recordings with such keys.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { AmiServer } from '../../src/ami/server.ts';
import { runCli, startCli, until } from '../support/cli.ts';
import { PROTOTYPE_NAMES, prototypeUserEventWire, valueFor } from '../support/hostile.ts';

const SECRET = 'hostile-cli-secret';
const dir = mkdtempSync(join(tmpdir(), 'switchboard-hostile-'));
const servers: AmiServer[] = [];
after(async () => {
  for (const server of servers) await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const NEWCHANNEL =
  'Event: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/200-00000001\r\nChannelState: 4\r\nChannelStateDesc: Ring\r\nCallerIDNum: 200\r\nCallerIDName: Alice\r\nUniqueid: 1700000004.1\r\nLinkedid: 1700000004.1\r\n\r\n';

type UserEventLine = { event: string; amiEvent: Record<string, unknown> };

function userEvents(stdout: string): UserEventLine[] {
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as UserEventLine)
    .filter((line) => line.event === 'user_event');
}

function assertEveryName(line: UserEventLine | undefined): void {
  assert.ok(line);
  for (const name of PROTOTYPE_NAMES) {
    assert.equal(Object.getOwnPropertyDescriptor(line.amiEvent, name)?.value, valueFor(name), name);
  }
}

describe('switchboard watch and a hostile PBX', () => {
  test('UserEvents named like Object.prototype members are printed; a flood is bounded and logged', async () => {
    const server = new AmiServer({ users: { switchboard: SECRET } });
    server.handle('CoreShowChannels', () => ({ events: [], complete: 'CoreShowChannelsComplete' }));
    servers.push(server);
    await server.listen();
    let logins = 0;
    server.on('login', (_c, ok) => {
      if (ok) logins++;
    });
    const url = `tcp://switchboard:${SECRET}@127.0.0.1:${server.port}`;
    const cli = startCli(['watch', '--ami', url, '--format', 'jsonl', '--max-channels', '20']);
    await until(() => cli.stderr().includes('channels in progress'), 'watch to connect');
    // Several times each: the parser's generic and compiled paths.
    server.broadcastRaw(NEWCHANNEL + prototypeUserEventWire('1700000004.1').repeat(5));
    await until(() => userEvents(cli.stdout()).length === 5, 'five user events');
    for (const line of userEvents(cli.stdout())) assertEveryName(line);
    // A flood of channels that never hang up.
    let flood = '';
    for (let i = 0; i < 2000; i++) {
      flood += `Event: Newchannel\r\nChannel: PJSIP/f-${i}\r\nChannelState: 0\r\nUniqueid: 1700000005.${i}\r\n\r\n`;
    }
    server.broadcastRaw(flood);
    await until(() => cli.stderr().includes('channel(s) forgotten'), 'the warning');
    // The connection survived all of it: still the first login, still printing.
    server.broadcastRaw(prototypeUserEventWire('1700000005.1999', 'After'));
    await until(() => userEvents(cli.stdout()).length === 6, 'the event after the flood');
    assert.equal(logins, 1);
    assert.doesNotMatch(cli.stderr(), /connection lost/);
    cli.child.kill('SIGINT');
    assert.equal(await cli.exited, 0);
    assert.match(cli.stderr(), /more than 20 live channels \(ami\.maxChannels\)/);
    assert.ok(!cli.stderr().includes(SECRET));
  });

  test('--max-channels must be a whole number >= 1', async () => {
    const result = await runCli(['watch', '--ami', 'tcp://u:p@127.0.0.1:1', '--max-channels', '0']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /--max-channels/);
  });
});

describe('switchboard replay and recordings with such keys', () => {
  const newchannel = {
    Event: 'Newchannel',
    Channel: 'PJSIP/200-00000001',
    ChannelState: '4',
    Uniqueid: '1700000006.1',
    Linkedid: '1700000006.1',
  };
  const user = Object.fromEntries([
    ['Event', 'UserEvent'],
    ['Uniqueid', '1700000006.1'],
    ['UserEvent', 'Hostile'],
    ...PROTOTYPE_NAMES.map((name) => [name, valueFor(name)]),
  ]);

  test('JSON Lines and JSON array recordings: every key reaches the jsonl output', async () => {
    const events = [newchannel, user, user, user, user];
    const jsonl = join(dir, 'hostile.jsonl');
    writeFileSync(jsonl, `${events.map((e) => JSON.stringify(e)).join('\n')}\n`);
    const array = join(dir, 'hostile.json');
    writeFileSync(array, JSON.stringify(events, null, 1));
    for (const file of [jsonl, array]) {
      const result = await runCli(['replay', file, '--format', 'jsonl']);
      assert.equal(result.code, 0, result.stderr);
      const lines = userEvents(result.stdout);
      assert.equal(lines.length, 4, file);
      for (const line of lines) assertEveryName(line);
    }
  });

  test('a value that is not a string: one line naming the file and line, exit code not 0', async () => {
    const file = join(dir, 'bad.jsonl');
    writeFileSync(
      file,
      `${JSON.stringify(newchannel)}\n{"Event":"UserEvent","Uniqueid":["1",2]}\n`,
    );
    const result = await runCli(['replay', file, '--format', 'jsonl']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /bad\.jsonl:2: the value of "Uniqueid" is neither a string/);
  });
});
