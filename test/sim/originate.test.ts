import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import type { AmiEvent } from '../../src/ami/message.ts';
import { type Simulator, type SimulatorOptions, startSimulator } from '../../src/sim/index.ts';
import { until } from '../support/until.ts';
import { type Connected, callEvents, connect, shapes, sleep, wireEvents } from './helpers.ts';

const open: Array<{ sim: Simulator; c?: Connected }> = [];

async function setup(options: SimulatorOptions): Promise<{ sim: Simulator; c: Connected }> {
  const sim = await startSimulator({ dtmfDurationMs: 10, ...options });
  const c = await connect(sim);
  open.push({ sim, c });
  return { sim, c };
}

afterEach(async () => {
  for (const { sim, c } of open.splice(0)) {
    await c?.client.close();
    await sim.close();
  }
});
after(() => undefined);

const notInUse = (events: readonly AmiEvent[]): number =>
  events.filter((e) => e.Event === 'DeviceStateChange' && e.State === 'NOT_INUSE').length;

describe('Originate: the events of a real Asterisk 22', () => {
  test('Local/100@phones into context alert with key 1: same shape as dtmf_local.raw.txt', async () => {
    const { c } = await setup({
      scripts: { '100': { answerAfterMs: 0, dtmf: '1', dtmfAfterMs: 60, hangupAfterMs: 5000 } },
      dialplan: { alert: { playbackMs: 20 } },
    });
    const response = await c.client.action({
      Action: 'Originate',
      Channel: 'Local/100@phones',
      Context: 'alert',
      Exten: 's',
      Priority: '1',
      CallerID: '"Switchboard" <999>',
      Timeout: '10000',
      Async: 'true',
    });
    assert.equal(response.response.Message, 'Originate successfully queued');
    await until(() => notInUse(c.events) === 2);
    await sleep(20);
    const got = callEvents(c.events);
    const expected = callEvents(wireEvents('dtmf_local'));
    assert.deepEqual(shapes(got), shapes(expected));
    const user = got.find((e) => e.Event === 'UserEvent');
    assert.equal(user?.UserEvent, 'SwitchboardDTMF');
    assert.equal(user?.Digit, '1');
    assert.equal(user?.Channel, got[0]?.Channel);
    const originate = got.find((e) => e.Event === 'OriginateResponse');
    assert.equal(originate?.ActionID, response.response.ActionID);
    assert.equal(originate?.Reason, '4');
    assert.equal(originate?.Uniqueid, got[0]?.Uniqueid);
    assert.match(String(got[0]?.Channel), /^Local\/100@phones-[0-9a-f]{8};1$/);
    // Same values as the wire log where they do not depend on time or counters.
    const hangups = got.filter((e) => e.Event === 'Hangup');
    assert.deepEqual(
      hangups.map((e) => [e.Cause, e['Cause-txt'], e.Context]),
      [
        ['16', 'Normal Clearing', 'alert'],
        ['16', 'Normal Clearing', 'phones'],
      ],
    );
    const exts = got
      .filter((e) => e.Event === 'Newexten')
      .map((e) => `${e.Application}(${e.AppData})`);
    const wireExts = expected
      .filter((e) => e.Event === 'Newexten')
      .map((e) => `${e.Application}(${e.AppData})`);
    assert.deepEqual(
      exts.filter((x) => !x.startsWith('Wait')),
      wireExts.filter((x) => !x.startsWith('Wait')),
    );
  });

  test('Application Read: same shape as dtmf_originate_app.raw.txt, digit in VarSet, no UserEvent', async () => {
    const { c } = await setup({
      scripts: { '*': { answerAfterMs: 0, dtmf: '1', dtmfAfterMs: 40, hangupAfterMs: 5000 } },
    });
    await c.client.action({
      Action: 'Originate',
      Channel: 'Local/100@phones',
      Application: 'Read',
      Data: 'DIGIT,beep,1,,,5',
      Timeout: '10000',
      Async: 'true',
    });
    await until(() => notInUse(c.events) === 2);
    await sleep(20);
    const got = callEvents(c.events);
    assert.deepEqual(shapes(got), shapes(callEvents(wireEvents('dtmf_originate_app'))));
    assert.ok(got.some((e) => e.Event === 'VarSet' && e.Variable === 'DIGIT' && e.Value === '1'));
    const response = got.find((e) => e.Event === 'OriginateResponse');
    assert.equal(response?.Application, 'Read');
    assert.equal(response?.Data, 'DIGIT,beep,1,,,5');
    assert.equal(response?.CallerIDNum, '<unknown>');
  });

  test('PJSIP/201@trunk: one channel PJSIP/trunk-<seq>, ringing, answer after the script, keys, UserEvent', async () => {
    const { sim, c } = await setup({
      scripts: {
        '201': { answerAfterMs: 40, dtmf: '2', dtmfAfterMs: 10, hangupAfterMs: 5000 },
      },
      dialplan: { alert: { playbackMs: 0, playback: '' } },
    });
    await c.client.action({
      Action: 'Originate',
      Channel: 'PJSIP/201@trunk',
      Context: 'alert',
      Exten: 's',
      Priority: '1',
      Async: 'true',
    });
    const user = await c.waitFor((e) => e.Event === 'UserEvent');
    assert.equal(user.Digit, '2');
    const got = callEvents(c.events);
    const channel = String(got[0]?.Channel);
    assert.match(channel, /^PJSIP\/trunk-[0-9a-f]{8}$/);
    assert.ok(got.every((e) => e.Channel === undefined || e.Channel === channel));
    const states = got.filter((e) => e.Event === 'Newstate').map((e) => e.ChannelStateDesc);
    assert.deepEqual(states, ['Ringing', 'Up']);
    const response = got.find((e) => e.Event === 'OriginateResponse');
    assert.equal(response?.Channel, channel);
    assert.equal(response?.Reason, '4');
    const answeredAt = c.events.indexOf(response as AmiEvent);
    assert.ok(
      c.events.slice(0, answeredAt).some((e) => e.Event === 'Newstate' && e.ChannelState === '5'),
    );
    assert.deepEqual(
      got.filter((e) => e.Event.startsWith('DTMF')).map((e) => `${e.Event}:${e.Digit}`),
      ['DTMFBegin:2', 'DTMFEnd:2'],
    );
    const hangup = await c.waitFor((e) => e.Event === 'Hangup');
    assert.equal(hangup.Cause, '16');
    assert.equal(sim.channels.size, 0);
  });

  for (const [outcome, reason, cause] of [
    ['busy', '5', '17'],
    ['congestion', '8', '34'],
    ['noanswer', '3', '19'],
  ] as const) {
    test(`${outcome}: Hangup cause ${cause}, OriginateResponse Failure reason ${reason}`, async () => {
      const { c } = await setup({ scripts: { '202': { outcome, answerAfterMs: 10 } } });
      await c.client.action({
        Action: 'Originate',
        Channel: 'PJSIP/202@trunk',
        Context: 'alert',
        Exten: 's',
        Priority: '1',
        CallerID: 'Alert <999>',
        Timeout: '60',
        Async: 'true',
      });
      const response = await c.waitFor((e) => e.Event === 'OriginateResponse');
      assert.equal(response.Response, 'Failure');
      assert.equal(response.Reason, reason);
      assert.equal(response.Channel, 'PJSIP/202@trunk');
      assert.equal(response.Uniqueid, '<null>');
      assert.equal(response.CallerIDNum, '999');
      assert.equal(response.CallerIDName, 'Alert');
      const hangup = c.events.find((e) => e.Event === 'Hangup');
      assert.equal(hangup?.Cause, cause);
      assert.ok(!c.events.some((e) => e.Event === 'Newexten' && e.Context === 'alert'));
    });
  }

  test('noanswer rings until the Originate Timeout', async () => {
    const { c } = await setup({ scripts: { '203': { outcome: 'noanswer' } } });
    await c.client.action({
      Action: 'Originate',
      Channel: 'Local/203@phones',
      Context: 'alert',
      Exten: 's',
      Timeout: '80',
      Async: 'true',
    });
    const response = await c.waitFor((e) => e.Event === 'OriginateResponse');
    // Rang (state 5) and was given up (reason 3, no answer), not refused at once.
    assert.ok(c.events.some((e) => e.Event === 'Newstate' && e.ChannelState === '5'));
    assert.equal(response.Reason, '3');
    const dialEnd = c.events.find((e) => e.Event === 'DialEnd');
    assert.equal(dialEnd?.DialStatus, 'NOANSWER');
    assert.equal(c.events.filter((e) => e.Event === 'Hangup').length, 2);
  });

  test('fail: no channel at all, reason 0', async () => {
    const { c } = await setup({ scripts: { '204': { outcome: 'fail', answerAfterMs: 0 } } });
    await c.client.action({
      Action: 'Originate',
      Channel: 'PJSIP/204@trunk',
      Context: 'alert',
      Exten: 's',
      ChannelId: 'my-id-1',
      Async: 'true',
    });
    const response = await c.waitFor((e) => e.Event === 'OriginateResponse');
    assert.equal(response.Reason, '0');
    assert.equal(response.Uniqueid, 'my-id-1');
    assert.ok(!c.events.some((e) => e.Event === 'Newchannel'));
  });

  test('sync Originate: answered after the ringing, failure as Error "Originate failed", no OriginateResponse', async () => {
    const { c } = await setup({
      scripts: {
        '201': { answerAfterMs: 30, hangupAfterMs: 50 },
        '202': { outcome: 'busy', answerAfterMs: 0 },
      },
    });
    const ok = await c.client.action({
      Action: 'Originate',
      Channel: 'PJSIP/201@trunk',
      Context: 'alert',
      Exten: 's',
    });
    assert.equal(ok.response.Response, 'Success');
    assert.equal(ok.response.Message, 'Originate successfully queued');
    assert.ok(c.events.some((e) => e.Event === 'Newstate' && e.ChannelState === '6'));
    await assert.rejects(
      c.client.action({
        Action: 'Originate',
        Channel: 'PJSIP/202@trunk',
        Context: 'alert',
        Exten: 's',
      }),
      /Originate failed/,
    );
    await sleep(20);
    assert.ok(!c.events.some((e) => e.Event === 'OriginateResponse'));
  });

  test('invalid Originates answer as Asterisk does', async () => {
    const { sim, c } = await setup({});
    for (const [fields, message] of [
      [{}, 'Channel not specified'],
      [{ Channel: 'nochannel', Exten: 's' }, 'Invalid channel'],
      [{ Channel: 'PJSIP/1', Exten: 's', Timeout: 'soon' }, 'Invalid timeout'],
      [{ Channel: 'PJSIP/1', Exten: 's', Priority: 'x' }, 'Invalid priority'],
    ] as const) {
      await assert.rejects(c.client.action({ Action: 'Originate', ...fields }), (error: Error) =>
        error.message.includes(message),
      );
    }
    assert.equal(sim.calls.length, 0);
  });
});

