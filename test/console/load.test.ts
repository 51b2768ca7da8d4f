// The console with 1,000 calls in progress and a burst of events: only the rows in view are
// in the page, every call is reachable by scrolling, and the page coalesces the burst into
// far fewer reloads than events (no timing is asserted: counts of rows and requests).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AmiEvent } from '../../src/ami/message.ts';
import { featureModules } from '../../src/serve/modules.ts';
import { createService, type Service } from '../../src/serve/service.ts';
import { type FakePbx, fakePbx, fixtureEvents, testConfig, until } from '../serve/helpers.ts';
import { launchBrowser, waitForText } from './browser.ts';

const CALLS = 1000;
const WAIT = { timeout: 120_000 };

/** The fixture's events with identifiers made unique for copy `i`. */
function copy(events: AmiEvent[], i: number): AmiEvent[] {
  return JSON.parse(
    JSON.stringify(events).replaceAll('195176c06ab8', `c${String(i).padStart(11, '0')}`),
  ) as AmiEvent[];
}

describe('console with 1,000 calls in progress', () => {
  let pbx: FakePbx;
  let service: Service;
  let url: string;
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  const base = fixtureEvents('simple/ab_success_a_hangup');
  const hangupAt = base.findIndex((e) => e.Event === 'Hangup');
  before(async () => {
    pbx = await fakePbx();
    const config = testConfig({ ami: [pbx.url] });
    config.announce.enabled = false;
    service = createService({ config, modules: featureModules() });
    ({ url } = await service.start());
    await until(() => service.context?.ami.clients[0]?.connected === true, 'AMI connected');
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await service?.stop();
    await pbx?.close();
  });

  test('renders only the visible rows; a burst of hangups is coalesced', async () => {
    for (let i = 0; i < CALLS; i++) pbx.send(copy(base.slice(0, hangupAt), i));
    await until(
      () => (service.context?.ami.engines.values().next().value?.channels.size ?? 0) >= CALLS * 2,
      'the engine follows every call',
      60_000,
    );
    const page = await browser.page();
    // Requests of /api/calls the page made, from its own resource timing (in step with what
    // it shows, unlike the browser's request events, which may arrive later).
    const reloads = () =>
      page.evaluate(
        () =>
          (
            globalThis as unknown as {
              performance: { getEntriesByType(type: string): { name: string }[] };
            }
          ).performance
            .getEntriesByType('resource')
            .filter((entry) => new URL(entry.name).pathname === '/api/calls').length,
      );
    await page.goto(`${url}/`);
    await waitForText(page, 'calls-total', `${CALLS} in progress`, WAIT.timeout);
    const rows = await page.locator('[data-call]').count();
    assert.ok(rows > 0 && rows < 60, `only the visible rows are rendered (${rows})`);
    // The last call is reachable by scrolling.
    await page.locator('.calls .scroll').evaluate((el) => {
      el.scrollTop = el.scrollHeight;
    });
    await page.locator(`[data-call^="c${String(CALLS - 1).padStart(11, '0')}"]`).waitFor(WAIT);

    // A burst: half of the calls hang up (thousands of AMI events, 500 hangups).
    const before = await reloads();
    for (let i = 0; i < CALLS / 2; i++) pbx.send(copy(base.slice(hangupAt), i));
    await waitForText(page, 'calls-total', `${CALLS / 2} in progress`, WAIT.timeout);
    const during = (await reloads()) - before;
    assert.ok(during >= 1, 'the page reloaded');
    assert.ok(during < CALLS / 2 / 5, `coalesced: ${during} reloads for ${CALLS / 2} hangups`);
    await page.close();
  });
});
