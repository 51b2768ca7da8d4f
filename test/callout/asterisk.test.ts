// Escalations end to end through `serve` against the PBX simulator (real AMI over TCP):
// sequential and parallel with scripted answers, the Originate parameters, the seed's sample
// request (Japanese TTS), a restart mid-escalation (SQLite and PostgreSQL: the key pressed in
// the call in progress, after the restart, counts) and two workers sharing PostgreSQL.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { type Simulator, startSimulator } from '../../src/sim/index.ts';
import {
  calloutConfig,
  calloutDialplan,
  postCurlStyle,
  seedFields,
  startServe,
  type TestDb,
  testDb,
  until,
  waitHistory,
} from './helpers.ts';

const DIALPLAN = calloutDialplan(300);

const quick = { answerAfterMs: 20, dtmfAfterMs: 20, hangupAfterMs: 2000 };

async function simulator(scripts: Record<string, object>): Promise<Simulator> {
  return startSimulator({ port: 0, scripts, dialplan: DIALPLAN, dtmfDurationMs: 10 });
}

function originatesTo(sim: Simulator, number: string) {
  return sim.originates().filter((o) => o.number === number);
}

const fields = (calltype: string, frequency: string, people: string[]) =>
  [
    ['testflg', '0'],
    ['hostname', 'db1.example.com'],
    ['operator', 'zabbix'],
    ['calltype', calltype],
    ['frequency', frequency],
    ['language', 'en'],
    ['message', 'Disk full'],
    ['headid', '2'],
    ['footid', '1'],
    ...people.map((p) => ['addressee', p]),
  ] as Array<[string, string]>;