describe('the called party and the dialplan', () => {
  test('no key: Read times out, READSTATUS TIMEOUT, UserEvent with an empty digit', async () => {
    const { c } = await setup({
      scripts: { '*': { answerAfterMs: 0, hangupAfterMs: 5000 } },
      dialplan: { '*': { playback: '', readTimeoutMs: 30 } },
    });
    await c.client.action({
      Action: 'Originate',
      Channel: 'PJSIP/300@trunk',
      Context: 'alert',
      Exten: 's',
      Async: 'true',
    });
    const user = await c.waitFor((e) => e.Event === 'UserEvent');
    assert.equal(user.Digit, '');
    assert.ok(c.events.some((e) => e.Variable === 'READSTATUS' && e.Value === 'TIMEOUT'));
  });

  test('the callee hangs up after hangupAfterMs: its half goes first, Normal Clearing', async () => {
    const { c } = await setup({
      scripts: { '*': { answerAfterMs: 0, hangupAfterMs: 40 } },
      dialplan: { '*': { playback: '', readTimeoutMs: 5000 } },
    });
    await c.client.action({
      Action: 'Originate',
      Channel: 'Local/301@phones',
      Context: 'alert',
      Exten: 's',
      Async: 'true',
    });
    await until(() => c.events.filter((e) => e.Event === 'Hangup').length === 2);
    const hangups = c.events.filter((e) => e.Event === 'Hangup');
    assert.match(String(hangups[0]?.Channel), /;2$/);
    assert.ok(!c.events.some((e) => e.Event === 'UserEvent'), 'no UserEvent after the callee left');
  });

  test('configurable dialplan: UserEvent name and fields with dialplan variables from Originate variables', async () => {
    const { sim, c } = await setup({
      scripts: { '*': { answerAfterMs: 0, dtmf: '12', dtmfAfterMs: 5, hangupAfterMs: 5000 } },
      dialplan: {
        callout: {
          playback: '',
          read: 'KEY,/tmp/announce,1,,,5',
          userEvent: {
            name: 'CalloutKey',
            // biome-ignore lint/suspicious/noTemplateCurlyInString: dialplan variables
            fields: { Key: '${KEY}', EventId: '${EVENTID}', Target: '${EXTEN}' },
          },
        },
        announce: { playback: '/tmp/msg', playbackMs: 20, read: '', userEvent: null },
      },
    });
    await c.client.action({
      Action: 'Originate',
      Channel: 'PJSIP/401@trunk',
      Context: 'callout',
      Exten: 'start',
      Variable: ['EVENTID=42', 'LANG=ja,OTHER=x'],
      Async: 'true',
    });
    const user = await c.waitFor((e) => e.Event === 'UserEvent');
    assert.deepEqual(
      [user.UserEvent, user.Key, user.EventId, user.Target],
      ['CalloutKey', '1', '42', 'start'],
    );
    const newexten = c.events.find((e) => e.Application === 'UserEvent');
    assert.equal(newexten?.AppData, 'CalloutKey,Key: 1,EventId: 42,Target: start');
    const originate = sim.originates()[0];
    assert.deepEqual(originate?.variables, { EVENTID: '42', LANG: 'ja', OTHER: 'x' });
    assert.ok(
      c.events.some((e) => e.Event === 'VarSet' && e.Variable === 'EVENTID' && e.Value === '42'),
    );

    await c.client.action({
      Action: 'Originate',
      Channel: 'PJSIP/ringer@office',
      Context: 'announce',
      Exten: 's',
      Async: 'true',
    });
    await until(
      () =>
        c.events.filter((e) => e.Event === 'Hangup' && String(e.Channel).startsWith('PJSIP/office'))
          .length === 1,
    );
    const announce = c.events.filter((e) => String(e.Channel).startsWith('PJSIP/office'));
    assert.deepEqual(
      announce.filter((e) => e.Event === 'Newexten').map((e) => e.Application),
      ['Answer', 'Playback', 'Hangup'],
    );
    assert.ok(!announce.some((e) => e.Event === 'UserEvent'));
  });
});

