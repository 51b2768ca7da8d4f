// Issue 4, item 1 (the benchmark's 20,000 calls instead of 15,000): the benchmark's workload on
// a small scale while the AMI stream stalls again and again (what the PBX sends held back
// 1.2 s at a time by a proxy, as a loaded process reads it late), checked with the
// benchmark's own exact check: every attempt row originated once,
// nobody called more than `frequency` times or after answering, 15 calls per escalation.
// (The first guess, keys lost to the simulated dialplan's 1 s Read wait, did not reproduce
// here; the cause was Originate responses later than the AMI action timeout:
// originate-timeout.test.ts.)
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Kysely } from 'kysely';
import { startSimulator } from '../../src/sim/index.ts';
import {
  BENCH_CALLS_PER_EVENT,
  benchRequest,
  benchSimulatorOptions,
  checkBenchCalls,
} from '../support/callout-workload.ts';
import { startHoldingProxy } from '../support/proxy.ts';
import { calloutConfig, startServe, testDb, until, waitHistory } from './helpers.ts';

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

for (const kind of ['sqlite', 'postgres'] as const) {
  test(`benchmark workload under event-loop stalls (${kind}): exact call counts, nobody dialled twice`, {
    timeout: 120_000,
  }, async () => {
    const sim = await startSimulator(benchSimulatorOptions());
    cleanups.push(() => sim.close());
    const simUrl = new URL(sim.url());
    const proxy = await startHoldingProxy(Number(simUrl.port));
    cleanups.push(() => proxy.close());
    simUrl.port = String(proxy.port);
    const db = testDb(kind);
    cleanups.push(() => db.drop());
    const config = calloutConfig(db, '', simUrl.toString());
    config.callout.maxAddressees = 10;
    const { service, url } = await startServe(config, db);
    cleanups.push(() => service.stop());
    await until(() => service.context?.ami.clients[0]?.connected === true);
    const events = 10;
    const ids: string[] = [];
    for (let e = 0; e < events; e += 1) {
      const response = await fetch(`${url}/api/v1/call`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(benchRequest()).toString(),
      });
      ids.push(((await response.json()) as { eventid: string }).eventid);
    }
    // Stall the AMI stream (as 1,000 escalations on 2 cores do) for 1.2 s every 1.3 s, 4 s long.
    const stopAt = Date.now() + 4_000;
    proxy.hold(1_200);
    const stall = setInterval(() => {
      if (Date.now() > stopAt) return clearInterval(stall);
      proxy.hold(1_200);
    }, 1_300);
    cleanups.push(async () => clearInterval(stall));
    for (const id of ids) await waitHistory(url, id, (h) => h.eventstatus === '2', 90_000);
    clearInterval(stall);
    const kysely = service.context?.db.db as Kysely<unknown>;
    await checkBenchCalls(kysely, sim.originates(), events);
    assert.equal(sim.originates().length, events * BENCH_CALLS_PER_EVENT);
  });
}
