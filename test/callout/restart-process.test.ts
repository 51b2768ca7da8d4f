// Issue 4's "Done when": kill `serve` (a real process, SIGKILL) in the middle of an escalation,
// start it again on the same database: nobody is dialled twice and no answer is lost, on SQLite
// and PostgreSQL. serve runs from the TypeScript sources (test/serve/cli-entry.ts) with a YAML
// config; its AMI points at a PBX simulator running in this test process, which records every
// Originate and keeps playing the call that was in progress when serve died. Two cases: the
// call in progress ends without a key (it counts as unknown = no answer after its lease, and
// is never redialled), and its key comes after the restart (issue 10, §3: routed by the call's
// id to the stored attempt, it counts; nobody else is called).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type Simulator, startSimulator } from '../../src/sim/index.ts';
import { type RunningCli, startCli } from '../support/cli.ts';
import { freePort } from '../support/net.ts';
import {
  calloutDialplan,
  getHistory,
  type Kind,
  postCurlStyle,
  type TestDb,
  tempDir,
  testDb,
  until,
  waitHistory,
} from './helpers.ts';

const ENTRY = join(import.meta.dirname, '..', 'serve', 'cli-entry.ts');

// Read waits 45 s for a key (the second test's key comes 30 s after the answer).
const DIALPLAN = calloutDialplan(45_000);

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
});

/** Writes serve's YAML config for `db` and the simulator; `leaseMs` = `callout.attemptLeaseMs`. */
function writeConfig(db: TestDb, sim: Simulator, leaseMs: number): string {
  const dir = tempDir();
  const config = join(dir, 'switchboard.yaml');
  writeFileSync(
    config,
    [
      'log:',
      '  level: warn',
      'database:',
      `  url: ${JSON.stringify(db.url)}`,
      ...(db.schema ? [`  schema: ${db.schema}`] : []),
      'ami:',
      '  servers:',
      `    - {url: "${sim.url()}", pingIntervalMs: 0, reconnectMinMs: 20, reconnectMaxMs: 100}`,
      'callout:',
      `  mediaDir: ${JSON.stringify(join(dir, 'media'))}`,
      '  timeScale: 0.01',
      '  pollIntervalMs: 50',
      `  attemptLeaseMs: ${leaseMs}`,
      '',
    ].join('\n'),
  );
  return config;
}

const children: RunningCli[] = [];
cleanups.push(() => {
  for (const c of children) c.child.kill('SIGKILL');
});

/** Starts a serve process on `config`; resolves once `/readyz` answers 200 (AMI connected). */
async function serve(config: string): Promise<{ cli: RunningCli; url: string }> {
  const port = await freePort();
  const cli = startCli(
    ['serve', '--config', config, '--listen', `127.0.0.1:${port}`],
    [process.execPath, ENTRY],
  );
  children.push(cli);
  const url = `http://127.0.0.1:${port}`;
  await until(
    async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200,
    60_000,
  ).catch(() => {
    throw new Error(`serve not ready: ${cli.stderr()}`);
  });
  return { cli, url };
}

const request = (people: string[]) =>
  [
    ['testflg', '0'],
    ['hostname', 'db1'],
    ['operator', 'zabbix'],
    ['calltype', '1'],
    ['frequency', '1'],
    ['language', 'en'],
    ['message', 'Disk full'],
    ['headid', '2'],
    ['footid', '1'],
    ...people.map((p) => ['addressee', p]),
  ] as Array<[string, string]>;