describe('actions: recorded, Hangup, CoreShowChannels', () => {
  test('every action is recorded with its parameters, secrets hidden', async () => {
    const seen: string[] = [];
    const { sim, c } = await setup({ onAction: (action) => seen.push(action.name) });
    const waiting = sim.waitForAction('Originate', (a) => a.fields.Exten === '500');
    await c.client.action({
      Action: 'Originate',
      Channel: 'PJSIP/500@trunk',
      Context: 'alert',
      Exten: '500',
      Priority: '1',
      CallerID: '"Gong" <9600>',
      Timeout: '30000',
      Variable: ['A=1', 'B=2'],
      Async: 'true',
    });
    const recorded = await waiting;
    assert.equal(recorded.fields.Channel, 'PJSIP/500@trunk');
    assert.deepEqual(recorded.fields.Variable, ['A=1', 'B=2']);
    assert.equal(recorded.username, 'switchboard');
    const parsed = sim.originates()[0];
    assert.equal(parsed?.callerIdName, 'Gong');
    assert.equal(parsed?.callerIdNum, '9600');
    assert.equal(parsed?.timeoutMs, 30000);
    assert.equal(parsed?.async, true);
    assert.equal(parsed?.number, '500');
    const login = sim.actionsNamed('login')[0];
    assert.equal(login?.fields.Secret, '***');
    assert.deepEqual(seen.slice(0, 2), ['Login', 'Originate']);
    await assert.rejects(sim.waitForAction('Redirect', undefined, 30), /no Redirect action/);
  });

  test('Hangup hangs a live call up; CoreShowChannels lists its channels before', async () => {
    const { sim, c } = await setup({
      scripts: { '*': { answerAfterMs: 0, hangupAfterMs: 60_000 } },
      dialplan: { '*': { playback: '', read: 'DIGIT,,1,,,60', userEvent: null } },
    });
    await c.client.action({
      Action: 'Originate',
      Channel: 'Local/600@phones',
      Context: 'alert',
      Exten: 's',
      Async: 'true',
    });
    await c.waitFor((e) => e.Event === 'Newexten' && e.Application === 'Read');
    const list = await c.client.action({ Action: 'CoreShowChannels' });
    assert.equal(list.response.Message, 'Channels will follow');
    const items = list.events.filter((e) => e.Event === 'CoreShowChannel');
    assert.deepEqual(items.map((e) => String(e.Channel).slice(-2)).sort(), [';1', ';2']);
    const one = items.find((e) => String(e.Channel).endsWith(';1'));
    assert.equal(one?.Application, 'Read');
    assert.equal(one?.ChannelStateDesc, 'Up');
    assert.match(String(one?.Duration), /^\d\d:\d\d:\d\d$/);
    assert.equal(list.events.at(-1)?.ListItems, '2');

    const hung = await c.client.action({ Action: 'Hangup', Channel: String(one?.Channel) });
    assert.equal(hung.response.Message, 'Channel Hungup');
    const hangups = c.events.filter((e) => e.Event === 'Hangup');
    assert.deepEqual(
      hangups.map((e) => [String(e.Channel).slice(-2), e.Cause]),
      [
        [';1', '16'],
        [';2', '16'],
      ],
    );
    assert.equal(sim.channels.size, 0);
    const empty = await c.client.action({ Action: 'CoreShowChannels' });
    assert.equal(empty.events.at(-1)?.ListItems, '0');
    await assert.rejects(
      c.client.action({ Action: 'Hangup', Channel: String(one?.Channel) }),
      /No such channel/,
    );
  });

  test('unsupported actions answer Error like an unknown command (and are recorded)', async () => {
    const { sim, c } = await setup({});
    await assert.rejects(
      c.client.action({ Action: 'Redirect', Channel: 'x', Context: 'y', Exten: 'z' }),
      /Invalid\/unknown command/,
    );
    assert.equal(sim.actionsNamed('Redirect').length, 1);
  });
});