describe('callout against the PBX simulator', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });

  async function serve(
    db: TestDb,
    sim: Simulator,
    tweak?: (c: ReturnType<typeof calloutConfig>) => void,
  ) {
    const config = calloutConfig(db, '', sim.url());
    tweak?.(config);
    const started = await startServe(config, db);
    cleanups.push(() => started.service.stop());
    await until(() => started.service.context?.ami.clients[0]?.connected === true);
    return started;
  }

  test('sequential: 1 busy, 2 presses 2, 3 presses 1; Originate parameters', async () => {
    const sim = await simulator({
      '301': { outcome: 'busy', answerAfterMs: 20 },
      '302': { ...quick, dtmf: '2' },
      '303': { ...quick, dtmf: '1' },
    });
    cleanups.push(() => sim.close());
    const db = testDb('sqlite');
    const { url, bus, service } = await serve(db, sim);
    const response = await postCurlStyle(
      url,
      fields('1', '3', ['1:a:301:A:1', '2:b:302:B:1', '3:c:303:C:1']),
    );
    const { eventid } = (await response.json()) as { eventid: string };
    const h = await waitHistory(url, eventid, (x) => x.eventstatus === '2');
    assert.deepEqual(
      h.result.map((r) => [r.numofcall, r.status]),
      [
        ['1', '3'],
        ['1', '2'],
        ['1', '1'],
      ],
    );
    const originates = sim.originates();
    assert.deepEqual(
      originates.map((o) => o.channel),
      ['PJSIP/301@trunk', 'PJSIP/302@trunk', 'PJSIP/303@trunk'],
    );
    const mediaDir = service.context?.config.callout.mediaDir ?? '';
    for (const o of originates) {
      assert.equal(o.context, 'switchboard-callout');
      assert.equal(o.exten, 's');
      assert.equal(o.async, true);
      assert.equal(o.timeoutMs, 30_000);
      assert.equal(o.variables.SWITCHBOARD_KEYS, '12');
      assert.equal(o.variables.CALLOUT_EVENT_ID, eventid);
      assert.equal(o.variables.SWITCHBOARD_CALL_ID, o.variables.CALLOUT_ATTEMPT_ID);
      assert.ok(
        o.variables.SWITCHBOARD_MESSAGE?.startsWith(mediaDir),
        o.variables.SWITCHBOARD_MESSAGE,
      );
      assert.ok(existsSync(`${o.variables.SWITCHBOARD_MESSAGE}.wav`));
      assert.ok(existsSync(`${o.variables.SWITCHBOARD_CONFIRM}.wav`));
    }
    const keys = bus.map(([k]) => k);
    assert.deepEqual(
      keys.filter((k) => k.startsWith('callout.event')),
      ['callout.event.created', 'callout.event.started', 'callout.event.finished'],
    );
    const finished = bus
      .filter(([k]) => k === 'callout.attempt.finished')
      .map(([, m]) => m.data as { outcome: string; digit: string | null });
    assert.deepEqual(
      finished.map((d) => [d.outcome, d.digit]),
      [
        ['busy', null],
        ['answered', '2'],
        ['answered', '1'],
      ],
    );
  });

  test('parallel: everyone until all answered; a wrong key and busy count as no answer', async () => {
    const sim = await simulator({
      '401': { outcome: 'busy', answerAfterMs: 20 },
      '402': { ...quick, dtmf: '2' },
      '403': { ...quick, dtmf: '9' },
    });
    cleanups.push(() => sim.close());
    const db = testDb('sqlite');
    const { url } = await serve(db, sim);
    const response = await postCurlStyle(
      url,
      fields('2', '2', ['1:a:401:A:1', '2:b:402:B:1', '3:c:403:C:1']),
    );
    const { eventid } = (await response.json()) as { eventid: string };
    const h = await waitHistory(url, eventid, (x) => x.eventstatus === '2');
    assert.deepEqual(
      h.result.map((r) => [r.numofcall, r.status]),
      [
        ['2', '3'],
        ['1', '2'],
        ['2', '3'],
      ],
    );
    assert.equal(originatesTo(sim, '401').length, 2);
    assert.equal(originatesTo(sim, '402').length, 1);
    assert.equal(originatesTo(sim, '403').length, 2);
    // The minimum interval (1 s × timeScale 0.01 = 10 ms) separates the two calls of 401.
    const [first, second] = sim.actions.filter(
      (a) => a.name === 'Originate' && String(a.fields.Channel).includes('401'),
    );
    assert.ok(first && second && second.atMs - first.atMs >= 10);
  });

  test("the seed's sample request (ja-jp, testflg=0) against the simulator", async () => {
    const sim = await simulator({ '810000000000': { ...quick, dtmf: '1' } });
    cleanups.push(() => sim.close());
    const db = testDb('sqlite');
    const { url } = await serve(db, sim);
    const response = await postCurlStyle(url, seedFields('0'));
    const { eventid } = (await response.json()) as { eventid: string };
    const h = await waitHistory(url, eventid, (x) => x.eventstatus === '2', 60_000);
    assert.equal(h.provider, 'asterisk');
    assert.deepEqual(
      h.result.map((r) => r.status),
      ['1', '', ''],
    );
    assert.equal(sim.originates().length, 1);
    assert.equal(sim.originates()[0]?.channel, 'PJSIP/810000000000@trunk');
  });

  // A restart mid-escalation (no double call, the key pressed after the restart counts) is
  // test/callout/restart-process.test.ts: serve a real process killed with SIGKILL.

  test('two workers on PostgreSQL never double-dial', async () => {
    const scripts: Record<string, object> = {};
    for (let i = 0; i < 10; i += 1)
      scripts[`60${i}`] = { ...quick, dtmf: i % 3 === 0 ? '1' : '', hangupAfterMs: 100 };
    const sim = await simulator(scripts);
    cleanups.push(() => sim.close());
    const db = testDb('postgres');
    cleanups.push(() => db.drop());
    const a = await serve(db, sim);
    const b = await serve(db, sim);
    const ids: string[] = [];
    for (let e = 0; e < 20; e += 1) {
      const target = e % 2 === 0 ? a.url : b.url;
      const people = Array.from({ length: 5 }, (_, i) => `${i + 1}:u${i}:60${(e + i) % 10}:N:1`);
      const response = await postCurlStyle(target, fields(e % 2 === 0 ? '1' : '2', '2', people));
      ids.push(((await response.json()) as { eventid: string }).eventid);
    }
    let total = 0;
    for (const id of ids) {
      const h = await waitHistory(a.url, id, (x) => x.eventstatus === '2', 30_000);
      total += h.result.reduce((n, r) => n + Number(r.numofcall), 0);
    }
    const attempts = sim.originates().map((o) => o.variables.CALLOUT_ATTEMPT_ID);
    assert.equal(new Set(attempts).size, attempts.length, 'each attempt dialled once');
    assert.equal(attempts.length, total, 'every call counted in the history was dialled once');
    const placed = [a, b].map((s) => s.bus.filter(([k]) => k === 'callout.attempt.dialing').length);
    assert.ok(placed[0] && placed[1], `both workers placed calls: ${placed.join(', ')}`);
  });
});
