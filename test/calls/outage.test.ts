// What the live runner reports for a call when the AMI connection drops and comes back
// (issue 11 §1, docs/ami.md "After a reconnect"): over real TCP, a fake Asterisk that keeps
// moving while the connection is down (events it does not send) and answers CoreShowChannels
// with its channels then, in the shape of Asterisk 22 (src/sim/channels.ts). Every case
// compares the exact call events with the recording's golden.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { AmiEvent } from '../../src/ami/message.ts';
import { PROBE_USER_EVENT } from '../../src/ami/permissions.ts';
import { AmiServer } from '../../src/ami/server.ts';
import { CallEngine } from '../../src/calls/engine.ts';
import type { CallEvent, ChannelSnapshot } from '../../src/calls/events.ts';
import { AmiRunner } from '../../src/calls/live.ts';
import { loadFixture, loadGolden } from '../support/conformance.ts';
import { coreShowChannels } from '../support/pbx-state.ts';
import { until } from '../support/until.ts';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function events(name: string): AmiEvent[] {
  return loadFixture(name).filter((event) => event.Event !== 'FullyBooted');
}

/** The index just after the event at which a straight replay reports its `n`-th call event. */
function afterCallEvent(all: readonly AmiEvent[], n: number): number {
  let seen = 0;
  const engine = new CallEngine({ onCallEvent: () => void seen++ });
  for (let i = 0; i < all.length; i++) {
    engine.handle(all[i] as AmiEvent);
    if (seen >= n) return i + 1;
  }
  throw new Error(`fewer than ${n} call events`);
}

/** The index of the first event matching `match` at or after `from`. */
function indexOf(all: readonly AmiEvent[], match: (event: AmiEvent) => boolean, from = 0): number {
  const index = all.findIndex((event, i) => i >= from && match(event));
  assert.ok(index >= 0, 'no such event in the recording');
  return index;
}

interface OutageResult {
  /** Call events before the connection dropped, at the reconnect, and after it. */
  before: CallEvent[];
  atReconnect: CallEvent[];
  after: CallEvent[];
  /** All of them, as JSON would carry them. */
  all: unknown[];
}

/**
 * Streams `all[0, cut)` to the runner, drops the connection, lets the PBX go through
 * `all[cut, resume)` unseen, waits for the reconnect and its resync, then streams the rest.
 */
async function outage(
  all: readonly AmiEvent[],
  cut: number,
  resume: number,
): Promise<OutageResult> {
  const sent: AmiEvent[] = [];
  const server = new AmiServer({ users: { switchboard: 's3cret' } });
  server.handle('CoreShowChannels', () => ({
    events: coreShowChannels(sent),
    complete: 'CoreShowChannelsComplete',
  }));
  const port = await server.listen();
  cleanups.push(() => server.close());
  const send = (list: readonly AmiEvent[]): void => {
    for (const event of list) {
      sent.push(event);
      const { content: _content, ...wire } = event;
      server.broadcast(wire as AmiEvent);
    }
  };
  const out: CallEvent[] = [];
  let received = 0;
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
    {
      onCallEvent: (event) => void out.push(event),
      onAmiEvent: (event) => {
        if (event.Event !== 'FullyBooted' && event.UserEvent !== PROBE_USER_EVENT) received++;
      },
    },
    { onStatus: (message) => statuses.push(message), permissionProbeTimeoutMs: 500 },
  );
  cleanups.push(() => runner.stop());
  const resyncs = (): number => statuses.filter((s) => s.includes('channels in progress')).length;
  await runner.start();
  await until(() => resyncs() === 1, 'the first resync');
  send(all.slice(0, cut));
  await until(() => received === cut, 'the events before the outage');
  const before = out.length;
  server.dropConnections();
  // While disconnected, the call goes on: the PBX's state moves, nobody hears of it.
  sent.push(...all.slice(cut, resume));
  await until(() => resyncs() === 2, 'the reconnect and its resync');
  const atReconnect = out.length;
  send(all.slice(resume));
  await until(() => received === cut + all.length - resume, 'the events after the outage');
  await runner.stop();
  return {
    before: out.slice(0, before),
    atReconnect: out.slice(before, atReconnect),
    after: out.slice(atReconnect),
    all: JSON.parse(JSON.stringify(out)),
  };
}

