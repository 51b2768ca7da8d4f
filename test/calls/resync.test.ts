// The engine's reconciliation after a reconnect (CallEngine.resync, issue 11 §1; the table of
// docs/ami.md "After a reconnect"), fed with what Asterisk 22 lists (CoreShowChannel, see
// src/sim/channels.ts) at every point of the conformance recordings.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import type { AmiEvent } from '../../src/ami/message.ts';
import { CallEngine, type CallEngineOptions } from '../../src/calls/engine.ts';
import type { CallEvent } from '../../src/calls/events.ts';
import { JsonlSink } from '../../src/sinks/jsonl.ts';
import { conformanceNames, loadFixture, loadGolden } from '../support/conformance.ts';
import { coreShowChannels } from '../support/pbx-state.ts';

function events(name: string): AmiEvent[] {
  return loadFixture(name).filter((event) => event.Event !== 'FullyBooted');
}

interface Outage {
  before: CallEvent[];
  atResync: CallEvent[];
  after: CallEvent[];
  all: CallEvent[];
  engine: CallEngine;
}

/**
 * Feeds `all[0, cut)`, loses `all[cut, resume)` (the PBX goes on), resynchronises with what
 * the PBX lists then, feeds the rest.
 */
function outage(
  all: readonly AmiEvent[],
  cut: number,
  resume: number,
  options: Partial<CallEngineOptions> = {},
): Outage {
  const out: CallEvent[] = [];
  const engine = new CallEngine({
    onCallEvent: (event) => void out.push(event),
    resetOnFullyBooted: false,
    ...options,
  });
  for (const event of all.slice(0, cut)) engine.handle(event);
  const before = out.length;
  engine.beginResync();
  engine.resync(coreShowChannels(all.slice(0, resume)));
  const atResync = out.length;
  for (const event of all.slice(resume)) engine.handle(event);
  return {
    before: out.slice(0, before),
    atResync: out.slice(before, atResync),
    after: out.slice(atResync),
    all: out,
    engine,
  };
}

