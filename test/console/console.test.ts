// The console in a real browser (Debian's Chromium, playwright-core): what a person sees on
// the page served by `serve --simulator`, against the embedded PBX simulator.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { freePort } from '../serve/helpers.ts';
import { startCli } from '../support/cli.ts';
import {
  launchBrowser,
  type ServeProcess,
  screenshot,
  startServe,
  waitForText,
} from './browser.ts';

/** The Barista sample of the seed (docs/callout.md), with real calls (testflg=0). */
const BARISTA_SAMPLE: [string, string][] = [
  ['testflg', '0'],
  ['hostname', 'example.com'],
  ['operator', 'ichiro'],
  ['calltype', '1'],
  ['frequency', '10'],
  ['language', 'ja-jp'],
  ['message', 'Socket timeout after 10 secondsです。'],
  ['headid', '2'],
  ['footid', '1'],
  ['addressee', '1:tarou:810000000000:木村太郎:120'],
  ['addressee', '2:baijyaku:810000000000:中村梅雀:120'],
  ['addressee', '3:kouji:810000000000:加藤浩二:120'],
];

const WAIT = { timeout: 60_000 };

let browser: Awaited<ReturnType<typeof launchBrowser>>;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

describe('console against serve --simulator', () => {
  let serve: ServeProcess;
  let page: Page;
  before(async () => {
    const simulatorPort = await freePort();
    serve = await startServe(
      [
        'simulator:',
        `  listen: 127.0.0.1:${simulatorPort}`,
        '  scripts:',
        // Every person of the sample (one number): answers, presses 2 (negative).
        "    '810000000000': { answerAfterMs: 1500, dtmf: '2', dtmfAfterMs: 1000, hangupAfterMs: 8000 }",
        // The ringer of the announcements: answers, hangs up after the message.
        "    '42300': { answerAfterMs: 200, hangupAfterMs: 1500 }",
        'callout:',
        '  mediaDir: CALLOUT_DIR',
        'announce:',
        '  soundsDir: SOUNDS_DIR',
        '  gapS: 0',
        '',
      ].join('\n'),
      ['--simulator'],
    );
    page = await browser.page();
  });
  after(async () => {
    await page?.close();
    await serve?.stop();
  });

  test('a call of the recording appears, then disappears with its hangup', async () => {
    await page.goto(`${serve.base}/`);
    const row = page.locator('[data-call]').first();
    await row.waitFor(WAIT);
    const id = await row.getAttribute('data-call');
    assert.ok(id !== null && id !== '');
    await screenshot(page, 'calls');
    const text = await page.locator(`[data-call="${id}"]`).innerText();
    assert.match(text, /up|ringing|transferred|setup/);
    await page.locator(`[data-call="${id}"]`).waitFor({ state: 'detached', ...WAIT });
  });

  test("the Barista sample: each person's status changes live", async () => {
    await page.goto(`${serve.base}/#/escalations`);
    const response = await fetch(`${serve.base}/api/v1/call`, {
      method: 'POST',
      body: new URLSearchParams(BARISTA_SAMPLE),
    });
    const body = (await response.json()) as { success: string; eventid: string };
    assert.equal(body.success, 'true');
    const link = page.locator(`[data-eventid="${body.eventid}"] a`);
    await link.waitFor(WAIT);
    assert.match(await page.locator(`[data-eventid="${body.eventid}"]`).innerText(), /木村太郎/);
    await link.click();
    const state = (order: number) => page.getByTestId(`person-${order}-state`);
    await state(1).waitFor(WAIT);
    assert.match(
      await page.locator('.persons').innerText(),
      /木村太郎[\s\S]*中村梅雀[\s\S]*加藤浩二/,
    );
    // Person 1 is dialled, then answers with 2; then person 2 is dialled.
    await waitForText(page, 'person-1-state', 'calling');
    assert.equal(await state(2).innerText(), 'pending');
    await waitForText(page, 'person-1-state', 'negative');
    await waitForText(page, 'person-2-state', 'calling');
    await page.locator('[data-person="1"] .attempt', { hasText: 'key 2' }).waitFor(WAIT);
    await waitForText(page, 'person-2-state', 'negative');
    await screenshot(page, 'escalation');
    await page.goto(`${serve.base}/#/escalations`);
    await page.locator(`[data-eventid="${body.eventid}"]`).waitFor(WAIT);
    await screenshot(page, 'escalations');
  });

  test('a scheduled announcement is in the queue, then in the history once played', async () => {
    await page.goto(`${serve.base}/#/announcements`);
    await page.locator('form.schedule').waitFor(WAIT);
    await page.locator('textarea[name="text"]').fill('本日の会議は十五時からです');
    await page.locator('input[name="description"]').fill('会議のお知らせ');
    // Four seconds from now, in the browser's time zone (what a person types).
    const start = await page.evaluate(() => {
      const d = new Date(Date.now() + 4000);
      const p = (n: number) => String(n).padStart(2, '0');
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
    });
    await page.locator('input[name="start"]').fill(start);
    await page.locator('form.schedule button[type="submit"]').click();
    const queued = page.getByTestId('queue').locator('tr', { hasText: '会議のお知らせ' });
    await queued.waitFor(WAIT);
    await screenshot(page, 'announcements');
    const played = page.getByTestId('history').locator('tr', { hasText: '会議のお知らせ' });
    await played.waitFor(WAIT);
    await queued.waitFor({ state: 'detached', ...WAIT });
    assert.match(await played.innerText(), /played/);
  });

  test('an uploaded audio file is scheduled with the form, in the queue at its start', async () => {
    const wav = join(serve.dir, 'チャイム.wav');
    await promisify(execFile)('sox', [
      '-n',
      '-r',
      '8000',
      '-c',
      '1',
      wav,
      'synth',
      '1',
      'sine',
      '440',
    ]);
    await page.goto(`${serve.base}/#/announcements`);
    await page.locator('form.schedule').waitFor(WAIT);
    await page.getByLabel('audio file').check();
    await page.locator('input[name="audio"]').setInputFiles(wav);
    await page.locator('input[name="description"]').fill('チャイム（一時間後）');
    const start = await page.evaluate(() => {
      const d = new Date(Date.now() + 3_600_000);
      const p = (n: number) => String(n).padStart(2, '0');
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
    });
    await page.locator('input[name="start"]').fill(start);
    await page.locator('form.schedule button[type="submit"]').click();
    const queued = page.getByTestId('queue').locator('tr', { hasText: 'チャイム（一時間後）' });
    await queued.waitFor(WAIT);
    assert.match(await queued.innerText(), /scheduled/);
  });

  test('wake-ups view: a wake-up of the PBX appears live with its answer and reason', async () => {
    await page.goto(`${serve.base}/#/wakeups`);
    await page.getByText('No wake-up yet.').waitFor(WAIT);
    // The PBX asks to wake an account without a device: answered NAK no_device at once.
    const response = await fetch(`${serve.base}/api/incoming-call/`, {
      method: 'POST',
      body: new URLSearchParams({
        sip_user_id: '123456789',
        phonenumber: '0501234567',
        caller_id: '山田花子',
      }),
    });
    assert.match(await response.text(), /NAK/);
    const row = page.locator('tr', { hasText: '123456789' });
    await row.waitFor(WAIT);
    assert.match(await row.innerText(), /NAK\s+no_device/);
    assert.ok(!(await page.content()).includes('token'), 'no token shown');
    // The screenshot of this view (docs/console/wakeups.png) is taken by wakeups.test.ts,
    // with an answered wake-up and its round trip.
  });

  test('usable on a phone-sized screen: nothing wider than the screen', async () => {
    const phone = await browser.page({ width: 390, height: 844 });
    try {
      await phone.goto(`${serve.base}/`);
      await phone.locator('[data-call]').first().waitFor(WAIT);
      const overflow = (await phone.evaluate(
        'document.documentElement.scrollWidth - window.innerWidth',
      )) as number;
      assert.ok(overflow <= 0, `page wider than the screen by ${overflow} px`);
      await screenshot(phone, 'calls-phone');
    } finally {
      await phone.close();
    }
  });
});