for (const kind of ['sqlite', 'postgres'] as const satisfies Kind[]) {
  test(`SIGKILL of the serve process mid-escalation, restart (${kind}): one Originate per person, answer kept, event finished`, {
    timeout: 120_000,
  }, async () => {
    const sim: Simulator = await startSimulator({
      port: 0,
      dialplan: DIALPLAN,
      dtmfDurationMs: 10,
      scripts: {
        // Person 1 presses 2 after a short delay.
        '501': { answerAfterMs: 50, dtmf: '2', dtmfAfterMs: 300, hangupAfterMs: 5_000 },
        // Person 2 answers and never presses: serve dies during this call.
        '502': { answerAfterMs: 50, hangupAfterMs: 8_000 },
        // Person 3 presses 1.
        '503': { answerAfterMs: 50, dtmf: '1', dtmfAfterMs: 200, hangupAfterMs: 5_000 },
      },
    });
    cleanups.push(() => sim.close());
    const answered: string[] = [];
    sim.on('event', (event) => {
      if (event.Event === 'OriginateResponse' && event.Reason === '4')
        answered.push(String(event.Channel));
    });
    const db = testDb(kind);
    cleanups.push(() => db.drop());
    // The call in progress at the crash counts as unknown (= no answer) 1.5 s after it was placed.
    const config = writeConfig(db, sim, 1_500);
    const to = (number: string) => sim.originates().filter((o) => o.number === number);

    const a = await serve(config);
    const response = await postCurlStyle(
      a.url,
      request(['1:a:501:A:1', '2:b:502:B:1', '3:c:503:C:1']),
    );
    const { eventid } = (await response.json()) as { eventid: string };
    assert.ok(eventid, 'event created');
    // Person 1's answer is recorded and person 2's call is in progress (answered).
    await waitHistory(
      a.url,
      eventid,
      (h) => h.result[0]?.status === '2' && h.result[1]?.numofcall === '1',
      30_000,
    );
    await until(() => to('502').length === 1 && answered.length === 2, 10_000);
    a.cli.child.kill('SIGKILL');
    await a.cli.exited;
    assert.equal(to('503').length, 0, 'person 3 not called before the crash');
    // Restart once the lease of the call in progress ran out: the new process finds person 3
    // due at once, before its AMI connection is up (it must wait for it, not fail the call).
    await new Promise((r) => setTimeout(r, 1_600));

    const b = await serve(config);
    const before = await getHistory(b.url, eventid);
    assert.equal(before.result[0]?.status, '2', 'the answer given before the crash is kept');
    const h = await waitHistory(b.url, eventid, (x) => x.eventstatus === '2', 30_000);
    assert.deepEqual(
      h.result.map((r) => [r.numofcall, r.status]),
      [
        ['1', '2'], // answered 2 before the crash: kept
        ['1', '3'], // in progress at the crash: unknown after its lease = no answer, not redialled
        ['1', '1'], // called by the new process
      ],
      `history ${JSON.stringify(h.result)}; serve: ${b.cli.stdout()} ${b.cli.stderr().slice(-1000)}`,
    );
    assert.deepEqual(
      ['501', '502', '503'].map((n) => to(n).length),
      [1, 1, 1],
      'exactly one Originate per person',
    );
    const attempts = sim.originates().map((o) => o.variables.CALLOUT_ATTEMPT_ID);
    assert.equal(new Set(attempts).size, attempts.length, 'each attempt originated once');
    b.cli.child.kill('SIGTERM');
    await b.cli.exited;
  });

  test(`SIGKILL of serve during a call whose key comes after the restart (${kind}): the key counts, nobody else is called`, {
    timeout: 120_000,
  }, async () => {
    const sim: Simulator = await startSimulator({
      port: 0,
      dialplan: DIALPLAN,
      dtmfDurationMs: 10,
      scripts: {
        // Answers at once and presses 1 only after 30 s: serve is killed and restarted
        // meanwhile (a new serve takes ~2 s to be ready here, 12 s on a loaded machine).
        '511': { answerAfterMs: 50, dtmf: '1', dtmfAfterMs: 30_000, hangupAfterMs: 35_000 },
        '512': { answerAfterMs: 50, dtmf: '1', dtmfAfterMs: 200, hangupAfterMs: 5_000 },
      },
    });
    cleanups.push(() => sim.close());
    const answered: number[] = [];
    const keys: number[] = [];
    sim.on('event', (event) => {
      if (event.Event === 'OriginateResponse' && event.Reason === '4') answered.push(Date.now());
      if (event.Event === 'UserEvent' && event.UserEvent === 'SwitchboardDTMF')
        keys.push(Date.now());
    });
    const db = testDb(kind);
    cleanups.push(() => db.drop());
    // A lost key waited this out (60 s) and counted as no answer: person 2 was called then.
    const config = writeConfig(db, sim, 60_000);
    const to = (number: string) => sim.originates().filter((o) => o.number === number);

    const a = await serve(config);
    const response = await postCurlStyle(a.url, request(['1:a:511:A:1', '2:b:512:B:1']));
    const { eventid } = (await response.json()) as { eventid: string };
    await until(() => answered.length === 1, 10_000);
    // the answer is stored (the provider call id) before the crash
    await waitHistory(a.url, eventid, (h) => h.result[0]?.numofcall === '1', 10_000);
    a.cli.child.kill('SIGKILL');
    await a.cli.exited;

    const b = await serve(config);
    const readyAt = Date.now();
    const early = () => keys.length > 0 && (keys[0] as number) < readyAt;
    const h = await waitHistory(b.url, eventid, (x) => x.eventstatus === '2' || early(), 60_000);
    assert.ok(
      !early(),
      'the key came after the restart (else the machine is too slow for this test)',
    );
    assert.equal(keys.length, 1);
    assert.deepEqual(
      h.result.map((r) => [r.numofcall, r.status]),
      [
        ['1', '1'], // the key pressed after the restart counts for the attempt of the first process
        ['0', ''], // nobody else is called
      ],
      `history ${JSON.stringify(h.result)}; serve: ${b.cli.stderr().slice(-1000)}`,
    );
    assert.deepEqual([to('511').length, to('512').length], [1, 0]);
    b.cli.child.kill('SIGTERM');
    await b.cli.exited;
  });
}
