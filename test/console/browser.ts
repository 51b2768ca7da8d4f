// Helpers of the console's browser tests: Debian's Chromium driven by playwright-core (a
// fresh profile each time, nothing from the network), and `serve` started as a process.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { freePort } from '../serve/helpers.ts';
import { type RunningCli, startCli } from '../support/cli.ts';

/** The browser (as scripts/preflight.js checks it): Debian's package, or `SWITCHBOARD_TEST_CHROMIUM`. */
export const CHROMIUM = process.env.SWITCHBOARD_TEST_CHROMIUM || '/usr/bin/chromium';

/** A headless Chromium with a fresh user-data-dir; `close()` removes the profile. */
export async function launchBrowser(): Promise<{
  context: BrowserContext;
  page: (viewport?: { width: number; height: number }) => Promise<Page>;
  close(): Promise<void>;
}> {
  const profile = mkdtempSync(join(tmpdir(), 'sb-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-gpu',
      '--disable-component-update',
      '--no-first-run',
    ],
    viewport: { width: 1280, height: 800 },
  });
  return {
    context,
    async page(viewport) {
      const page = await context.newPage();
      if (viewport !== undefined) await page.setViewportSize(viewport);
      return page;
    },
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A `serve` process on free ports with `yaml` as its configuration. */
export interface ServeProcess {
  base: string;
  cli: RunningCli;
  dir: string;
  stop(): Promise<void>;
}

/** Starts `switchboard serve --config <yaml> ...args`; resolves once `/healthz` answers. */
export async function startServe(yaml: string, args: string[] = []): Promise<ServeProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'sb-console-'));
  const port = await freePort();
  const config = join(dir, 'switchboard.yaml');
  writeFileSync(
    config,
    `http:\n  listen: 127.0.0.1:${port}\ndatabase:\n  url: ${join(dir, 'switchboard.db')}\nlog:\n  level: warn\n${yaml
      .replaceAll('SOUNDS_DIR', join(dir, 'sounds'))
      .replaceAll('CALLOUT_DIR', join(dir, 'callout'))}`,
  );
  const cli = startCli(['serve', '--config', config, ...args]);
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (cli.child.exitCode !== null) throw new Error(`serve exited: ${cli.stderr()}`);
    const ok = await fetch(`${base}/healthz`)
      .then((r) => r.status === 200)
      .catch(() => false);
    if (ok) break;
    if (Date.now() > deadline) {
      cli.child.kill('SIGKILL');
      throw new Error(`serve did not start: ${cli.stderr()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    base,
    cli,
    dir,
    async stop() {
      if (cli.child.exitCode === null) {
        cli.child.kill('SIGTERM');
        await cli.exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Where screenshots go when `SWITCHBOARD_CONSOLE_SCREENSHOTS` names a folder (docs/console). */
export async function screenshot(page: Page, name: string): Promise<void> {
  const dir = process.env.SWITCHBOARD_CONSOLE_SCREENSHOTS;
  if (dir === undefined || dir === '') return;
  await page.screenshot({ path: join(dir, `${name}.png`) });
}

/** Waits until the element with `data-testid` shows exactly `text` (no time assertion: the wait is bounded only so that a broken page fails). */
export async function waitForText(
  page: Page,
  testId: string,
  text: string,
  timeoutMs = 60_000,
): Promise<void> {
  // A function, not a string: the page's Content-Security-Policy forbids eval.
  await page.waitForFunction(
    ([selector, wanted]) =>
      (globalThis as unknown as DomLike).document.querySelector(selector)?.textContent === wanted,
    [`[data-testid="${testId}"]`, text] as const,
    { timeout: timeoutMs },
  );
}

/** The little of the DOM the predicates above use (the tests are type-checked without DOM types). */
interface DomLike {
  document: { querySelector(selector: string): { textContent: string | null } | null };
}