function json(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

/** The index of the first event matching `match` at or after `from`. */
function indexOf(all: readonly AmiEvent[], match: (event: AmiEvent) => boolean, from = 0): number {
  const index = all.findIndex((event, i) => i >= from && match(event));
  assert.ok(index >= 0, 'no such event in the recording');
  return index;
}

function summary(list: readonly CallEvent[]): string[] {
  return list.map((event) => {
    const targets =
      'targets' in event
        ? event.targets.map((t) => t.name).join(',')
        : 'target' in event
          ? event.target.name
          : '';
    const reason = 'reason' in event ? ` ${event.reason}` : '';
    return `${event.event}${reason} ${event.caller.name}${targets === '' ? '' : ` → ${targets}`}`;
  });
}

describe('every reported b_dial gets exactly one b_dial_end', () => {
  test('two phones ring, one answers while disconnected: answer for it, cancel for the other, then up', () => {
    const name = 'simple/ab_callgroup';
    const all = events(name);
    // Both ring; Asterisk then has the caller bridged with the one that answered.
    const cut =
      indexOf(all, (e) => e.Event === 'Newstate' && e.Channel === 'SIP/150010003-0000000f') + 1;
    const resume =
      indexOf(all, (e) => e.Event === 'BridgeEnter' && e.Channel === 'SIP/150010001-0000000d', 55) +
      1;
    const result = outage(all, cut, resume);
    assert.deepStrictEqual(summary(result.before), [
      'b_dial SIP/150010001-0000000d → SIP/150010002-0000000e',
      'b_dial SIP/150010001-0000000d → SIP/150010003-0000000f',
    ]);
    assert.deepStrictEqual(summary(result.atResync), [
      'b_dial_end answer SIP/150010001-0000000d → SIP/150010002-0000000e',
      'b_dial_end cancel SIP/150010001-0000000d → SIP/150010003-0000000f',
      'up SIP/150010001-0000000d → SIP/150010002-0000000e',
    ]);
    const golden = loadGolden(name) as CallEvent[];
    // What live events gave for the answered one, exactly (cacofonisk reports no b_dial_end
    // for the cancelled one: its DialEnd arrives after its Local hop was torn down).
    assert.deepStrictEqual(json(result.atResync[0]), golden[2]);
    assert.deepStrictEqual(json(result.atResync[2]), golden[3]);
    assert.deepStrictEqual(json(result.after), [golden[4]]);
  });

  test('the target stopped ringing while the caller stayed: noanswer (the real busy went by unseen)', () => {
    const name = 'simple/ab_reject';
    const all = events(name);
    const cut = indexOf(all, (e) => e.Event === 'Newstate' && e.ChannelState === '5') + 1;
    // Resume after the target hung up, before the caller did.
    const resume =
      indexOf(all, (e) => e.Event === 'Hangup' && e.Channel === 'SIP/150010002-00000009') + 1;
    const result = outage(all, cut, resume);
    const golden = loadGolden(name) as CallEvent[];
    assert.deepStrictEqual(json(result.atResync), [
      { ...(golden[1] as object), reason: 'noanswer' },
    ]);
    // The caller's real Hangup comes live: its own cause.
    assert.deepStrictEqual(json(result.after), [golden[2]]);
  });

  test("a dial whose DialEnd went by unseen while its target still rang: the target's Hangup ends it (busy)", () => {
    const name = 'simple/ab_reject';
    const all = events(name);
    const cut = indexOf(all, (e) => e.Event === 'Newstate' && e.ChannelState === '5') + 1;
    // Resume just after DialEnd(BUSY): Asterisk still lists the target, ringing.
    const resume = indexOf(all, (e) => e.Event === 'DialEnd') + 1;
    const result = outage(all, cut, resume);
    assert.deepStrictEqual(result.atResync, []);
    // Hangup Cause 17 gives busy, as the DialEnd would have.
    assert.deepStrictEqual(json(result.all), loadGolden(name));
  });

  test('ringing began while disconnected: its b_dial at the reconnect, the rest live, exactly the golden', () => {
    const name = 'simple/ab_success_a_hangup';
    const all = events(name);
    const ring = indexOf(all, (e) => e.Event === 'Newstate' && e.ChannelState === '5');
    const result = outage(all, ring, ring + 1);
    assert.deepStrictEqual(result.before, []);
    assert.deepStrictEqual(summary(result.atResync), [
      'b_dial SIP/150010001-00000004 → SIP/150010002-00000005',
    ]);
    assert.deepStrictEqual(json(result.all), loadGolden(name));
  });

  test('an answered target listed up before its DialEnd arrives: one b_dial_end, not two', () => {
    const name = 'simple/ab_success_a_hangup';
    const all = events(name);
    const cut = indexOf(all, (e) => e.Event === 'Newstate' && e.ChannelState === '5') + 1;
    // Asterisk lists the target up; the DialEnd(ANSWER) that follows arrives live.
    const answered = indexOf(all, (e) => e.Event === 'Newstate' && e.ChannelState === '6') + 1;
    const result = outage(all, cut, answered);
    assert.deepStrictEqual(summary(result.atResync), [
      'b_dial_end answer SIP/150010001-00000004 → SIP/150010002-00000005',
    ]);
    assert.deepStrictEqual(json(result.all), loadGolden(name));
  });
});

describe('at every point of every recording', () => {
  test('a reconnect never throws, never hangs up a listed call, never reports twice, leaves nothing behind', () => {
    let runs = 0;
    for (const name of conformanceNames()) {
      const all = events(name);
      const n = all.length;
      const step = Math.max(1, Math.ceil(n / 3));
      for (let cut = 0; cut <= n; cut++) {
        for (
          let resume = cut;
          resume <= n;
          resume = resume === n ? n + 1 : Math.min(n, resume + step)
        ) {
          runs++;
          const where = `${name} cut ${cut} resume ${resume}`;
          const listed = new Set(coreShowChannels(all.slice(0, resume)).map((i) => i.Uniqueid));
          const result = outage(all, cut, resume);
          for (const event of result.atResync) {
            assert.ok(
              !(event.event === 'hangup' && listed.has(event.caller.uniqueid)),
              `${where}: hangup of a call Asterisk still lists`,
            );
          }
          assert.equal(result.engine.channels.size, 0, `${where}: channels left`);
          const ends = new Map<string, number>();
          const hangups = new Map<string, number>();
          for (const event of result.all) {
            if (event.event === 'b_dial_end') {
              for (const t of event.targets) ends.set(t.uniqueid, (ends.get(t.uniqueid) ?? 0) + 1);
            }
            if (event.event === 'hangup') {
              hangups.set(event.caller.uniqueid, (hangups.get(event.caller.uniqueid) ?? 0) + 1);
            }
          }
          for (const [uniqueid, count] of ends) {
            assert.equal(count, 1, `${where}: ${count} b_dial_end for ${uniqueid}`);
          }
          for (const [uniqueid, count] of hangups) {
            assert.equal(count, 1, `${where}: ${count} hangups for ${uniqueid}`);
          }
        }
      }
    }
    assert.ok(runs > 7_000, `${runs} runs`);
  });
});

describe('channels first learnt from CoreShowChannel', () => {
  test("marked resynced (not enumerable): JSON lines keep cacofonisk's shape", async () => {
    const name = 'simple/ab_success_b_hangup';
    const all = events(name);
    const resume =
      indexOf(all, (e) => e.Event === 'BridgeEnter' && e.Channel === 'SIP/150010001-00000013') + 1;
    const result = outage(all, 0, resume);
    const [up] = result.atResync;
    assert.ok(up?.event === 'up');
    assert.equal(up.caller.resynced, true);
    assert.equal(up.target.resynced, true);
    // CoreShowChannel has no CallingPres, and its Exten is where the channel is now.
    assert.equal(up.caller.callingPres, null);
    assert.deepStrictEqual(Object.keys(up.caller), [
      'name',
      'uniqueid',
      'linkedid',
      'state',
      'accountCode',
      'callerId',
      'connectedLine',
      'exten',
      'callingPres',
    ]);
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (chunk) => {
      text += String(chunk);
    });
    const sink = new JsonlSink(stream);
    sink.write(up);
    await sink.close();
    assert.ok(!text.includes('resynced'));
    // A channel known from its Newchannel is not marked.
    const live = outage(all, all.length, all.length);
    assert.ok(live.all.every((event) => event.caller.resynced === undefined));
  });
});

