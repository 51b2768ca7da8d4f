// The escalation worker's grouped writes (issue 4, benchmarks): keys and outcomes reported at
// the same moment share one transaction and a few set-based statements; a key and an outcome
// of one attempt in the same group still count as "the key before the hang-up"; a second
// report is ignored; decisions of many events are taken in chunks. On SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { type CalloutProvider, type DialRequest, selectProvider } from '../../src/callout/index.ts';
import { createDryRunProvider } from '../../src/callout/providers/dryrun.ts';
import type { AttemptSink } from '../../src/callout/providers/types.ts';
import { calloutMigrations, loadEvent } from '../../src/callout/repository.ts';
import {
  CalloutService,
  type CallRequest,
  choose,
  type PlacedCall,
} from '../../src/callout/service.ts';
import { loadConfig } from '../../src/config/load.ts';
import { migrate, openDatabase } from '../../src/store/db.ts';
import { type Kind, testDb, until } from './helpers.ts';

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

function request(calltype: 1 | 2, people: number, frequency = 2): CallRequest {
  return {
    testflg: 0,
    hostname: 'db1',
    operator: 'test',
    calltype,
    frequency,
    language: 'en',
    message: 'Disk full',
    headid: 2,
    footid: 1,
    headmsg: 'Head',
    footmsg: 'Foot',
    addressees: Array.from({ length: people }, (_, i) => ({
      order: i + 1,
      userid: `u${i}`,
      telno: `70${i}`,
      name: `N${i}`,
      intervalS: 0,
    })),
  };
}

/** A provider that only records the calls; the test reports their results through the sink. */
function manualProvider() {
  const calls: Array<{ request: DialRequest; sink: AttemptSink }> = [];
  const provider: CalloutProvider = {
    name: 'manual',
    dial: async (req, sink) => {
      calls.push({ request: req, sink });
    },
  };
  return { provider, calls };
}

