// Issue 4's "Done when": kill `serve` (a real process, SIGKILL) in the middle of an escalation,
// start it again on the same database: nobody is dialled twice and no answer is lost, on SQLite
// and PostgreSQL. serve runs from the TypeScript sources (test/serve/cli-entry.ts) with a YAML
// config; its AMI points at a PBX simulator running in this test process, which records every
// Originate and keeps playing the call that was in progress when serve died.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type Simulator, startSimulator } from '../../src/sim/index.ts';
import { type RunningCli, startCli } from '../support/cli.ts';
import {
  calloutDialplan,
  getHistory,
  type Kind,
  postCurlStyle,
  tempDir,
  testDb,
  until,
  waitHistory,
} from './helpers.ts';

const ENTRY = join(import.meta.dirname, '..', 'serve', 'cli-entry.ts');

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

const DIALPLAN = calloutDialplan(10_000);

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
});

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
        // Person 2 answers and takes long to press 1: serve dies during this call.
        '502': { answerAfterMs: 50, dtmf: '1', dtmfAfterMs: 6_000, hangupAfterMs: 8_000 },
        // Person 3 presses 1.
        '503': { answerAfterMs: 50, dtmf: '1', dtmfAfterMs: 200, hangupAfterMs: 5_000 },
      },
    });
    cleanups.push(() => sim.close());
    const db = testDb(kind);
    cleanups.push(() => db.drop());
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
        // The call in progress at the crash counts as unknown (= no answer) 1.5 s after it was placed.
        '  attemptLeaseMs: 1500',
        '',
      ].join('\n'),
    );
    const children: RunningCli[] = [];
    cleanups.push(() => {
      for (const c of children) c.child.kill('SIGKILL');
    });
    const serve = async (): Promise<{ cli: RunningCli; url: string }> => {
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
    };
    const to = (number: string) => sim.originates().filter((o) => o.number === number);

    const a = await serve();
    const response = await postCurlStyle(a.url, [
      ['testflg', '0'],
      ['hostname', 'db1'],
      ['operator', 'zabbix'],
      ['calltype', '1'],
      ['frequency', '1'],
      ['language', 'en'],
      ['message', 'Disk full'],
      ['headid', '2'],
      ['footid', '1'],
      ['addressee', '1:a:501:A:1'],
      ['addressee', '2:b:502:B:1'],
      ['addressee', '3:c:503:C:1'],
    ]);
    const { eventid } = (await response.json()) as { eventid: string };
    assert.ok(eventid, 'event created');
    // Person 1's answer is recorded and person 2's call is in progress (answered, no key yet).
    await waitHistory(
      a.url,
      eventid,
      (h) => h.result[0]?.status === '2' && h.result[1]?.numofcall === '1',
      30_000,
    );
    await until(() => to('502').length === 1, 10_000);
    await new Promise((r) => setTimeout(r, 300)); // answered (after 50 ms), no key before 6 s
    a.cli.child.kill('SIGKILL');
    await a.cli.exited;
    assert.equal(to('503').length, 0, 'person 3 not called before the crash');
    // Restart once the lease of the call in progress ran out: the new process finds person 3
    // due at once, before its AMI connection is up (it must wait for it, not fail the call).
    await new Promise((r) => setTimeout(r, 1_600));

    const b = await serve();
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
}
