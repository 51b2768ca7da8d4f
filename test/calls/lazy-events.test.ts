/**
 * Lazy parsing in the live runner (issue 16): events the engine does not use are skipped
 * unparsed after the first of each name per connection (whose `Privilege` is read
 * evidence); a reporter with `onAmiEvent` gets every event.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AmiEvent } from '../../src/ami/message.ts';
import { AmiServer } from '../../src/ami/server.ts';
import { AmiRunner } from '../../src/calls/live.ts';
import type { Reporter } from '../../src/calls/reporter.ts';
import { until } from '../support/cli.ts';

const NOISE: AmiEvent[] = [
  { Event: 'VarSet', Privilege: 'dialplan,all', Channel: 'Local/1', Variable: 'A', Value: '1' },
  { Event: 'Newexten', Privilege: 'dialplan,all', Channel: 'Local/1', Application: 'Set' },
  { Event: 'DeviceStateChange', Privilege: 'call,all', Device: 'Local/1', State: 'INUSE' },
];

async function run(reporter: Reporter): Promise<{ names: string[]; runner: AmiRunner }> {
  const server = new AmiServer({ users: { switchboard: 's3cret' } });
  server.handle('CoreShowChannels', () => ({ events: [], complete: 'CoreShowChannelsComplete' }));
  await server.listen();
  const runner = new AmiRunner(
    [
      {
        port: server.port,
        name: 'pbx',
        username: 'switchboard',
        secret: 's3cret',
        pingIntervalMs: 0,
      },
    ],
    reporter,
    { onStatus: () => {} },
  );
  const names: string[] = [];
  runner.clients[0]?.on('event', (event) => names.push(event.Event));
  try {
    await runner.start();
    await until(() => runner.permissions('pbx') !== undefined, 'the permission check');
    for (let round = 0; round < 3; round++) for (const event of NOISE) server.broadcast(event);
    server.broadcast({ Event: 'UserEvent', Privilege: 'user,all', UserEvent: 'Marker' });
    await until(() => names.includes('UserEvent'), 'the marker');
    return { names, runner };
  } finally {
    await runner.stop();
    await server.close();
  }
}

test('watch-style runner: each ignored event name is parsed once, then skipped', async () => {
  const { names, runner } = await run({ onCallEvent: () => {} });
  const count = (name: string) => names.filter((n) => n === name).length;
  assert.equal(count('VarSet'), 1);
  assert.equal(count('Newexten'), 1);
  assert.equal(count('DeviceStateChange'), 1);
  assert.ok(count('UserEvent') >= 1);
  // The first VarSet proved the dialplan read class.
  assert.equal(runner.permissions('pbx')?.read.dialplan, 'granted');
});

test('a reporter that wants raw AMI events gets every one', async () => {
  const raw: string[] = [];
  const { names } = await run({
    onCallEvent: () => {},
    onAmiEvent: (event) => {
      raw.push(event.Event);
    },
  });
  for (const name of ['VarSet', 'Newexten', 'DeviceStateChange']) {
    assert.equal(names.filter((n) => n === name).length, 3, name);
    assert.equal(raw.filter((n) => n === name).length, 3, name);
  }
});
