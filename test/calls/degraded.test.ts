// Degraded permissions are visible, never silent, and never make up a call event (issue 11
// §1, §2): over real TCP, a fake Asterisk playing a manager user with restricted classes as
// Asterisk 22 does (Permission denied, events filtered by class).
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { AmiEvent } from '../../src/ami/message.ts';
import {
  type AmiPermissionProblem,
  type AmiPermissions,
  PROBE_USER_EVENT,
} from '../../src/ami/permissions.ts';
import { serializeMessage } from '../../src/ami/protocol.ts';
import { remapIdentifiers } from '../../src/ami/remap.ts';
import { AmiServer, type AmiServerUser } from '../../src/ami/server.ts';
import { CallEngine } from '../../src/calls/engine.ts';
import type { CallEvent } from '../../src/calls/events.ts';
import { AmiRunner, type AmiRunnerOptions } from '../../src/calls/live.ts';
import { conformanceEvents, loadFixture, loadGolden } from '../support/conformance.ts';
import { coreShowChannels } from '../support/pbx-state.ts';
import { until } from '../support/until.ts';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function events(name: string): AmiEvent[] {
  return loadFixture(name).filter((event) => event.Event !== 'FullyBooted');
}

/** A fake Asterisk with one manager user of the given classes, and a runner on it. */
async function setUp(user: Omit<AmiServerUser, 'secret'>, options: AmiRunnerOptions = {}) {
  const sent: AmiEvent[] = [];
  const users: Record<string, AmiServerUser> = { switchboard: { secret: 's3cret', ...user } };
  const server = new AmiServer({ users });
  server.handle('CoreShowChannels', () => ({
    events: coreShowChannels(sent),
    complete: 'CoreShowChannelsComplete',
  }));
  const port = await server.listen();
  cleanups.push(() => server.close());
  const out: CallEvent[] = [];
  const statuses: string[] = [];
  const warnings: string[] = [];
  const checks: { permissions: AmiPermissions; problems: readonly AmiPermissionProblem[] }[] = [];
  let received = 0;
  const runner = new AmiRunner(
    [
      {
        port,
        name: 'pbx',
        username: 'switchboard',
        secret: 's3cret',
        pingIntervalMs: 0,
        reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
      },
    ],
    {
      onCallEvent: (event) => void out.push(event),
      onAmiEvent: (event) => {
        if (event.Event !== 'FullyBooted' && event.UserEvent !== PROBE_USER_EVENT) received++;
      },
    },
    {
      onStatus: (message) => statuses.push(message),
      onWarning: (message) => warnings.push(message),
      permissionProbeTimeoutMs: 300,
      onPermissions: (_server, permissions, problems) =>
        void checks.push({ permissions, problems }),
      ...options,
    },
  );
  cleanups.push(() => runner.stop());
  const send = (list: readonly AmiEvent[]): void => {
    for (const event of list) {
      sent.push(event);
      const { content: _content, ...wire } = event;
      server.broadcast(wire as AmiEvent);
    }
  };
  await runner.start();
  /** Permission checks done (one per login). */
  const logins = (): number => statuses.filter((s) => s.includes('AMI user checked')).length;
  await until(() => logins() === 1, 'the permission check');
  return {
    logins,
    server,
    users,
    runner,
    sent,
    send,
    out,
    statuses,
    warnings,
    checks,
    received: () => received,
    engine: runner.engines.get('pbx') as CallEngine,
  };
}

