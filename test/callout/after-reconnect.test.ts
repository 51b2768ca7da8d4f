// Issue 10, §3: a key pressed after the AMI connection was dropped and re-established was
// ignored (its follower was gone with the old connection): the attempt waited out its lease,
// counted as no answer, and the next person was called. The `UserEvent` carries the call's id
// and is now routed to the stored attempt, and the `Hangup` by the channel's Uniqueid: here
// the PBX simulator drops every AMI connection right after each call is answered, the client
// reconnects, and the keys pressed afterwards count (2 for the first person, 1 for the second),
// long before the 60 s lease, and the third person is never called.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { AmiEvent } from '../../src/ami/message.ts';
import { startSimulator } from '../../src/sim/index.ts';
import { metricValue } from '../bus/helpers.ts';
import {
  alertFields,
  calloutConfig,
  calloutDialplan,
  type Kind,
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

for (const kind of ['sqlite', 'postgres'] as const satisfies Kind[]) {
  test(`keys pressed after an AMI reconnect count for their attempt (${kind}); the next person is not called`, async () => {
    const sim = await startSimulator({
      port: 0,
      dtmfDurationMs: 10,
      // Read waits 10 s for the key; each person presses it 1.5 s after answering.
      dialplan: calloutDialplan(10_000),
      scripts: {
        '601': { answerAfterMs: 50, dtmf: '2', dtmfAfterMs: 1_500, hangupAfterMs: 8_000 },
        '602': { answerAfterMs: 50, dtmf: '1', dtmfAfterMs: 1_500, hangupAfterMs: 8_000 },
        '603': { answerAfterMs: 50, dtmf: '1', dtmfAfterMs: 100, hangupAfterMs: 8_000 },
      },
    });
    cleanups.push(() => sim.close());
    const db = testDb(kind);
    cleanups.push(() => db.drop());
    const config = calloutConfig(db, '', sim.url());
    // Without the routing by call id, each key is lost and the call counts only after 60 s.
    config.callout.attemptLeaseMs = 60_000;
    const { service, url } = await startServe(config, db);
    cleanups.push(() => service.stop());
    const client = service.context?.ami.clients[0];
    assert.ok(client);
    await until(() => client.connected);
    let connects = 0;
    client.on('connect', () => connects++);
    // Right after each answer reached Switchboard: the connection drops (then reconnects).
    const answeredAt: number[] = [];
    client.on('event', (event: AmiEvent) => {
      if (event.Event === 'OriginateResponse' && event.Reason === '4') {
        answeredAt.push(Date.now());
        sim.server.dropConnections();
      }
    });
    const keysAt: number[] = [];
    sim.on('event', (event) => {
      if (event.Event === 'UserEvent' && event.UserEvent === 'SwitchboardDTMF')
        keysAt.push(Date.now());
    });

    const response = await postCurlStyle(
      url,
      alertFields(['1:a:601:A:1', '2:b:602:B:1', '3:c:603:C:1']),
    );
    const { eventid } = (await response.json()) as { eventid: string };
    const h = await waitHistory(url, eventid, (x) => x.eventstatus === '2', 20_000);
    assert.deepEqual(
      h.result.map((r) => [r.numofcall, r.status]),
      [
        ['1', '2'], // pressed 2 after the reconnect: counted, and its hang-up ended the attempt
        ['1', '1'], // pressed 1 after the reconnect: counted, the escalation is finished
        ['0', ''], // never called
      ],
    );
    const to = (n: string) => sim.originates().filter((o) => o.number === n).length;
    assert.deepEqual([to('601'), to('602'), to('603')], [1, 1, 0], 'one call each, 603 none');
    assert.equal(answeredAt.length, 2);
    assert.ok(connects >= 2, `the client reconnected after each drop (${connects})`);
    assert.ok(
      keysAt.length === 2 && keysAt.every((at, i) => at > (answeredAt[i] as number)),
      'each key was pressed after its connection dropped',
    );
    const history = await service.context?.db.db
      .selectFrom('callout_attempt' as never)
      .select(['state', 'outcome', 'digit'] as never[])
      .orderBy('placed_at' as never)
      .execute();
    assert.deepEqual(history, [
      { state: 'done', outcome: 'answered', digit: '2' },
      { state: 'done', outcome: 'answered', digit: '1' },
    ]);
    const registry = service.context?.metrics.registry as NonNullable<
      typeof service.context
    >['metrics']['registry'];
    const routed = (event: string) =>
      metricValue(registry, 'switchboard_callout_results_routed_total', { event });
    assert.equal(await routed('digit'), 2);
    assert.ok((await routed('hangup')) >= 1, 'the first call ended by its routed hang-up');
  });
}

test('a call still ringing when the AMI connection drops: its OriginateResponse after the reconnect ends the attempt', async () => {
  const sim = await startSimulator({
    port: 0,
    dtmfDurationMs: 10,
    dialplan: calloutDialplan(5_000),
    scripts: {
      // busy, but only after 1.5 s of ringing: the connection drops meanwhile
      '604': { outcome: 'busy', answerAfterMs: 1_500 },
      '605': { answerAfterMs: 50, dtmf: '1', dtmfAfterMs: 50, hangupAfterMs: 5_000 },
    },
  });
  cleanups.push(() => sim.close());
  const db = testDb('sqlite');
  const config = calloutConfig(db, '', sim.url());
  config.callout.attemptLeaseMs = 60_000;
  const { service, url } = await startServe(config, db);
  cleanups.push(() => service.stop());
  const client = service.context?.ami.clients[0];
  assert.ok(client);
  await until(() => client.connected);
  // The first channel event of the first call (604) comes with the Originate's response: the
  // call is placed and followed when the connection drops.
  let dropped = false;
  client.on('event', (event: AmiEvent) => {
    if (!dropped && event.Event === 'Newchannel') {
      dropped = true;
      sim.server.dropConnections();
    }
  });
  const response = await postCurlStyle(url, alertFields(['1:a:604:A:1', '2:b:605:B:1']));
  const { eventid } = (await response.json()) as { eventid: string };
  const h = await waitHistory(url, eventid, (x) => x.eventstatus === '2', 20_000);
  assert.ok(dropped);
  assert.deepEqual(
    h.result.map((r) => [r.numofcall, r.status]),
    [
      ['1', '3'], // busy, learnt after the reconnect: no answer, long before the lease
      ['1', '1'],
    ],
  );
  const attempts = await service.context?.db.db
    .selectFrom('callout_attempt' as never)
    .select(['state', 'outcome'] as never[])
    .orderBy('placed_at' as never)
    .execute();
  assert.deepEqual(attempts, [
    { state: 'done', outcome: 'busy' },
    { state: 'done', outcome: 'answered' },
  ]);
});

test('a callee who hangs up without a key after an AMI reconnect: the Hangup, found by the stored Uniqueid, ends the attempt', async () => {
  const sim = await startSimulator({
    port: 0,
    dtmfDurationMs: 10,
    dialplan: calloutDialplan(10_000),
    scripts: {
      // answers, listens, hangs up after 1.5 s without pressing (no user event at all)
      '606': { answerAfterMs: 50, hangupAfterMs: 1_500 },
      '607': { answerAfterMs: 50, dtmf: '1', dtmfAfterMs: 50, hangupAfterMs: 5_000 },
    },
  });
  cleanups.push(() => sim.close());
  const db = testDb('sqlite');
  const config = calloutConfig(db, '', sim.url());
  config.callout.attemptLeaseMs = 60_000;
  const { service, url } = await startServe(config, db);
  cleanups.push(() => service.stop());
  const client = service.context?.ami.clients[0];
  assert.ok(client);
  await until(() => client.connected);
  const database = service.context?.db.db;
  assert.ok(database);
  const storedUniqueid = async () =>
    (
      (await database
        .selectFrom('callout_attempt' as never)
        .select('provider_call_id' as never)
        .executeTakeFirst()) as { provider_call_id: string | null } | undefined
    )?.provider_call_id;
  let answered = false;
  client.on('event', (event: AmiEvent) => {
    if (!answered && event.Event === 'OriginateResponse' && event.Reason === '4') answered = true;
  });
  const response = await postCurlStyle(url, alertFields(['1:a:606:A:1', '2:b:607:B:1']));
  const { eventid } = (await response.json()) as { eventid: string };
  // answered, and its Uniqueid stored with the attempt: then the connection drops
  await until(async () => answered && (await storedUniqueid()) != null);
  let hangupAt = 0;
  sim.on('event', (event: AmiEvent) => {
    if (event.Event === 'Hangup' && hangupAt === 0) hangupAt = Date.now();
  });
  const droppedAt = Date.now();
  sim.server.dropConnections();
  const h = await waitHistory(url, eventid, (x) => x.eventstatus === '2', 20_000);
  assert.ok(hangupAt > droppedAt, 'the callee hung up after the drop');
  assert.deepEqual(
    h.result.map((r) => [r.numofcall, r.status]),
    [
      ['1', '3'], // answered, no key: no answer, known from the Hangup long before the lease
      ['1', '1'],
    ],
  );
  const attempts = await database
    .selectFrom('callout_attempt' as never)
    .select(['state', 'outcome', 'digit'] as never[])
    .orderBy('placed_at' as never)
    .execute();
  assert.deepEqual(attempts, [
    { state: 'done', outcome: 'answered', digit: null },
    { state: 'done', outcome: 'answered', digit: '1' },
  ]);
});

// Issue 11, §3: the connection dropped after the Originate was sent and before its answer
// ("Originate successfully queued" never arrived). The call may exist (here it does: the
// PBX runs it), so the attempt must not be marked failed and the person must not be dialled
// again; the key pressed in that call, after the reconnect, counts.
test('an Originate in flight when the AMI connection drops: not redialled, the key pressed after the reconnect counts', async () => {
  const sim = await startSimulator({
    port: 0,
    dtmfDurationMs: 10,
    dialplan: calloutDialplan(10_000),
    scripts: {
      '611': { answerAfterMs: 50, dtmf: '1', dtmfAfterMs: 1_500, hangupAfterMs: 4_000 },
      '612': { answerAfterMs: 50, dtmf: '1', dtmfAfterMs: 50, hangupAfterMs: 2_000 },
    },
  });
  cleanups.push(() => sim.close());
  const db = testDb('sqlite');
  cleanups.push(() => db.drop());
  const config = calloutConfig(db, '', sim.url());
  // Without the typed "sent, connection lost" error the attempt was failed at once and 611
  // dialled again; left to its lease it would only end after 60 s.
  config.callout.attemptLeaseMs = 60_000;
  const { service, url } = await startServe(config, db);
  cleanups.push(() => service.stop());
  const client = service.context?.ami.clients[0];
  assert.ok(client);
  await until(() => client.connected);
  // The moment the PBX reads the first Originate, before it answers: every connection drops.
  let dropped = 0;
  sim.server.on('action', (action) => {
    if (dropped === 0 && action.Action === 'Originate') {
      dropped = Date.now();
      sim.server.dropConnections();
    }
  });
  const keysAt: number[] = [];
  sim.on('event', (event: AmiEvent) => {
    if (event.Event === 'UserEvent' && event.UserEvent === 'SwitchboardDTMF')
      keysAt.push(Date.now());
  });
  const response = await postCurlStyle(url, alertFields(['1:a:611:A:1', '2:b:612:B:1']));
  const { eventid } = (await response.json()) as { eventid: string };
  const h = await waitHistory(url, eventid, (x) => x.eventstatus === '2', 20_000);
  assert.ok(dropped > 0, 'the connection dropped with the Originate in flight');
  assert.ok(keysAt.length === 1 && (keysAt[0] as number) > dropped, 'the key came after the drop');
  assert.deepEqual(
    h.result.map((r) => [r.numofcall, r.status]),
    [
      ['1', '1'], // one call, its key 1 (pressed after the reconnect) counted
      ['0', ''], // never called: the escalation ended with the first person's key
    ],
  );
  const to = (n: string) => sim.originates().filter((o) => o.number === n).length;
  assert.deepEqual([to('611'), to('612')], [1, 0], 'never redialled');
  const attempts = await service.context?.db.db
    .selectFrom('callout_attempt' as never)
    .select(['state', 'outcome', 'digit'] as never[])
    .execute();
  assert.deepEqual(attempts, [{ state: 'done', outcome: 'answered', digit: '1' }]);
});
