// What a manager user may read and run (issue 11 §2): the fake Asterisk plays a user with
// given manager.conf classes as Asterisk 22 does (main/manager.c): Permission denied before
// any handler, ListCommands listing only the actions the user may run, events only of
// classes it may read; amiPermissions() finds out what Asterisk lets it find out.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { AmiClient } from '../../src/ami/client.ts';
import { AmiActionError } from '../../src/ami/errors.ts';
import type { AmiEvent } from '../../src/ami/message.ts';
import {
  AMI_CORE_ACTIONS,
  amiPermissions,
  describeMissing,
  isPermissionDenied,
  mayRun,
  parseClassList,
  parseListCommands,
  permissionProblems,
  ReadEvidence,
  writeClassesFrom,
} from '../../src/ami/permissions.ts';
import { AmiServer, type AmiServerUser } from '../../src/ami/server.ts';
import { until } from '../support/until.ts';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A fake Asterisk with one user `sb` of these classes, and a client logged in as it. */
async function pbxWith(user: Omit<AmiServerUser, 'secret'>, events?: string) {
  const server = new AmiServer({
    users: { sb: { secret: 'pw', ...user } },
    handlers: { CoreShowChannels: () => ({ events: [], complete: 'CoreShowChannelsComplete' }) },
  });
  const port = await server.listen();
  cleanups.push(() => server.close());
  const client = new AmiClient({
    port,
    username: 'sb',
    secret: 'pw',
    pingIntervalMs: 0,
    ...(events === undefined ? {} : { events }),
  });
  const received: AmiEvent[] = [];
  client.on('event', (event) => void received.push(event));
  cleanups.push(() => client.close());
  await client.connect();
  return { server, client, received };
}

/** The raw answer of the fake Asterisk to `text` after logging in as `sb`, up to `until`. */
async function raw(server: AmiServer, text: string, end: RegExp): Promise<string> {
  const socket = net.connect(server.port, '127.0.0.1');
  let received = '';
  socket.on('data', (d) => {
    received += d.toString();
  });
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write('Action: Login\r\nActionID: l\r\nUsername: sb\r\nSecret: pw\r\n\r\n');
  await until(() => received.includes('Authentication accepted'), 'the login');
  socket.write(text);
  await until(() => end.test(received), 'the answer');
  socket.destroy();
  return received;
}

describe('the fake Asterisk plays a manager user with read/write classes', () => {
  test('an action the user may not run: Permission denied, as Asterisk 22 words it, before any handler', async () => {
    const { server } = await pbxWith({ read: 'all', write: 'originate,user' });
    let ran = false;
    server.handle('CoreShowChannels', () => {
      ran = true;
      return { events: [] };
    });
    const text = await raw(
      server,
      'Action: CoreShowChannels\r\nActionID: trial-6\r\n\r\n',
      /ActionID: trial-6/,
    );
    assert.ok(
      text.endsWith('Response: Error\r\nActionID: trial-6\r\nMessage: Permission denied\r\n\r\n'),
      text,
    );
    assert.equal(ran, false);
  });

  test('ListCommands lists only what the user may run, with its classes', async () => {
    const { client } = await pbxWith({ read: 'all', write: 'originate,reporting' });
    const { response } = await client.action({ Action: 'ListCommands' });
    assert.equal(response.Ping, 'Keepalive command. (Priv: <none>)');
    assert.equal(response.Originate, 'Originate a call. (Priv: originate,all)');
    assert.equal(
      response.CoreShowChannels,
      'List currently active channels. (Priv: system,reporting,all)',
    );
    assert.equal(response.UserEvent, undefined);
    assert.equal(response.Hangup, undefined);
    const listed = parseListCommands(response);
    assert.deepEqual(listed.get('coreshowchannels'), {
      name: 'CoreShowChannels',
      classes: ['system', 'reporting'],
    });
    const write = writeClassesFrom(listed);
    assert.equal(write.originate, 'granted');
    // CoreShowChannels is listed and ModuleLoad (system only) is not: reporting it is.
    assert.equal(write.reporting, 'granted');
    assert.equal(write.system, 'missing');
    assert.equal(write.user, 'missing');
    assert.equal(write.call, 'missing');
  });

  test('events go only to users who may read every class of their Privilege; FullyBooted needs system', async () => {
    const { server, client, received } = await pbxWith({ read: 'call', write: 'all' });
    assert.ok(!received.some((e) => e.Event === 'FullyBooted'));
    server.broadcast({ Event: 'UserEvent', Privilege: 'user,all', UserEvent: 'SwitchboardDTMF' });
    server.broadcast({ Event: 'Newchannel', Privilege: 'call,all', Uniqueid: '1.1' });
    await until(() => received.some((e) => e.Event === 'Newchannel'), 'the call event');
    assert.ok(!received.some((e) => e.Event === 'UserEvent'));
    // The UserEvent action itself is allowed (write all) and acknowledged; its event is not sent.
    const { response } = await client.action({ Action: 'UserEvent', UserEvent: 'Mine' });
    assert.equal(response.Message, 'Event Sent');
  });

  test('the login Events mask narrows what a user may read', async () => {
    const { server, received } = await pbxWith({ read: 'all' }, 'call,system');
    assert.ok(received.some((e) => e.Event === 'FullyBooted'));
    server.broadcast({ Event: 'UserEvent', Privilege: 'user,all', UserEvent: 'X' });
    server.broadcast({ Event: 'Newchannel', Privilege: 'call,all', Uniqueid: '1.1' });
    await until(() => received.some((e) => e.Event === 'Newchannel'), 'the call event');
    assert.ok(!received.some((e) => e.Event === 'UserEvent'));
  });

  test('UserEvent comes back with every header of the action but Action and UserEvent', async () => {
    const { client, received } = await pbxWith({ read: 'all', write: 'all' });
    await client.action({ Action: 'UserEvent', UserEvent: 'Probe', Token: 'abc' });
    await until(() => received.some((e) => e.Event === 'UserEvent'), 'the user event');
    const event = received.find((e) => e.Event === 'UserEvent') as AmiEvent;
    assert.equal(event.Privilege, 'user,all');
    assert.equal(event.UserEvent, 'Probe');
    assert.equal(event.Token, 'abc');
    assert.match(String(event.ActionID), /.+/);
  });

  test('manager.conf class lists read as Asterisk reads them', () => {
    assert.equal(parseClassList('all').size, 19);
    assert.equal(parseClassList('on').size, 19);
    assert.deepEqual([...parseClassList('off')], []);
    assert.deepEqual([...parseClassList('call, user ,agent')].sort(), ['agent', 'call', 'user']);
    assert.deepEqual([...parseClassList('3')].sort(), ['call', 'system']);
    assert.deepEqual([...parseClassList('bogus')], []);
  });
});

