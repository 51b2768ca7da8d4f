import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AmiEvent } from '../../src/ami/message.ts';
import { remapIdentifiers } from '../../src/ami/remap.ts';
import { CallEngine, hangupReason } from '../../src/calls/engine.ts';
import type { CallEvent } from '../../src/calls/events.ts';
import { conformanceNames, loadFixture, loadGolden } from '../support/conformance.ts';
import { coreShowChannels } from '../support/pbx-state.ts';

function newEngine(options: { resetOnFullyBooted?: boolean } = {}): {
  engine: CallEngine;
  out: CallEvent[];
  skipped: string[];
} {
  const out: CallEvent[] = [];
  const skipped: string[] = [];
  const engine = new CallEngine({
    onCallEvent: (event) => out.push(event),
    onSkip: (reason) => skipped.push(reason),
    ...options,
  });
  return { engine, out, skipped };
}

function asJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

/** Appends `suffix` to every uniqueid/linkedid of the channel objects in a golden line. */
function suffixGolden(line: unknown, suffix: string): unknown {
  if (Array.isArray(line)) return line.map((item) => suffixGolden(item, suffix));
  if (line === null || typeof line !== 'object') return line;
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(line)) {
    if (key === 'amiEvent') copy[key] = remapIdentifiers(value as AmiEvent, suffix);
    else if ((key === 'uniqueid' || key === 'linkedid') && typeof value === 'string' && value) {
      copy[key] = value + suffix;
    } else copy[key] = suffixGolden(value, suffix);
  }
  return copy;
}

describe('hangupReason follows the schema table', () => {
  const cases: [number, number, string][] = [
    [16, 6, 'completed'],
    [16, 4, 'no-answer'],
    [17, 6, 'busy'],
    [18, 4, 'no-answer'],
    [19, 6, 'no-answer'],
    [21, 4, 'rejected'],
    [26, 5, 'answered-elsewhere'],
    [0, 6, 'completed'],
    [0, 4, 'cancelled'],
    [127, 6, 'completed'],
    [127, 0, 'cancelled'],
    [34, 6, 'failed'],
    [Number.NaN, 6, 'failed'],
  ];
  for (const [cause, state, reason] of cases) {
    test(`cause ${cause}, state ${state} → ${reason}`, () => {
      assert.equal(hangupReason(cause, state), reason);
    });
  }
});

describe('attaching mid-call', () => {
  test('every suffix of every recording replays without throwing and leaves no state behind', () => {
    let suffixes = 0;
    for (const name of conformanceNames()) {
      const events = loadFixture(name);
      for (let start = 0; start < events.length; start++) {
        const { engine } = newEngine();
        for (let i = start; i < events.length; i++) engine.handle(events[i] as AmiEvent);
        // Every channel created after the cut hangs up in the recording, every bridge is
        // destroyed: nothing may be left.
        assert.equal(engine.channels.size, 0, `${name} from event ${start}: channels left`);
        assert.equal(engine.bridges.size, 0, `${name} from event ${start}: bridges left`);
        suffixes++;
      }
    }
    const total = conformanceNames().reduce((sum, name) => sum + loadFixture(name).length, 0);
    assert.equal(suffixes, total);
  });

  test('events about unknown channels are skipped and reported to onSkip', () => {
    const { engine, out, skipped } = newEngine();
    engine.handle({ Event: 'Newstate', Uniqueid: 'nope', ChannelState: '6' });
    engine.handle({ Event: 'Hangup', Uniqueid: 'nope', Cause: '16' });
    engine.handle({ Event: 'BridgeEnter', Uniqueid: 'nope', BridgeUniqueid: 'b' });
    engine.handle({ Event: 'UserEvent', Uniqueid: 'nope', UserEvent: 'X' });
    assert.deepEqual(out, []);
    assert.equal(skipped.length, 4);
    assert.match(skipped[0] ?? '', /unknown channel Uniqueid=nope/);
  });

  test('events missing their keys or of unknown types do not throw and report nothing', () => {
    const { engine, out } = newEngine();
    const odd: AmiEvent[] = [
      { Event: 'Newchannel' },
      { Event: 'DialBegin' },
      { Event: 'DialEnd', Uniqueid: 'x' },
      { Event: 'AttendedTransfer' },
      { Event: 'BlindTransfer' },
      { Event: 'BridgeDestroy' },
      { Event: 'VarSet', Variable: 'A', Value: 'b' },
      { Event: 'Newchannel', Channel: 'SIP/x-1', Uniqueid: '' },
      { Event: 'Hangup', Uniqueid: '', Cause: '16' },
    ];
    for (const event of odd) engine.handle(event);
    assert.deepEqual(out, []);
  });
});