type Golden = CallEvent & { caller: ChannelSnapshot };

function golden(name: string): Golden[] {
  return loadGolden(name) as Golden[];
}

/** A snapshot of a channel first learnt from CoreShowChannel: what the list cannot tell. */
function asListed(snapshot: ChannelSnapshot, exten: string): ChannelSnapshot {
  return { ...snapshot, exten, callingPres: null };
}

describe('a call while the AMI connection is down (over TCP, Asterisk 22 CoreShowChannel)', () => {
  test('answered while disconnected: b_dial_end(answer) and up at the reconnect, exactly the golden', async () => {
    const name = 'simple/ab_success_a_hangup';
    const all = events(name);
    const cut = afterCallEvent(all, 1); // the b_dial: the target rings
    // Resume once Asterisk has both phones in one bridge.
    const resume =
      indexOf(all, (e) => e.Event === 'BridgeEnter' && e.Channel === 'SIP/150010001-00000004') + 1;
    const result = await outage(all, cut, resume);
    assert.deepStrictEqual(
      result.atReconnect.map((e) => e.event),
      ['b_dial_end', 'up'],
    );
    assert.deepStrictEqual(result.all, golden(name));
  });

  test('cancelled while disconnected: b_dial_end(cancel), hangup(no-answer) at the reconnect', async () => {
    const name = 'simple/ab_a_cancel';
    const all = events(name);
    const cut = afterCallEvent(all, 1);
    const result = await outage(all, cut, all.length);
    const [bDial, realHangup] = golden(name);
    assert.ok(bDial?.event === 'b_dial' && realHangup?.event === 'hangup');
    assert.deepStrictEqual(result.all, [
      bDial,
      // Every reported b_dial gets its b_dial_end; the caller gone: cancel.
      { event: 'b_dial_end', caller: bDial.caller, targets: bDial.targets, reason: 'cancel' },
      // The real Hangup (Cause 0 on this chan_sip PBX) is not knowable: Cause 16 is assumed.
      { event: 'hangup', caller: realHangup.caller, reason: 'no-answer' },
    ]);
    assert.equal(result.after.length, 0);
  });

  test('ended while disconnected: hangup(completed) at the reconnect, exactly the golden', async () => {
    const name = 'simple/ab_success_a_hangup';
    const all = events(name);
    const cut = afterCallEvent(all, 3); // the up
    const result = await outage(all, cut, all.length);
    assert.deepStrictEqual(
      result.atReconnect.map((e) => e.event),
      ['hangup'],
    );
    assert.deepStrictEqual(result.all, golden(name));
  });

  test('started while disconnected, up at the reconnect: up (resynced snapshots), then its hangup', async () => {
    const name = 'simple/ab_success_b_hangup';
    const all = events(name);
    const resume =
      indexOf(all, (e) => e.Event === 'BridgeEnter' && e.Channel === 'SIP/150010001-00000013') + 1;
    const result = await outage(all, 0, resume);
    const expected = golden(name);
    const up = expected.find((e) => e.event === 'up');
    const hangup = expected.find((e) => e.event === 'hangup');
    assert.ok(up?.event === 'up' && hangup?.event === 'hangup');
    const listed = coreShowChannels(all.slice(0, resume));
    const extenOf = (uniqueid: string): string =>
      String(listed.find((item) => item.Uniqueid === uniqueid)?.Exten);
    assert.deepStrictEqual(result.all, [
      {
        event: 'up',
        caller: asListed(up.caller, extenOf(up.caller.uniqueid)),
        target: asListed(up.target, extenOf(up.target.uniqueid)),
      },
      {
        event: 'hangup',
        caller: asListed(hangup.caller, extenOf(up.caller.uniqueid)),
        reason: 'completed',
      },
    ]);
    const [first] = result.atReconnect;
    assert.ok(first?.event === 'up');
    assert.equal(first.caller.resynced, true);
    assert.equal(first.target.resynced, true);
    assert.ok(!JSON.stringify(first).includes('resynced'));
  });

  test('started while disconnected, still ringing at the reconnect: nothing then, up and hangup later', async () => {
    const name = 'simple/ab_success_b_hangup';
    const all = events(name);
    const resume = indexOf(all, (e) => e.Event === 'Newstate' && e.ChannelState === '5') + 1;
    const result = await outage(all, 0, resume);
    assert.deepStrictEqual(result.atReconnect, []);
    assert.deepStrictEqual(
      result.after.map((e) => e.event),
      ['up', 'hangup'],
    );
    const expected = golden(name);
    const up = expected.find((e) => e.event === 'up');
    assert.ok(up?.event === 'up');
    const [reportedUp] = result.after;
    assert.ok(reportedUp?.event === 'up');
    assert.equal(reportedUp.caller.uniqueid, up.caller.uniqueid);
    assert.equal(reportedUp.target.uniqueid, up.target.uniqueid);
  });

  test('transferred while disconnected (A blind-transfers B to C): up(B, C) at the reconnect, B hangs up later', async () => {
    const name = 'xfer_blind/xfer_blind_abacbc';
    const all = events(name);
    const expected = golden(name);
    const cut = afterCallEvent(all, 3); // A and B up
    const c = 'SIP/150010003-00000008';
    const resume =
      indexOf(
        all,
        (e) => e.Event === 'BridgeEnter' && e.Channel === 'SIP/150010002-00000007',
        indexOf(all, (e) => e.Channel === c),
      ) + 1;
    const result = await outage(all, cut, resume);
    const up = expected.at(-2);
    const hangup = expected.at(-1);
    assert.ok(up?.event === 'up' && hangup?.event === 'hangup');
    const listed = coreShowChannels(all.slice(0, resume));
    const cExten = String(listed.find((item) => item.Channel === c)?.Exten);
    const [, , firstUp] = expected;
    assert.ok(firstUp?.event === 'up');
    // No blind_transfer (the BlindTransfer went by unseen), no hangup for A (it was a
    // transfer: B is with C, and B is the caller now, as live). B keeps the extension it
    // had: the transfer's extension went by unseen.
    const b = { ...up.caller, exten: firstUp.target.exten };
    assert.deepStrictEqual(result.all, [
      ...expected.slice(0, 3),
      { event: 'up', caller: b, target: asListed(up.target, cExten) },
      { ...hangup, caller: { ...hangup.caller, exten: firstUp.target.exten } },
    ]);
  });

  test('transferred while disconnected (B attended-transfers A to C): up(A, C) at the reconnect, A hangs up later', async () => {
    const name = 'xfer_attended/xfer_abbcac';
    const all = events(name);
    const expected = golden(name);
    const cut = afterCallEvent(all, 3);
    // Resume after the transfer, once B's two channels are gone.
    const resume =
      indexOf(all, (e) => e.Event === 'Hangup' && e.Channel === 'SIP/150010002-0000002d') + 1;
    const result = await outage(all, cut, resume);
    const up = expected.find((e, i) => i > 3 && e.event === 'up');
    const hangup = expected.at(-1);
    assert.ok(up?.event === 'up' && hangup?.event === 'hangup');
    const listed = coreShowChannels(all.slice(0, resume));
    const cExten = String(listed.find((item) => item.Uniqueid === up.target.uniqueid)?.Exten);
    const [, , firstUp] = expected;
    assert.ok(firstUp?.event === 'up');
    // No attended_transfer (B's consultation went by unseen), no hangup for B's calls. A
    // stays the caller and keeps its extension (the transfer's went by unseen).
    const a = { ...hangup.caller, exten: firstUp.caller.exten };
    assert.deepStrictEqual(result.all, [
      ...expected.slice(0, 3),
      { event: 'up', caller: a, target: asListed(up.target, cExten) },
      { ...hangup, caller: a },
    ]);
  });
});
