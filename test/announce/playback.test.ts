// Issue 11, §3: the announcement player told "never sent" from "maybe placed" by comparing
// an error's message text, and used only the first AMI server. Now by type, through any
// connected server: a fake Asterisk (wire shapes of test/fixtures/asterisk22: `Originate
// successfully queued`, then `OriginateResponse` with the ActionID) that drops the
// connection while it reads the Originate gives `unknown` (not retried); no server connected
// gives `no_ami` (retried); the first client down, the second plays it.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { AmiClient } from '../../src/ami/client.ts';
import type { AmiMessage } from '../../src/ami/message.ts';
import { AmiServer } from '../../src/ami/server.ts';
import { originatePlayer, type PlaybackSettings } from '../../src/announce/playback.ts';
import type { MessageRow } from '../../src/announce/repository.ts';

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

const first = (v: string | string[] | undefined): string =>
  Array.isArray(v) ? (v[0] ?? '') : (v ?? '');

/** A fake Asterisk answering Originate as Asterisk 22 does, or dropping the connection. */
async function pbx(mode: 'answer' | 'drop') {
  const originates: AmiMessage[] = [];
  const server = new AmiServer({
    users: { admin: 'secret' },
    handlers: {
      Originate: (action, connection) => {
        originates.push(action);
        if (mode === 'drop') {
          connection.close();
          return undefined;
        }
        connection.respond(action, { Message: 'Originate successfully queued' });
        const uniqueid = '1795268702.77';
        const channel = `${first(action.Channel)}-00000010`;
        setTimeout(() => {
          connection.send({
            Event: 'OriginateResponse',
            Privilege: 'call,all',
            ActionID: first(action.ActionID),
            Response: 'Success',
            Channel: channel,
            Context: first(action.Context),
            Exten: first(action.Exten),
            Reason: '4',
            Uniqueid: uniqueid,
            CallerIDNum: '<unknown>',
            CallerIDName: 'Switchboard',
          });
          connection.send({
            Event: 'Hangup',
            Privilege: 'call,all',
            Channel: channel,
            Uniqueid: uniqueid,
            Linkedid: uniqueid,
            Cause: '16',
            'Cause-txt': 'Normal Clearing',
          });
        }, 5);
        return undefined;
      },
    },
  });
  const port = await server.listen();
  cleanups.push(() => server.close());
  const client = new AmiClient({ port, username: 'admin', secret: 'secret', pingIntervalMs: 0 });
  cleanups.push(() => client.close());
  await client.connect();
  return { client, originates };
}

const settings: PlaybackSettings = {
  dialString: 'PJSIP/{extension}',
  context: 'switchboard-announce',
  exten: 's',
  soundVariable: 'SWITCHBOARD_MESSAGE',
  callerId: 'Switchboard',
  ringTimeS: 5,
  maxRetries: 1,
  retryTimeS: 1,
};

const message = {
  public_id: '5b1f7e0e-0000-4000-8000-000000000001',
  extension: '42310',
  audio_path: '/var/lib/switchboard/sounds/a.wav',
  duration_ms: 1500,
  attempts: 0,
} as MessageRow;

test('sent, then the connection dropped: unknown, not retried', async () => {
  const { client, originates } = await pbx('drop');
  const result = await originatePlayer(settings, () => [client])(message);
  assert.equal(originates.length, 1, 'the Originate reached the PBX');
  assert.equal(result.status, 'failed');
  assert.match(result.outcome, /^unknown: AMI connection lost after the Originate was sent/);
  assert.notEqual(result.retry, true);
});

test('no server connected: never sent, no_ami, retried', async () => {
  const result = await originatePlayer(settings, () => [])(message);
  assert.deepEqual(result, { status: 'failed', outcome: 'no_ami', retry: true });
});

test('the first client not connected any more: played through the second', async () => {
  const down = await pbx('answer');
  await down.client.close();
  const up = await pbx('answer');
  // both offered (as if the first had dropped after being chosen): never sent → the next
  const result = await originatePlayer(settings, () => [down.client, up.client])(message);
  assert.deepEqual(result, { status: 'played', outcome: 'answered' });
  assert.equal(down.originates.length, 0);
  assert.equal(up.originates.length, 1);
  assert.equal(first(up.originates[0]?.Channel), 'PJSIP/42310');
});