describe('a manager user that may not run CoreShowChannels (read-only monitoring user)', () => {
  test('reconnects invent no hangup and forget no call; the real hangup is reported; logged once, naming the class', async () => {
    const name = 'simple/ab_success_a_hangup';
    const all = events(name);
    // read = all, write = originate,user: no system, no reporting.
    const pbx = await setUp({ read: 'all', write: 'originate,user' });
    const upAt =
      all.findIndex((e) => e.Event === 'BridgeEnter' && e.Channel === 'SIP/150010001-00000004') + 1;
    pbx.send(all.slice(0, upAt));
    await until(() => pbx.out.some((e) => e.event === 'up'), 'the up');
    const channels = pbx.engine.channels.size;
    for (let reconnect = 1; reconnect <= 2; reconnect++) {
      pbx.server.dropConnections();
      await until(() => pbx.logins() === reconnect + 1, `reconnect ${reconnect}`);
    }
    // Nothing reported at the reconnects: the call is still up, and still followed.
    assert.deepStrictEqual(
      pbx.out.map((e) => e.event),
      ['b_dial', 'b_dial_end', 'up'],
    );
    assert.equal(pbx.engine.channels.size, channels);
    pbx.send(all.slice(upAt));
    await until(() => pbx.out.some((e) => e.event === 'hangup'), 'the real hangup');
    await until(() => pbx.received() === all.length, 'every event');
    assert.deepStrictEqual(JSON.parse(JSON.stringify(pbx.out)), loadGolden(name));
    assert.equal(pbx.engine.channels.size, 0);
    // One warning over three connections, naming the classes and what Switchboard does.
    const lines = pbx.warnings.filter((w) => w.includes('CoreShowChannels'));
    assert.deepStrictEqual(lines, [
      'pbx: the AMI user lacks write class system or reporting (CoreShowChannels): call events: calls in progress are not resynchronised after a (re)connect: they are kept as they were and followed by their live events; a call that ended while the connection was down is never reported hung up (add reporting to write = in manager.conf)',
    ]);
  });

  test('a call that ended while disconnected: no hangup is made up (the user may not ask)', async () => {
    const name = 'simple/ab_success_a_hangup';
    const all = events(name);
    const pbx = await setUp({ read: 'all', write: '' });
    const upAt =
      all.findIndex((e) => e.Event === 'BridgeEnter' && e.Channel === 'SIP/150010001-00000004') + 1;
    pbx.send(all.slice(0, upAt));
    await until(() => pbx.out.some((e) => e.event === 'up'), 'the up');
    pbx.server.dropConnections();
    pbx.sent.push(...all.slice(upAt));
    await until(() => pbx.logins() === 2, 'the reconnect');
    assert.ok(!pbx.out.some((e) => e.event === 'hangup'));
    assert.ok(
      pbx.engine.channels.size > 0,
      'kept: Switchboard cannot tell it from a call in progress',
    );
  });
});

describe('Asterisk restarted while the connection was down, and the user may not list channels', () => {
  test('FullyBooted says so: the calls it had are reported ended (Cause 16 assumed), nothing else', async () => {
    const name = 'simple/ab_success_a_hangup';
    const all = events(name);
    const users = { switchboard: { secret: 's3cret', read: 'all', write: '' } };
    // An Asterisk up for an hour...
    const first = new AmiServer({ users, startedAtMs: Date.now() - 3_600_000 });
    const port = await first.listen();
    const out: CallEvent[] = [];
    const statuses: string[] = [];
    const runner = new AmiRunner(
      [
        {
          port,
          name: 'pbx',
          username: 'switchboard',
          secret: 's3cret',
          pingIntervalMs: 0,
          reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
        },
      ],
      { onCallEvent: (event) => void out.push(event) },
      { onStatus: (message) => statuses.push(message), permissionProbeTimeoutMs: 300 },
    );
    cleanups.push(() => runner.stop());
    await runner.start();
    const upAt =
      all.findIndex((e) => e.Event === 'BridgeEnter' && e.Channel === 'SIP/150010001-00000004') + 1;
    for (const event of all.slice(0, upAt)) {
      const { content: _content, ...wire } = event;
      first.broadcast(wire as AmiEvent);
    }
    await until(() => out.some((e) => e.event === 'up'), 'the up');
    // ...restarts: a new one on the same port, just started.
    await first.close();
    const second = new AmiServer({ users });
    await second.listen(port);
    cleanups.push(() => second.close());
    await until(() => statuses.some((s) => s.includes('Asterisk restarted')), 'the reconnect');
    const golden = loadGolden(name) as CallEvent[];
    assert.deepStrictEqual(JSON.parse(JSON.stringify(out)), golden);
    assert.equal(runner.engines.get('pbx')?.channels.size, 0);
  });

  test('without a restart the same reconnect reports nothing', async () => {
    const pbx = await setUp({ read: 'all', write: '' });
    const all = events('simple/ab_success_a_hangup');
    const upAt =
      all.findIndex((e) => e.Event === 'BridgeEnter' && e.Channel === 'SIP/150010001-00000004') + 1;
    pbx.send(all.slice(0, upAt));
    await until(() => pbx.out.some((e) => e.event === 'up'), 'the up');
    pbx.server.dropConnections();
    await until(() => pbx.logins() === 2, 'the reconnect');
    assert.ok(!pbx.statuses.some((s) => s.includes('restarted')));
    assert.ok(!pbx.out.some((e) => e.event === 'hangup'));
  });
});

