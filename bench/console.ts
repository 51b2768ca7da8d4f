/**
 * Console benchmark (issue 15): `GET /api/calls` with 1,000 calls in progress (p50/p99 and
 * the answer's size), and what the page costs at 100 call events/s: how many reloads of
 * `/api/calls` it makes in 10 s of a steady stream (coalesced), measured in Chromium.
 */
import { chromium } from 'playwright-core';
import type { AmiEvent } from '../src/ami/message.ts';
import { featureModules } from '../src/serve/modules.ts';
import { createService } from '../src/serve/service.ts';
import { fakePbx, fixtureEvents, testConfig, until } from '../test/serve/helpers.ts';
import { type BenchResult, percentile } from './table.ts';

const CALLS = 1000;

function copy(events: AmiEvent[], i: number): AmiEvent[] {
  return JSON.parse(
    JSON.stringify(events).replaceAll('195176c06ab8', `c${String(i).padStart(11, '0')}`),
  ) as AmiEvent[];
}

/** Runs the console benchmarks. */
export async function benchConsole(): Promise<BenchResult[]> {
  const pbx = await fakePbx();
  const config = testConfig({ ami: [pbx.url] });
  config.announce.enabled = false;
  const service = createService({ config, modules: featureModules() });
  const { url } = await service.start();
  const results: BenchResult[] = [];
  try {
    await until(() => service.context?.ami.clients[0]?.connected === true, 'AMI connected');
    const base = fixtureEvents('simple/ab_success_a_hangup');
    const hangupAt = base.findIndex((e) => e.Event === 'Hangup');
    for (let i = 0; i < CALLS; i++) pbx.send(copy(base.slice(0, hangupAt), i));
    const engine = () => service.context?.ami.engines.values().next().value;
    await until(() => (engine()?.channels.size ?? 0) >= CALLS * 2, 'calls up', 60_000);
    const times: number[] = [];
    let bytes = 0;
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      const text = await (await fetch(`${url}/api/calls`)).text();
      times.push(performance.now() - t0);
      bytes = text.length;
    }
    times.sort((a, b) => a - b);
    const note = `${CALLS} calls (${engine()?.channels.size} channels), 200 requests, ${Math.round(bytes / 1024)} KiB JSON`;
    results.push({
      name: 'console GET /api/calls p50',
      value: percentile(times, 50),
      unit: 'ms',
      note,
    });
    results.push({
      name: 'console GET /api/calls p99',
      value: percentile(times, 99),
      unit: 'ms',
      note,
    });

    // The page under 100 call events/s for 10 s: calls hang up and new ones start.
    const browser = await chromium.launch({
      executablePath: process.env.SWITCHBOARD_TEST_CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      let reloads = 0;
      page.on('request', (request) => {
        if (new URL(request.url()).pathname === '/api/calls') reloads += 1;
      });
      await page.goto(`${url}/`);
      await page.locator('[data-call]').first().waitFor({ timeout: 60_000 });
      const before = reloads;
      const events0 =
        (
          await service.context?.metrics.registry
            .getSingleMetric('switchboard_call_events_total')
            ?.get()
        )?.values.reduce((n, v) => n + v.value, 0) ?? 0;
      let next = CALLS;
      const t0 = performance.now();
      for (let tick = 0; tick < 100; tick++) {
        // Each tick: four calls hang up, four start (about 100 call events/s).
        for (let k = 0; k < 4; k++) {
          pbx.send(copy(base.slice(hangupAt), next - CALLS));
          pbx.send(copy(base.slice(0, hangupAt), next));
          next += 1;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const seconds = (performance.now() - t0) / 1000;
      const events1 =
        (
          await service.context?.metrics.registry
            .getSingleMetric('switchboard_call_events_total')
            ?.get()
        )?.values.reduce((n, v) => n + v.value, 0) ?? 0;
      const rows = await page.locator('[data-call]').count();
      results.push({
        name: 'console page reloads of /api/calls under a call-event stream',
        value: (reloads - before) / seconds,
        unit: 'reloads/s',
        note: `${Math.round((events1 - events0) / seconds)} call events/s for ${seconds.toFixed(1)} s with ${CALLS} calls; ${rows} rows in the page`,
      });
    } finally {
      await browser.close();
    }
  } finally {
    await service.stop();
    await pbx.close();
  }
  return results;
}