async function startService(kind: Kind) {
  const db = testDb(kind);
  cleanups.push(() => db.drop());
  const database = await openDatabase(db.url, db.schema ? { schema: db.schema } : {});
  cleanups.push(() => database.close());
  await migrate(database, [calloutMigrations]);
  const manual = manualProvider();
  const published: string[] = [];
  const placed: PlacedCall[] = [];
  const service = new CalloutService({
    database,
    providers: {
      manual: manual.provider,
      dryrun: createDryRunProvider({ delayMs: 1, answer: '1', numbers: {} }),
    },
    defaultProvider: 'manual',
    timeScale: 1,
    pollIntervalMs: 50,
    attemptLeaseMs: 60_000,
    ringTimeoutMs: 1000,
    batchSize: 200,
    decisionChunkSize: 7,
    publish: (key) => published.push(key),
    onPlaced: (call) => placed.push(call),
  });
  cleanups.push(() => service.stop(0));
  service.start();
  return { service, database, manual, published, placed };
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`grouped writes (${kind})`, () => {
    test('a call that could not be prepared: eventstatus 99 with the reason, nobody "no answer", a call already placed still counts', async () => {
      const { service, database, manual, published } = await startService(kind);
      const id = await service.createEvent(request(2, 2, 3));
      await until(() => manual.calls.length === 2);
      const [first, second] = manual.calls;
      assert.ok(first && second);
      await first.sink.unprepared?.(
        first.request.attemptId,
        'the message could not be prepared: espeak-ng is not installed or not executable',
      );
      let history = await loadEvent(database, id);
      assert.equal(history?.event.status, 99);
      assert.equal(
        history?.event.error,
        'the message could not be prepared: espeak-ng is not installed or not executable',
      );
      assert.equal(history?.event.due_at, null, 'never decided again');
      // The other call was placed already: its key is still written.
      await second.sink.finished(second.request.attemptId, 'answered', '1');
      history = await loadEvent(database, id);
      assert.deepEqual(
        history?.people.map((p) => [p.telno, p.status]),
        [
          [first.request.telno, null],
          [second.request.telno, 1],
        ],
      );
      assert.deepEqual(
        history?.attempts.map((a) => [a.id === first.request.attemptId, a.state, a.outcome]).sort(),
        [
          [false, 'done', 'answered'],
          [true, 'done', 'failed'],
        ],
      );
      assert.equal(history?.event.status, 99, 'stays a system error');
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(manual.calls.length, 2, 'nobody called again (frequency 3)');
      assert.equal(published.filter((k) => k === 'callout.event.finished').length, 1);
    });

    test('a provider not configured in this process: eventstatus 99 with the reason', async () => {
      const { service, database } = await startService(kind);
      const id = await service.createEvent(request(1, 1));
      await database.db
        .updateTable('callout_event' as never)
        .set({ provider: 'twilio' } as never)
        .execute();
      service.wake();
      await until(async () => (await loadEvent(database, id))?.event.status === 99);
      assert.equal(
        (await loadEvent(database, id))?.event.error,
        'provider twilio is not configured in this process',
      );
    });

    test('40 parallel events: keys and outcomes reported at once, in chunks and groups', async () => {
      const { service, database, manual, published, placed } = await startService(kind);
      const ids = await Promise.all(
        Array.from({ length: 40 }, () => service.createEvent(request(2, 3))),
      );
      await until(() => manual.calls.length === 120);
      // everyone dialled once, each event decided once (chunks of 7)
      const perEvent = new Map<string, number>();
      for (const c of manual.calls) {
        perEvent.set(c.request.eventId, (perEvent.get(c.request.eventId) ?? 0) + 1);
      }
      assert.deepEqual([...new Set(perEvent.values())], [3]);
      // All results at the same moment: person 1 presses 1 (key and outcome reported
      // together, the outcome twice: the second report is ignored), person 2 presses 2 (key only, then the outcome), person 3
      // does not answer (busy).
      await Promise.all(
        manual.calls.flatMap(({ request: r, sink }) => {
          if (r.telno === '700')
            return [
              sink.digit(r.attemptId, '1'),
              sink.finished(r.attemptId, 'answered', '1'),
              sink.finished(r.attemptId, 'answered'),
            ];
          if (r.telno === '701')
            return [sink.digit(r.attemptId, '2'), sink.finished(r.attemptId, 'answered')];
          return [sink.finished(r.attemptId, 'busy')];
        }),
      );
      // the busy person is called again (frequency 2), then gives up: the event finishes
      await until(() => manual.calls.length === 160);
      await Promise.all(
        manual.calls.slice(120).map(({ request: r, sink }) => sink.finished(r.attemptId, 'busy')),
      );
      for (const id of ids) {
        await until(async () => (await loadEvent(database, id))?.event.status === 2);
        const history = await loadEvent(database, id);
        assert.ok(history);
        assert.deepEqual(
          history.people.map((p) => [p.telno, p.status, p.calls]),
          [
            ['700', 1, 1],
            ['701', 2, 1],
            ['702', 3, 2],
          ],
        );
        const byTelno = (t: string) =>
          history.attempts
            .filter((a) => history.people.find((p) => p.id === a.person_id)?.telno === t)
            .map((a) => [a.state, a.outcome, a.digit]);
        assert.deepEqual(byTelno('700'), [['done', 'answered', '1']]);
        assert.deepEqual(byTelno('701'), [['done', 'answered', '2']]);
        assert.deepEqual(byTelno('702'), [
          ['done', 'busy', null],
          ['done', 'busy', null],
        ]);
      }
      const count = (key: string) => published.filter((k) => k === key).length;
      assert.equal(count('callout.attempt.answered'), 80);
      assert.equal(count('callout.attempt.finished'), 160);
      assert.equal(count('callout.event.finished'), 40);
      assert.equal(manual.calls.length, 160, 'nobody called again after answering');
      // every placement is reported through the public seam (benchmarks measure with it)
      assert.equal(placed.length, 160);
    });
  });
}