describe('amiPermissions: what a client finds out about its own user', () => {
  test('a user with everything: every need met, read user proven by the probe', async () => {
    const { client } = await pbxWith({ read: 'all', write: 'all' });
    const permissions = await amiPermissions(client);
    assert.equal(permissions.read.user, 'granted');
    assert.equal(permissions.userReadBy, 'probe');
    assert.equal(mayRun(permissions, 'Originate'), 'granted');
    assert.equal(mayRun(permissions, 'CoreShowChannels'), 'granted');
    // read call cannot be asked: unknown until an event of class call arrives.
    assert.equal(permissions.read.call, 'unknown');
    const problems = permissionProblems(permissions);
    assert.ok(problems.every((p) => p.state === 'unknown'));
  });

  test('a user without read user: the probe does not come back; alert calls cannot work', async () => {
    const { client } = await pbxWith({ read: 'call,agent,system', write: 'all' });
    const evidence = new ReadEvidence();
    client.on('event', (event) => evidence.observe(event));
    const permissions = await amiPermissions(client, { evidence, probeTimeoutMs: 300 });
    assert.equal(permissions.read.user, 'missing');
    const problems = permissionProblems(permissions, ['callout']);
    const user = problems.find((p) => p.access === 'read' && p.classes.includes('user'));
    assert.equal(user?.state, 'missing');
    assert.equal(user?.severity, 'broken');
    const [line] = describeMissing('pbx1', problems);
    assert.equal(
      line,
      'pbx1: the AMI user lacks read class user: alert calls: the key a callee presses (UserEvent SwitchboardDTMF) never arrives: every answered call counts as no answer and the person is called again (add user to read = in manager.conf, and to events= of the AMI URL if it has one)',
    );
  });

  test('a read-only monitoring user: no CoreShowChannels, no Originate, read user unknowable', async () => {
    const { client } = await pbxWith({ read: 'call,agent', write: '' });
    const permissions = await amiPermissions(client, { probeTimeoutMs: 300 });
    assert.equal(mayRun(permissions, 'CoreShowChannels'), 'missing');
    assert.equal(mayRun(permissions, 'Originate'), 'missing');
    assert.equal(mayRun(permissions, 'ListCommands'), 'granted');
    assert.equal(permissions.read.user, 'unknown');
    assert.equal(permissions.userReadBy, 'none');
    const calls = permissionProblems(permissions, ['calls']);
    const resync = calls.find((p) => p.action === 'CoreShowChannels');
    assert.equal(resync?.state, 'missing');
    assert.equal(resync?.severity, 'degraded');
    assert.deepEqual(describeMissing('pbx1', calls), [
      'pbx1: the AMI user lacks write class system or reporting (CoreShowChannels): call events: calls in progress are not resynchronised after a (re)connect: they are kept as they were and followed by their live events; a call that ended while the connection was down is never reported hung up (add reporting to write = in manager.conf)',
    ]);
    await assert.rejects(client.action({ Action: 'CoreShowChannels' }), (error: unknown) => {
      assert.ok(error instanceof AmiActionError);
      assert.ok(isPermissionDenied(error));
      return true;
    });
  });

  test('read evidence: an event proves the classes its Privilege names', () => {
    const evidence = new ReadEvidence();
    assert.deepEqual(evidence.observe({ Event: 'Newchannel', Privilege: 'call,all' }), ['call']);
    assert.equal(evidence.observe({ Event: 'Hangup', Privilege: 'call,all' }), undefined);
    assert.equal(evidence.observe({ Event: 'X' }), undefined);
    // An item of an action's answer is sent whatever the user may read: no proof.
    assert.equal(
      evidence.observe({ Event: 'Status', Privilege: 'Call', ActionID: 'a-1' }),
      undefined,
    );
    assert.equal(
      evidence.observe({ Event: 'UserEvent', Privilege: 'user,all', ActionID: 'x' }),
      undefined,
    );
    assert.deepEqual(evidence.observe({ Event: 'QueueCallerAbandon', Privilege: 'agent,all' }), [
      'agent',
    ]);
    assert.deepEqual([...evidence.classes].sort(), ['agent', 'call']);
    evidence.reset();
    assert.equal(evidence.classes.size, 0);
  });

  test('the core action table is Asterisk 22 manager.c', () => {
    assert.deepEqual(AMI_CORE_ACTIONS.get('coreshowchannels')?.classes, ['system', 'reporting']);
    assert.deepEqual(AMI_CORE_ACTIONS.get('originate')?.classes, ['originate']);
    assert.deepEqual(AMI_CORE_ACTIONS.get('userevent')?.classes, ['user']);
    assert.deepEqual(AMI_CORE_ACTIONS.get('listcommands')?.classes, []);
  });
});