describe('AttendedTransfer without TransferTarget* (what cacofonisk crashed on)', () => {
  function withoutTarget(list: readonly AmiEvent[]): AmiEvent[] {
    return list.map((event) => {
      if (event.Event !== 'AttendedTransfer') return event;
      const copy: AmiEvent = { ...event };
      for (const key of Object.keys(copy)) if (key.startsWith('TransferTarget')) delete copy[key];
      return copy;
    });
  }

  function replay(list: readonly AmiEvent[], skipped: string[] = []): CallEvent[] {
    const out: CallEvent[] = [];
    const engine = new CallEngine({
      onCallEvent: (event) => void out.push(event),
      onSkip: (reason) => void skipped.push(reason),
    });
    for (const event of list) engine.handle(event);
    return out;
  }

  test('real Asterisk 22 recording: the target is found in the destination bridge, as with the fields', () => {
    const file = join(
      import.meta.dirname,
      '..',
      'fixtures',
      'asterisk22',
      'recordings',
      'attn_xfer.json',
    );
    const recorded = JSON.parse(readFileSync(file, 'utf8')) as AmiEvent[];
    const stripped = withoutTarget(recorded);
    assert.ok(
      stripped.some(
        (e) => e.Event === 'AttendedTransfer' && e.TransferTargetUniqueid === undefined,
      ),
    );
    // The same transfer, the same channels; only the transferee's exten cannot fall back on
    // TransferTargetCallerIDNum (here `<unknown>`: a Local channel).
    assert.deepStrictEqual(summary(replay(stripped)), summary(replay(recorded)));
    assert.deepStrictEqual(summary(replay(stripped)), [
      'attended_transfer Local/200@phones-00000017;1 → Local/202@calls-00000019;1',
    ]);
  });

  test('the target already left the consultation bridge: no crash, no attended_transfer, both calls end', () => {
    const name = 'xfer_attended/xfer_abbcac';
    const all = withoutTarget(events(name));
    const at = indexOf(all, (e) => e.Event === 'AttendedTransfer');
    const transfer = all[at] as AmiEvent;
    // C leaves the bridge the transfer goes to before Asterisk reports the transfer.
    const target = 'SIP/150010003-0000002f';
    const leave = indexOf(all, (e) => e.Event === 'BridgeLeave' && e.Channel === target);
    const reordered = [
      ...all.slice(0, at),
      all[leave] as AmiEvent,
      transfer,
      ...all.slice(at + 1).filter((_, i) => i + at + 1 !== leave),
    ];
    const skipped: string[] = [];
    const out = replay(reordered, skipped);
    assert.ok(!out.some((e) => e.event === 'attended_transfer'));
    assert.ok(skipped.some((reason) => reason.startsWith('attended transfer')));
    // Knowable: B's consultation call and A's call both ended.
    assert.deepStrictEqual(summary(out.filter((e) => e.event === 'hangup')), [
      'hangup completed SIP/150010002-0000002e',
      'hangup completed SIP/150010001-0000002c',
    ]);
  });
});