describe('choose (the escalation rules, pure)', () => {
  const base = {
    id: 'e',
    status: 1,
    testflg: 0,
    provider: 'manual',
    hostname: 'h',
    operator: 'o',
    calltype: 1,
    frequency: 2,
    language: 'en',
    message: 'm',
    headid: 1,
    footid: 1,
    headmsg: '',
    footmsg: '',
    last_order: 1,
    created_at: 0,
    started_at: 0,
    finished_at: null,
    due_at: 1000,
    lease_until: null,
    lease_owner: null,
  };
  const person = (
    order: number,
    calls: number,
    status: number | null,
    latestAt: number | null,
  ) => ({
    id: `p${order}`,
    event_id: 'e',
    numorder: order,
    ghid: `u${order}`,
    name: `n${order}`,
    telno: `70${order}`,
    sleep_s: 10,
    calls,
    latest_at: latestAt,
    status,
  });
  const options = {
    now: 100_000,
    intervalMs: (p: { sleep_s: number }) => p.sleep_s * 1000,
    providerKnown: true,
    providerReady: true,
    retryMs: 100,
    attemptLeaseMs: 60_000,
  };

  test('sequential: the next person after the cursor, wrapping, skipping who said 2', () => {
    const people = [person(1, 1, 3, 0), person(2, 1, 2, 1000), person(3, 1, 3, 2000)];
    const c = choose({ ...base, last_order: 3 }, people, [], options);
    assert.deepEqual(
      c.toDial.map((p) => p.numorder),
      [1],
    );
    assert.equal(c.lastOrder, 1);
    assert.equal(c.dueAt, options.now + options.attemptLeaseMs);
  });

  test('sequential: waits for the minimum interval; finished when nobody is left', () => {
    const waiting = choose(base, [person(1, 1, 3, 95_000), person(2, 2, 3, 0)], [], options);
    assert.deepEqual(waiting.toDial, []);
    assert.equal(waiting.dueAt, 105_000, 'person 1 is eligible 10 s after the previous call');
    const done = choose(base, [person(1, 2, 3, 0), person(2, 2, 2, 0)], [], options);
    assert.equal(done.finished, true);
    assert.equal(done.status, 2);
    assert.equal(done.dueAt, null);
  });

  test('parallel: everyone not answered and not in a call; finished when all answered', () => {
    const p = [person(1, 1, 1, 0), person(2, 1, 3, 0), person(3, 0, null, null)];
    const inflight = [{ person_id: 'p3', lease_until: 150_000 }] as never[];
    const c = choose({ ...base, calltype: 2 }, p, inflight, options);
    assert.deepEqual(
      c.toDial.map((x) => x.numorder),
      [2],
    );
    const all = choose(
      { ...base, calltype: 2 },
      [person(1, 1, 1, 0), person(2, 1, 2, 0)],
      [],
      options,
    );
    assert.equal(all.finished, true);
  });

  test('a provider not ready dials nobody and looks again soon; an unknown one fails (99)', () => {
    const p = [person(1, 0, null, null)];
    const notReady = choose({ ...base, status: 0 }, p, [], { ...options, providerReady: false });
    assert.deepEqual(notReady.toDial, []);
    assert.equal(notReady.notReady, true);
    assert.equal(notReady.started, false);
    assert.equal(notReady.dueAt, options.now + options.retryMs);
    const unknown = choose(base, p, [], { ...options, providerKnown: false });
    assert.equal(unknown.status, 99);
    assert.equal(unknown.done, true);
  });
});

test('provider auto: asterisk with AMI servers or the embedded simulator (npm start), else dry run', () => {
  const config = (text: string, overrides = {}) => loadConfig({ text, env: {}, overrides });
  assert.equal(selectProvider(config('')), 'dryrun');
  assert.equal(selectProvider(config('simulator:\n  enabled: true\n')), 'asterisk');
  assert.equal(selectProvider(config('', { ami: ['tcp://u:s@127.0.0.1:5038'] })), 'asterisk');
  assert.equal(
    selectProvider(config('callout:\n  provider: dryrun\nsimulator:\n  enabled: true\n')),
    'dryrun',
  );
});