describe('console of a serve that needs a login, against a separate simulator', () => {
  const TOKEN = 'console-test-token-0123456789';
  let sim: ReturnType<typeof startCli>;
  let serve: ServeProcess;
  before(async () => {
    const simPort = await freePort();
    sim = startCli(['sim', '--listen', `127.0.0.1:${simPort}`]);
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (sim.stderr().includes('listening')) resolve();
        else if (sim.child.exitCode !== null) reject(new Error(sim.stderr()));
        else setTimeout(check, 20);
      };
      check();
    });
    serve = await startServe(
      [
        'ami:',
        '  servers:',
        `    - { name: pbx, url: 'tcp://switchboard:switchboard@127.0.0.1:${simPort}', reconnectMinMs: 100, reconnectMaxMs: 500 }`,
        'auth:',
        '  allowLoopback: false',
        '  tokens:',
        `    - { name: ops, token: ${TOKEN} }`,
        'announce:',
        '  soundsDir: SOUNDS_DIR',
        '',
      ].join('\n'),
    );
  });
  after(async () => {
    if (sim?.child.exitCode === null) sim.child.kill('SIGKILL');
    await serve?.stop();
  });

  test('login form, then the health view: connected, disconnected when the simulator stops', async () => {
    const page = await browser.page();
    try {
      await page.goto(`${serve.base}/#/health`);
      await page.locator('.login input[name="token"]').fill(TOKEN);
      await page.locator('.login button[type="submit"]').click();
      const ami = page.getByTestId('ami-pbx');
      await waitForText(page, 'ami-pbx', 'connected');
      assert.equal(await ami.innerText(), 'connected');
      // The token is kept for the session only, and never shown.
      const stored = await page.evaluate(() => ({
        session: Object.values(sessionStorage).join(' '),
        local: Object.keys(localStorage).length,
      }));
      assert.match(stored.session, /^Bearer /);
      assert.equal(stored.local, 0);
      assert.ok(!(await page.content()).includes(TOKEN), 'the token is not on the page');
      await screenshot(page, 'health');
      sim.child.kill('SIGTERM');
      await waitForText(page, 'ami-pbx', 'disconnected');
    } finally {
      await page.close();
    }
  });
});