describe('CoreShowChannels answered with an error in the middle of a stream', () => {
  test('no call is lost: every call event of the stream, exactly as a straight replay', async () => {
    // 12 passes over the 30 recordings (30,000 events), each pass distinct calls, streamed
    // from the login on; Asterisk answers CoreShowChannels with an error after 12,000.
    const base = conformanceEvents();
    const stream: AmiEvent[] = [];
    for (let pass = 0; pass < 12; pass++) {
      for (const event of base) {
        const { content: _content, ...wire } = remapIdentifiers(
          event,
          pass === 0 ? '' : `-r${pass}`,
        );
        stream.push(wire as AmiEvent);
      }
    }
    const errorAfter = 12_000;
    let streamed = 0;
    let answer: (() => void) | undefined;
    const answered = new Promise<void>((resolve) => {
      answer = resolve;
    });
    const server = new AmiServer({ users: { switchboard: 's3cret' } });
    server.handle('CoreShowChannels', async () => {
      await answered;
      return { response: { Response: 'Error', Message: 'Channel list unavailable' } };
    });
    const port = await server.listen();
    cleanups.push(() => server.close());
    server.on('login', (_connection, ok) => {
      if (!ok) return;
      void (async () => {
        let text = '';
        for (const event of stream) {
          text += serializeMessage(event);
          streamed++;
          if (streamed === errorAfter) answer?.();
          if (streamed % 500 === 0) {
            server.broadcastRaw(text);
            text = '';
            await server.drain();
          }
        }
        server.broadcastRaw(text);
      })();
    });
    const expected: CallEvent[] = [];
    const replay = new CallEngine({
      onCallEvent: (event) => void expected.push(event),
      resetOnFullyBooted: false,
    });
    for (const event of stream) replay.handle(event);
    const out: CallEvent[] = [];
    const statuses: string[] = [];
    let received = 0;
    let errorAt = -1;
    const runner = new AmiRunner(
      [{ port, name: 'pbx', username: 'switchboard', secret: 's3cret', pingIntervalMs: 0 }],
      {
        onCallEvent: (event) => void out.push(event),
        onAmiEvent: (event) => {
          if (event.Event !== 'FullyBooted' && event.UserEvent !== PROBE_USER_EVENT) received++;
        },
      },
      {
        onStatus: (message) => {
          statuses.push(message);
          if (message.includes('could not list channels')) errorAt = received;
        },
        permissionProbeTimeoutMs: 300,
      },
    );
    cleanups.push(() => runner.stop());
    await runner.start();
    await until(() => received === stream.length, 'the whole stream', 60_000);
    // The error came in the middle of the stream, with calls in progress.
    assert.ok(errorAt >= errorAfter - 1000 && errorAt < stream.length, `error at ${errorAt}`);
    assert.ok(
      statuses.some((s) =>
        s.includes(
          'could not list channels (AMI action CoreShowChannels on pbx failed: Channel list unavailable)',
        ),
      ),
    );
    assert.equal(out.length, expected.length);
    assert.deepStrictEqual(JSON.parse(JSON.stringify(out)), JSON.parse(JSON.stringify(expected)));
  });
});

describe('a manager user without read = user', () => {
  test('alert calls and user_event: one warning naming the class; Asterisk sends no UserEvent; fixed at the next login', async () => {
    const pbx = await setUp(
      { read: 'call,agent,system,dialplan', write: 'all' },
      { features: ['calls', 'callout'] },
    );
    const [check] = pbx.checks;
    assert.equal(check?.permissions.read.user, 'missing');
    const broken = check?.problems.filter((p) => p.state === 'missing' && p.severity === 'broken');
    assert.deepStrictEqual(
      broken?.map((p) => `${p.feature} ${p.access} ${p.classes.join('|')}`),
      ['callout read user'],
    );
    assert.deepStrictEqual(pbx.warnings, [
      'pbx: the AMI user lacks read class user: call events: user_event is never reported (UserEvent is of class user); alert calls: the key a callee presses (UserEvent SwitchboardDTMF) never arrives: every answered call counts as no answer and the person is called again (add user to read = in manager.conf, and to events= of the AMI URL if it has one)',
    ]);
    // A recording with dialplan UserEvents: Asterisk does not send them to this user.
    const name = 'var_set/user_events';
    const all = events(name);
    pbx.send(all);
    const golden = loadGolden(name) as CallEvent[];
    const withoutUserEvents = golden.filter((e) => e.event !== 'user_event');
    await until(() => pbx.out.length >= withoutUserEvents.length, 'the call events');
    assert.deepStrictEqual(
      JSON.parse(JSON.stringify(pbx.out)),
      JSON.parse(JSON.stringify(withoutUserEvents)),
    );
    // The administrator adds user to read =; at the next login it is found and said.
    (pbx.users.switchboard as AmiServerUser).read = 'call,agent,system,dialplan,user';
    pbx.server.dropConnections();
    await until(() => pbx.logins() === 2, 'the next check');
    assert.equal(pbx.checks.at(-1)?.permissions.read.user, 'granted');
    assert.ok(pbx.statuses.includes('pbx: the AMI user now has read class user'));
    assert.equal(pbx.warnings.length, 1);
  });
});
