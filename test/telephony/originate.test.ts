import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AmiClient, actionIdTag } from '../../src/ami/client.ts';
import { AmiConnectionLostError, AmiNotSentError } from '../../src/ami/errors.ts';
import type { AmiMessage } from '../../src/ami/message.ts';
import { type AmiOutgoing, AmiServer, type AmiServerConnection } from '../../src/ami/server.ts';
import {
  buildOriginateAction,
  CallTrackingError,
  originate,
  outcomeFromReason,
} from '../../src/telephony/originate.ts';

/** Scripted Asterisk 22 behaviour per dialled channel (shapes copied from dtmf_local.raw.txt). */
type Script = (action: AmiMessage, uniqueid: string) => { delayMs: number; event: AmiOutgoing }[];

const first = (v: string | string[] | undefined): string =>
  Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
const callIdOf = (action: AmiMessage): string =>
  ([] as string[])
    .concat(action.Variable ?? [])
    .find((v) => v.startsWith('SWITCHBOARD_CALL_ID='))
    ?.slice('SWITCHBOARD_CALL_ID='.length) ?? '';

function originateResponse(
  action: AmiMessage,
  response: string,
  reason: number,
  uniqueid: string,
): AmiOutgoing {
  return {
    Event: 'OriginateResponse',
    Privilege: 'call,all',
    ActionID: first(action.ActionID),
    Response: response,
    Channel: response === 'Success' ? `${first(action.Channel)}-00000010;1` : first(action.Channel),
    Context: first(action.Context),
    Exten: first(action.Exten),
    Reason: String(reason),
    Uniqueid: response === 'Success' ? uniqueid : '<null>',
    CallerIDNum: '999',
    CallerIDName: 'Switchboard',
  };
}

function channelEvent(
  name: string,
  action: AmiMessage,
  uniqueid: string,
  extra: AmiOutgoing,
): AmiOutgoing {
  return {
    Event: name,
    Privilege: name === 'UserEvent' ? 'user,all' : 'call,all',
    Channel: `${first(action.Channel)}-00000010;1`,
    ChannelState: '6',
    ChannelStateDesc: 'Up',
    Context: first(action.Context),
    Exten: 's',
    Uniqueid: uniqueid,
    Linkedid: uniqueid,
    ...extra,
  };
}

const SCRIPTS: Record<string, Script> = {
  // answered, key 1 (like the raw log), hangup cause 16
  'Local/100@phones': (action, u) => [
    { delayMs: 5, event: originateResponse(action, 'Success', 4, u) },
    // noise: another channel's user event and hangup must be ignored
    {
      delayMs: 5,
      event: channelEvent('UserEvent', action, '999.1', {
        UserEvent: 'SwitchboardDTMF',
        Digit: '9',
      }),
    },
    {
      delayMs: 5,
      event: channelEvent('Hangup', action, '999.1', {
        Cause: '16',
        'Cause-txt': 'Normal Clearing',
      }),
    },
    {
      delayMs: 20,
      event: channelEvent('UserEvent', action, u, {
        UserEvent: 'SwitchboardDTMF',
        Digit: '1',
        CallId: callIdOf(action),
      }),
    },
    {
      delayMs: 10,
      event: channelEvent('Hangup', action, u, { Cause: '16', 'Cause-txt': 'Normal Clearing' }),
    },
  ],
  // answered, nobody presses anything
  'Local/101@phones': (action, u) => [
    { delayMs: 5, event: originateResponse(action, 'Success', 4, u) },
    {
      delayMs: 10,
      event: channelEvent('UserEvent', action, u, {
        UserEvent: 'SwitchboardNoKey',
        CallId: callIdOf(action),
      }),
    },
    {
      delayMs: 5,
      event: channelEvent('Hangup', action, u, { Cause: '16', 'Cause-txt': 'Normal Clearing' }),
    },
  ],
  'PJSIP/0312345678@trunk': (action, u) => [
    { delayMs: 5, event: originateResponse(action, 'Failure', 5, u) },
  ],
  'PJSIP/0399999999@trunk': (action, u) => [
    { delayMs: 5, event: originateResponse(action, 'Failure', 3, u) },
  ],
  'PJSIP/0388888888@trunk': (action, u) => [
    { delayMs: 5, event: originateResponse(action, 'Failure', 8, u) },
  ],
  'PJSIP/0300000000@trunk': (action, u) => [
    { delayMs: 5, event: originateResponse(action, 'Failure', 0, u) },
  ],
  // answered and never hangs up
  'Local/300@phones': (action, u) => [
    { delayMs: 5, event: originateResponse(action, 'Success', 4, u) },
  ],
  // never answers at all (no OriginateResponse)
  'Local/400@phones': () => [],
};

