// Issue 4, item 3: a wrong key re-prompts within the same call (docs/asterisk/extensions.conf,
// context switchboard-callout: SwitchboardInvalidKey, then Read again, at most 3 rounds). The
// simulator emulates that dialplan (`validKeys`, `silentRepeats`), so a callee pressing 9 then
// 1 answers positively in ONE attempt, end to end over AMI; and the message repeats once when
// nothing is pressed (item 3, "beyond Barista"), so a callee who answers during the repeat
// counts as positive in that same call.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startSimulator } from '../../src/sim/index.ts';
import {
  calloutConfig,
  calloutDialplan,
  calloutUserEvent,
  postCurlStyle,
  startServe,
  testDb,
  until,
  waitHistory,
} from './helpers.ts';

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

test('a wrong key re-prompts, silence repeats the message once (Asterisk dialplan): one attempt each', async () => {
  const sim = await startSimulator({
    port: 0,
    dtmfDurationMs: 10,
    scripts: {
      '901': { answerAfterMs: 20, dtmf: '91', dtmfAfterMs: 50, hangupAfterMs: 5_000 },
      // Three wrong keys: the rounds run out, the dialplan hangs up without SwitchboardDTMF.
      '902': { answerAfterMs: 20, dtmf: '987', dtmfAfterMs: 50, hangupAfterMs: 5_000 },
      // Silent during the first Read (2 s), presses 1 while the message plays again.
      '903': { answerAfterMs: 20, dtmf: '1', dtmfAfterMs: 2_500, hangupAfterMs: 8_000 },
      // Never presses: the message plays twice, then the call ends (no answer).
      '904': { answerAfterMs: 20, hangupAfterMs: 8_000 },
    },
    dialplan: calloutDialplan(2_000, {
      validKeys: '12',
      rounds: 3,
      invalidKeyEvent: calloutUserEvent('SwitchboardInvalidKey'),
    }),
  });
  cleanups.push(() => sim.close());
  const invalid: string[] = [];
  const reads = new Map<string, number>();
  const db = testDb('sqlite');
  const { service, url } = await startServe(calloutConfig(db, '', sim.url()), db);
  cleanups.push(() => service.stop());
  await until(() => service.context?.ami.clients[0]?.connected === true);
  service.context?.ami.clients[0]?.on('event', (event) => {
    if (event.Event === 'UserEvent' && event.UserEvent === 'SwitchboardInvalidKey')
      invalid.push(String(event.Digit));
    if (event.Event === 'Newexten' && event.Application === 'Read') {
      const id = String(event.Uniqueid);
      reads.set(id, (reads.get(id) ?? 0) + 1);
    }
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
    ['addressee', '3:c:903:C:1'],
    ['addressee', '4:d:904:D:1'],
  ]);
  const { eventid } = (await response.json()) as { eventid: string };
  const h = await waitHistory(url, eventid, (x) => x.eventstatus === '2');
  assert.deepEqual(
    h.result.map((r) => [r.telno, r.numofcall, r.status]),
    [
      ['901', '1', '1'], // 9 re-prompted, then 1: positive in the same call
      ['902', '1', '3'], // three wrong keys: no answer for that attempt
      ['903', '1', '1'], // nothing pressed, the message again, then 1: positive
      ['904', '1', '3'], // nothing pressed twice: no answer
    ],
  );
  assert.equal(sim.originates().length, 4, 'one call each');
  // Reads per call: 9 then 1 (2), three wrong keys (3), silence then 1 (2), silence twice (2).
  assert.deepEqual([...reads.values()].sort(), [2, 2, 2, 3]);
  assert.deepEqual(invalid.sort(), ['7', '8', '9', '9'], 'SwitchboardInvalidKey per wrong key');
});
