// The Wake-ups view in a real browser with a wake-up that is answered: `serve` (a process)
// pushes through a fake FCM HTTP v1 (OAuth2 + send, test/push/fakes.ts), whose fake app
// answers with POST /api/call-response/ as the Android app does; the page shows the ACK with
// its round trip, the histogram counts it, and the device's token is nowhere on the page.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { basic, type FakeFcm, fakeApp, postForm, startFakeFcm, tempDir } from '../push/fakes.ts';
import { until } from '../support/until.ts';
import { launchBrowser, type ServeProcess, screenshot, startServe } from './browser.ts';

const WAIT = { timeout: 60_000 };
/** An FCM registration token as the app sends it (never to be shown by the console). */
const TOKEN =
  'dQw4w9WgXcQ:APA91bH-console-wakeup-token-0c5e8f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9';
const SIP = '123456789';

describe('wake-ups view: an ACK with its round trip, through a fake FCM and app', () => {
  const dir = tempDir('sb-console-fcm-');
  let fcm: FakeFcm;
  let serve: ServeProcess;
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  let page: Page;
  before(async () => {
    fcm = await startFakeFcm(dir);
    const config = fcm.config;
    serve = await startServe(
      [
        'push:',
        '  budgetMs: 10000',
        '  users:',
        `    - { username: alice, password: alice-password, sipUserIds: ['${SIP}'] }`,
        '  fcm:',
        `    serviceAccountFile: '${config.serviceAccountFile}'`,
        `    baseUrl: '${config.baseUrl}'`,
        `    tokenUrl: '${config.tokenUrl}'`,
        '',
      ].join('\n'),
    );
    browser = await launchBrowser();
    page = await browser.page();
  });
  after(async () => {
    await page?.close();
    await browser?.close();
    await serve?.stop();
    await fcm?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('register, incoming call, push, call-response: ACK with a round trip, counted', async (t) => {
    // Every API answer the page reads (the SSE stream aside: it never ends) is kept, to check
    // that the token is not even sent to the browser.
    const bodies: Promise<string>[] = [];
    page.on('response', (response) => {
      const url = new URL(response.url());
      if (url.pathname.startsWith('/api/') && url.pathname !== '/api/events') {
        bodies.push(response.text().catch(() => ''));
      }
    });
    await page.goto(`${serve.base}/#/wakeups`);
    await page.getByText('No wake-up yet.').waitFor(WAIT);
    await page.getByText('No device registered.').waitFor(WAIT);

    // The app registers its device with the middleware API (the seed's Basic credentials).
    const registered = await postForm(
      `${serve.base}/api/android-device/`,
      { sip_user_id: SIP, token: TOKEN, app: 'com.voipgrid.vialer' },
      { authorization: basic('alice', 'alice-password') },
    );
    assert.equal(registered.status, 201, registered.body);

    // The app, woken by the push, answers available for the push's unique_key.
    const answers: number[] = [];
    fakeApp(fcm, { onAnswer: (status) => answers.push(status) });
    const incoming = await postForm(`${serve.base}/api/incoming-call/`, {
      sip_user_id: SIP,
      phonenumber: '0501234567',
      caller_id: '山田花子',
      call_id: '1764641000.77',
    });
    assert.equal(incoming.body, 'status=ACK');
    // The app reads its 202 after the PBX got its ACK: wait for it, do not race it.
    await until(() => answers.length > 0, 'the call-response answered');
    assert.deepEqual(answers, [202], 'the call-response was accepted');
    const push = fcm.pushes[0];
    assert.ok(push);
    assert.equal(push.token, TOKEN);
    assert.equal(push.payload.unique_key, '1764641000.77');

    // What a person sees: the answered wake-up, its round trip, and the histogram's count.
    const row = page.locator('tr', { hasText: SIP });
    await row.waitFor(WAIT);
    const cells = await row.locator('td').allInnerTexts();
    assert.match(cells[2] ?? '', /^ACK\s+available$/);
    assert.equal(cells[3], 'fcm');
    assert.equal(cells[4], '1');
    assert.match(cells[5] ?? '', /^\d+ ms$/, 'a round trip, not —');
    t.diagnostic(`round trip shown: ${cells[5]}, held: ${cells[6]}`);
    const counted = async () =>
      (await page.locator('.histogram .bucket .n').allInnerTexts()).map(Number);
    assert.equal(
      (await counted()).reduce((a, b) => a + b, 0),
      1,
      'the histogram counts the one round trip',
    );
    const device = page.locator('tr', { hasText: 'com.voipgrid.vialer' });
    await device.waitFor(WAIT);
    assert.match(await device.innerText(), /fcm\s+com\.voipgrid\.vialer\s+1/);

    // A wake-up of an account without a device beside it: NAK, no round trip, not counted.
    const nak = await postForm(`${serve.base}/api/incoming-call/`, {
      sip_user_id: '987654321',
      phonenumber: '0507654321',
      caller_id: '鈴木一郎',
    });
    assert.equal(nak.body, 'status=NAK');
    const nakRow = page.locator('tr', { hasText: '987654321' });
    await nakRow.waitFor(WAIT);
    const nakCells = await nakRow.locator('td').allInnerTexts();
    assert.match(nakCells[2] ?? '', /^NAK\s+no_device$/);
    assert.equal(nakCells[5], '—');
    assert.equal(
      (await counted()).reduce((a, b) => a + b, 0),
      1,
    );

    // The device's token is nowhere: not in the text, not in the HTML.
    assert.ok(!(await page.innerText('body')).includes(TOKEN), 'token not in the text');
    assert.ok(!(await page.content()).includes(TOKEN), 'token not in the HTML');
    assert.ok(!(await page.content()).includes(TOKEN.slice(0, 11)), 'no part of the token');
    const read = await Promise.all(bodies);
    assert.ok(read.length > 0, 'the page read the APIs');
    assert.ok(!read.some((body) => body.includes(TOKEN)), 'token not sent to the page');
    await screenshot(page, 'wakeups');
  });
});