const actions: AmiMessage[] = [];
let counter = 0;
const server = new AmiServer({
  users: { admin: 'secret' },
  handlers: {
    Originate: (action: AmiMessage, connection: AmiServerConnection) => {
      actions.push(action);
      const channel = first(action.Channel);
      if (channel === 'Local/500@phones') {
        // read, then the connection drops before any answer (the Originate is in flight)
        connection.close();
        return undefined;
      }
      if (channel === 'PJSIP/refused') {
        return { response: { Response: 'Error', Message: 'Originate failed' } };
      }
      const script = SCRIPTS[channel];
      const uniqueid = `1795268702.${++counter}`;
      connection.respond(action, { Message: 'Originate successfully queued' });
      let at = 0;
      for (const step of script?.(action, uniqueid) ?? []) {
        at += step.delayMs;
        if (step.delayMs === 0) connection.send(step.event);
        else setTimeout(() => connection.send(step.event), at);
      }
      return undefined;
    },
    Hangup: (action) => {
      actions.push(action);
      return { response: { Message: 'Channel Hungup' } };
    },
  },
});

let client: AmiClient;
before(async () => {
  const port = await server.listen();
  client = new AmiClient({ port, username: 'admin', secret: 'secret', pingIntervalMs: 0 });
  await client.connect();
});
after(async () => {
  await client.close();
  await server.close();
});

const alert = { context: 'switchboard-callout', timeoutMs: 30_000 };

