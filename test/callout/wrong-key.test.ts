// Issue 4, item 3: a wrong key re-prompts within the same call (docs/asterisk/extensions.conf,
// context switchboard-callout: SwitchboardInvalidKey, then Read again, at most 3 rounds). The
// simulator emulates that dialplan (`validKeys`), so a callee pressing 9 then 1 answers
// positively in ONE attempt, end to end over AMI.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startSimulator } from '../../src/sim/index.ts';
import { calloutConfig, postCurlStyle, startServe, testDb, until, waitHistory } from './helpers.ts';

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

const userEvent = (name: string) => ({
  name,
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dialplan variables
  fields: { Digit: '${DIGIT}', CallId: '${SWITCHBOARD_CALL_ID}' },
});

test('a wrong key then 1 (Asterisk, re-prompting dialplan): positive, one attempt', async () => {
  const sim = await startSimulator({
    port: 0,
    dtmfDurationMs: 10,
    scripts: {
      '901': { answerAfterMs: 20, dtmf: '91', dtmfAfterMs: 50, hangupAfterMs: 5_000 },
      // Three wrong keys: the rounds run out, the dialplan hangs up without SwitchboardDTMF.
      '902': { answerAfterMs: 20, dtmf: '987', dtmfAfterMs: 50, hangupAfterMs: 5_000 },
    },
    dialplan: {
      'switchboard-callout': {
        playback: '',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a dialplan variable
        read: 'DIGIT,${SWITCHBOARD_MESSAGE},1,,1,5',
        readTimeoutMs: 2_000,
        validKeys: '12',
        rounds: 3,
        userEvent: userEvent('SwitchboardDTMF'),
        invalidKeyEvent: userEvent('SwitchboardInvalidKey'),
      },
    },
  });
  cleanups.push(() => sim.close());
  const invalid: string[] = [];
  const db = testDb('sqlite');
  const { service, url } = await startServe(calloutConfig(db, '', sim.url()), db);
  cleanups.push(() => service.stop());
  await until(() => service.context?.ami.clients[0]?.connected === true);
  service.context?.ami.clients[0]?.on('event', (event) => {
    if (event.Event === 'UserEvent' && event.UserEvent === 'SwitchboardInvalidKey')
      invalid.push(String(event.Digit));
  });
  const response = await postCurlStyle(url, [
    ['testflg', '0'],
    ['hostname', 'db1'],
    ['operator', 'zabbix'],
    ['calltype', '2'],
    ['frequency', '1'],
    ['language', 'en'],
    ['message', 'Disk full'],
    ['headid', '2'],
    ['footid', '1'],
    ['addressee', '1:a:901:A:1'],
    ['addressee', '2:b:902:B:1'],
  ]);
  const { eventid } = (await response.json()) as { eventid: string };
  const h = await waitHistory(url, eventid, (x) => x.eventstatus === '2');
  assert.deepEqual(
    h.result.map((r) => [r.telno, r.numofcall, r.status]),
    [
      ['901', '1', '1'], // 9 re-prompted, then 1: positive in the same call
      ['902', '1', '3'], // three wrong keys: no answer for that attempt
    ],
  );
  assert.equal(sim.originates().length, 2, 'one call each');
  assert.deepEqual(invalid.sort(), ['7', '8', '9', '9'], 'SwitchboardInvalidKey per wrong key');
});