describe('identifier remapping', () => {
  test('a recording replayed 4 times with -r<n> suffixes gives the golden 4 times, suffixed', () => {
    for (const name of conformanceNames()) {
      const { engine, out } = newEngine();
      const events = loadFixture(name);
      const golden = loadGolden(name);
      const expected: unknown[] = [];
      for (let r = 0; r < 4; r++) {
        const suffix = r === 0 ? '' : `-r${r}`;
        for (const event of events) engine.handle(remapIdentifiers(event, suffix));
        expected.push(...golden.map((line) => suffixGolden(line, suffix)));
      }
      assert.deepStrictEqual(asJson(out), expected, name);
      assert.equal(engine.channels.size, 0);
    }
  });

  test('remapIdentifiers leaves other keys and empty identifiers alone and copies', () => {
    const event: AmiEvent = {
      Event: 'DialBegin',
      Uniqueid: '',
      DestUniqueid: '1.2',
      DestLinkedid: '1.1',
      Channel: 'SIP/a-1',
    };
    const copy = remapIdentifiers(event, '-r2');
    assert.deepEqual(copy, {
      Event: 'DialBegin',
      Uniqueid: '',
      DestUniqueid: '1.2-r2',
      DestLinkedid: '1.1-r2',
      Channel: 'SIP/a-1',
    });
    assert.equal(event.DestUniqueid, '1.2');
  });
});

describe('resync after a reconnect (beyond cacofonisk)', () => {
  const name = 'xfer_attended/xfer_abacbc';

  test('a reconnect in the middle of an up call still reports its transfer and hangup', () => {
    const events = loadFixture(name);
    const golden = loadGolden(name);
    // Cut right after the first `up` was reported.
    const { engine, out } = newEngine({ resetOnFullyBooted: false });
    let cut = -1;
    for (let i = 0; i < events.length; i++) {
      engine.handle(events[i] as AmiEvent);
      if (out.some((event) => event.event === 'up')) {
        cut = i + 1;
        break;
      }
    }
    assert.ok(cut > 0);
    // The connection drops; on reconnect Asterisk sends FullyBooted, we resync.
    engine.handle({ Event: 'FullyBooted', Status: 'Fully Booted' });
    engine.resync(coreShowChannels(events.slice(0, cut)));
    for (const event of events.slice(cut)) engine.handle(event);
    assert.deepStrictEqual(asJson(out), golden);
    assert.ok(out.some((event) => event.event === 'attended_transfer'));
    assert.equal(engine.channels.size, 0);
  });

  test('plain cacofonisk behaviour (reset on FullyBooted) loses the transfer and the hangup', () => {
    const events = loadFixture(name);
    const { engine, out } = newEngine();
    let cut = -1;
    for (let i = 0; i < events.length; i++) {
      engine.handle(events[i] as AmiEvent);
      if (out.some((event) => event.event === 'up')) {
        cut = i + 1;
        break;
      }
    }
    const firstCaller = (out[0] as { caller: { uniqueid: string } }).caller.uniqueid;
    engine.handle({ Event: 'FullyBooted' });
    for (const event of events.slice(cut)) engine.handle(event);
    assert.ok(!out.some((event) => event.event === 'attended_transfer'));
    assert.ok(
      !out.some((event) => event.event === 'hangup' && event.caller.uniqueid === firstCaller),
    );
  });

  test('a call that ended while disconnected is hung up by resync', () => {
    const events = loadFixture('simple/ab_success_a_hangup');
    const { engine, out } = newEngine({ resetOnFullyBooted: false });
    for (let i = 0; i < events.length; i++) {
      engine.handle(events[i] as AmiEvent);
      if (out.some((event) => event.event === 'up')) break;
    }
    const callerUniqueid = (out[0] as { caller: { uniqueid: string } }).caller.uniqueid;
    // Every remaining event is lost; Asterisk now has no channels.
    engine.resync([]);
    const hangups = out.filter((event) => event.event === 'hangup');
    assert.equal(hangups.length, 1);
    assert.equal(hangups[0]?.caller.uniqueid, callerUniqueid);
    assert.equal(hangups[0]?.event === 'hangup' && hangups[0].reason, 'completed');
    assert.equal(engine.channels.size, 0);
    assert.equal(engine.bridges.size, 0);
  });

  test('a call answered while disconnected reports its up at resync', () => {
    const events = loadFixture('simple/ab_success_a_hangup');
    const golden = loadGolden('simple/ab_success_a_hangup') as { event: string }[];
    const upIndex = golden.findIndex((line) => line.event === 'up');
    const { engine, out } = newEngine({ resetOnFullyBooted: false });
    // Replay until the first b_dial, then lose events until the bridge is complete.
    let cut = -1;
    for (let i = 0; i < events.length; i++) {
      engine.handle(events[i] as AmiEvent);
      if (out.length > 0) {
        cut = i + 1;
        break;
      }
    }
    // Resume once Asterisk lists both phones in one bridge.
    const resume = events.findIndex((_, i) => {
      if (i <= cut) return false;
      const phones = coreShowChannels(events.slice(0, i + 1)).filter(
        (item) => !(item.Channel as string).startsWith('Local/') && item.BridgeId !== '',
      );
      return phones.length === 2 && phones[0]?.BridgeId === phones[1]?.BridgeId;
    });
    assert.ok(resume > cut);
    assert.ok(!out.some((event) => event.event === 'up'));
    engine.resync(coreShowChannels(events.slice(0, resume + 1)));
    const up = out.find((event) => event.event === 'up');
    assert.ok(up, 'up reported at resync');
    const expected = golden[upIndex] as unknown as {
      caller: { uniqueid: string };
      target: { uniqueid: string };
    };
    assert.equal(up.event === 'up' && up.caller.uniqueid, expected.caller.uniqueid);
    assert.equal(up.event === 'up' && up.target.uniqueid, expected.target.uniqueid);
  });
});