describe('originate against a fake Asterisk', () => {
  test('answered, key 1 pressed, hung up: digits and cause; action fields as sent', async () => {
    const digits: string[] = [];
    const result = await originate(
      client,
      {
        dialString: 'Local/100@phones',
        ...alert,
        callerId: '"Switchboard" <999>',
        callId: 'call-1',
        variables: {
          SWITCHBOARD_MESSAGE: '/var/lib/switchboard/sounds/m-1',
          SWITCHBOARD_KEYS: '12',
        },
      },
      { onDigit: (d) => digits.push(d) },
    );
    assert.equal(result.outcome, 'answered');
    assert.equal(result.end, 'hangup');
    assert.deepEqual(result.digits, ['1']);
    assert.deepEqual(digits, ['1']);
    assert.equal(result.reason, 4);
    assert.equal(result.hangupCause, 16);
    assert.equal(result.hangupCauseText, 'Normal Clearing');
    assert.equal(result.channel, 'Local/100@phones-00000010;1');
    assert.ok(result.answeredAt instanceof Date);
    assert.equal(result.userEvents.length, 1);
    const sent = actions.at(-1) as AmiMessage;
    assert.equal(sent.Action, 'Originate');
    assert.equal(sent.Async, 'true');
    assert.equal(sent.Context, 'switchboard-callout');
    assert.equal(sent.Exten, 's');
    assert.equal(sent.Priority, '1');
    assert.equal(sent.Timeout, '30000');
    assert.equal(sent.CallerID, '"Switchboard" <999>');
    assert.deepEqual(sent.Variable, [
      'SWITCHBOARD_CALL_ID=call-1',
      'SWITCHBOARD_MESSAGE=/var/lib/switchboard/sounds/m-1',
      'SWITCHBOARD_KEYS=12',
    ]);
    assert.equal(result.actionId, first(sent.ActionID));
  });

  test('endOnDigit settles at the key, before the hangup', async () => {
    const result = await originate(
      client,
      { dialString: 'Local/100@phones', ...alert },
      { endOnDigit: true },
    );
    assert.equal(result.end, 'digit');
    assert.deepEqual(result.digits, ['1']);
    assert.equal(result.hangupCause, undefined);
  });

  test('answered without a key: no digits, the NoKey user event is reported', async () => {
    const result = await originate(client, { dialString: 'Local/101@phones', ...alert });
    assert.equal(result.outcome, 'answered');
    assert.deepEqual(result.digits, []);
    assert.equal(result.userEvents[0]?.UserEvent, 'SwitchboardNoKey');
  });

  for (const [dial, outcome, reason] of [
    ['PJSIP/0312345678@trunk', 'busy', 5],
    ['PJSIP/0399999999@trunk', 'noanswer', 3],
    ['PJSIP/0388888888@trunk', 'congestion', 8],
    ['PJSIP/0300000000@trunk', 'failed', 0],
  ] as const) {
    test(`OriginateResponse Failure reason ${reason} → ${outcome}`, async () => {
      const result = await originate(client, { dialString: dial, ...alert });
      assert.equal(result.outcome, outcome);
      assert.equal(result.end, 'unanswered');
      assert.equal(result.reason, reason);
      assert.equal(result.uniqueid, undefined);
      assert.deepEqual(result.digits, []);
    });
  }

  test('concurrent calls are told apart by ActionID and Uniqueid', async () => {
    const results = await Promise.all([
      originate(client, { dialString: 'PJSIP/0312345678@trunk', ...alert }),
      originate(client, { dialString: 'Local/100@phones', ...alert }),
      originate(client, { dialString: 'PJSIP/0399999999@trunk', ...alert }),
      originate(client, { dialString: 'Local/101@phones', ...alert }),
    ]);
    assert.deepEqual(
      results.map((r) => [r.outcome, r.digits.join('')]),
      [
        ['busy', ''],
        ['answered', '1'],
        ['noanswer', ''],
        ['answered', ''],
      ],
    );
  });

  test('a refused Originate (Response: Error) is failed/refused with the message', async () => {
    const result = await originate(client, { dialString: 'PJSIP/refused', ...alert });
    assert.equal(result.outcome, 'failed');
    assert.equal(result.end, 'refused');
    assert.equal(result.error, 'Originate failed');
  });

  test('timeouts: no OriginateResponse; answered call longer than maxCallMs is hung up', async () => {
    const silent = await originate(
      client,
      { dialString: 'Local/400@phones', ...alert },
      { originateResponseTimeoutMs: 100 },
    );
    assert.equal(silent.outcome, 'failed');
    assert.equal(silent.end, 'timeout');
    const long = await originate(
      client,
      { dialString: 'Local/300@phones', ...alert },
      { maxCallMs: 100 },
    );
    assert.equal(long.outcome, 'answered');
    assert.equal(long.end, 'timeout');
    await new Promise((r) => setTimeout(r, 50));
    const hangup = actions.at(-1) as AmiMessage;
    assert.equal(hangup.Action, 'Hangup');
    assert.equal(hangup.Channel, 'Local/300@phones-00000010;1');
  });

  test('abort signal stops following', async () => {
    const controller = new AbortController();
    const pending = originate(
      client,
      { dialString: 'Local/300@phones', ...alert },
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort(), 50);
    assert.equal((await pending).end, 'aborted');
  });

  test('lost AMI connection rejects with CallTrackingError carrying what was known', async () => {
    const pending = originate(client, { dialString: 'Local/300@phones', ...alert });
    setTimeout(() => server.dropConnections(), 60);
    const error = await pending.catch((e: unknown) => e);
    assert.ok(error instanceof CallTrackingError);
    assert.equal(error.partial.outcome, 'answered');
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  });

  test('an Originate in flight at a disconnect rejects with CallTrackingError (sent, maybe placed), caused by AmiConnectionLostError', async () => {
    const error = await originate(client, {
      dialString: 'Local/500@phones',
      ...alert,
      callId: 'inflight-1',
    }).catch((e: unknown) => e);
    assert.ok(error instanceof CallTrackingError, String(error));
    assert.ok(error.cause instanceof AmiConnectionLostError);
    assert.equal(error.cause.answered, false);
    assert.match(error.cause.actionId, /\/inflight-1$/, 'the ActionID carries the call id');
    assert.equal(actionIdTag(error.cause.actionId), 'inflight-1');
    assert.equal(error.partial.outcome, 'failed');
    // while disconnected: never sent, a different type (safe to retry)
    const notSent = await originate(client, { dialString: 'Local/100@phones', ...alert }).catch(
      (e: unknown) => e,
    );
    assert.ok(notSent instanceof AmiNotSentError, String(notSent));
    assert.equal(notSent instanceof AmiConnectionLostError, false);
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  });

  test('the OriginateResponse completes the action and is an ordinary event too', async () => {
    const seen: string[] = [];
    const onEvent = (event: { Event: string; ActionID?: string | string[] }) => {
      if (event.Event === 'OriginateResponse') seen.push(String(event.ActionID));
    };
    client.on('event', onEvent);
    const result = await originate(client, { dialString: 'PJSIP/0312345678@trunk', ...alert });
    client.off('event', onEvent);
    assert.equal(result.outcome, 'busy');
    assert.deepEqual(seen, [result.actionId]);
  });

  test('invalid requests are refused before anything is sent', async () => {
    const count = actions.length;
    await assert.rejects(
      originate(client, { dialString: 'PJSIP/1\r\nAction: Command', ...alert }),
      {
        name: 'TelephonyValidationError',
        field: 'dialString',
      },
    );
    await assert.rejects(
      originate(client, { dialString: 'PJSIP/100', ...alert, variables: { FILE: 'a,b' } }),
      { field: 'variables.FILE' },
    );
    await assert.rejects(
      originate(client, {
        dialString: 'PJSIP/100',
        ...alert,
        variables: { FILE: 'x&Playback(y)' },
      }),
      { field: 'variables.FILE' },
    );
    await assert.rejects(originate(client, { dialString: 'PJSIP/100', context: 'a,b' }), {
      field: 'context',
    });
    await assert.rejects(
      originate(client, { dialString: 'PJSIP/100', ...alert, callerId: 'x\nAction: y' }),
      {
        field: 'callerId',
      },
    );
    await assert.rejects(originate(client, { dialString: 'PJSIP/100', ...alert, callId: 'a b' }), {
      field: 'callId',
    });
    assert.equal(actions.length, count);
  });
});

describe('pure helpers', () => {
  test('outcomeFromReason', () => {
    assert.deepEqual([0, 1, 3, 4, 5, 8, undefined, 42].map(outcomeFromReason), [
      'failed',
      'noanswer',
      'noanswer',
      'answered',
      'busy',
      'congestion',
      'failed',
      'failed',
    ]);
  });
  test('buildOriginateAction with an application', () => {
    const action = buildOriginateAction(
      {
        dialString: 'Local/42300@default',
        application: 'Playback',
        data: '/tmp/m-1',
        timeoutMs: 20_000,
      },
      'c1',
    );
    assert.deepEqual(action, {
      Action: 'Originate',
      Channel: 'Local/42300@default',
      Application: 'Playback',
      Data: '/tmp/m-1',
      Timeout: 20_000,
      Variable: ['SWITCHBOARD_CALL_ID=c1'],
      Async: 'true',
    });
  });
});
