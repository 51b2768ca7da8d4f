// Issue 13 §1: "Deleting a feature folder and its one registration line removes it cleanly."
// As far as a test can show it without deleting code: for each feature of the one list
// (FEATURES, src/serve/modules.ts), the list without it (and without the features whose
// plugin depends on it) starts `serve`, passes `config check` and runs `doctor`, none of them
// asking the removed feature anything; and no file outside a feature's folder imports from it
// except the documented ones (docs/architecture.md, "Removing a feature").
import assert from 'node:assert/strict';
import { globSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runDoctor } from '../../src/doctor/index.ts';
import type { Feature } from '../../src/serve/module.ts';
import { FEATURES, featureModules } from '../../src/serve/modules.ts';
import { amiFeatures, checkServiceConfig, createService } from '../../src/serve/service.ts';
import { testConfig } from './helpers.ts';

/** The `dependencies` a feature's plugin declares (its `fastify-plugin` metadata). */
function dependencies(feature: Feature): string[] {
  const plugin = feature.plugin() as unknown as Record<symbol, { dependencies?: string[] }>;
  return plugin[Symbol.for('plugin-meta')]?.dependencies ?? [];
}

/** FEATURES without `name` and every feature depending on it (directly or not). */
function without(name: string): Feature[] {
  const removed = new Set([name]);
  let list = FEATURES.filter((feature) => feature.name !== name);
  for (;;) {
    const next = list.filter((feature) => !dependencies(feature).some((d) => removed.has(d)));
    if (next.length === list.length) return next;
    for (const feature of list) if (!next.includes(feature)) removed.add(feature.name);
    list = next;
  }
}

describe('removing a feature from the feature list', () => {
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('the list names every feature once, each plugin under its own name', () => {
    const names = FEATURES.map((feature) => feature.name);
    assert.deepEqual(names, ['callout', 'announce', 'jenkins', 'push', 'retention', 'console']);
    // Retention runs the rules the remaining features registered (app.store.addRetention).
    assert.deepEqual(
      without('announce').map((f) => f.name),
      ['callout', 'push', 'retention', 'console'],
    );
    assert.deepEqual(
      without('push')
        .map((f) => f.name)
        .includes('push'),
      false,
    );
  });

  for (const removed of FEATURES.map((feature) => feature.name)) {
    test(`without ${removed}: serve starts with the others and without it`, async () => {
      const list = without(removed);
      const config = testConfig();
      const service = createService({ config, modules: featureModules(list) });
      cleanups.push(() => service.stop());
      const { url } = await service.start();
      const app = service.server?.app;
      assert.ok(app);
      assert.equal(app.hasPlugin(removed), false);
      for (const feature of list) assert.ok(app.hasPlugin(feature.name), feature.name);
      assert.equal((await fetch(`${url}/healthz`)).status, 200);
      await service.stop();
    });
  }

  test('without callout: the console answers its escalations empty, 404 for one, and calls', async () => {
    const config = testConfig();
    const service = createService({ config, modules: featureModules(without('callout')) });
    cleanups.push(() => service.stop());
    const { url } = await service.start();
    const get = async (route: string) => {
      const response = await fetch(`${url}${route}`);
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    assert.deepEqual(await get('/api/escalations?limit=5&offset=0'), {
      status: 200,
      body: { total: 0, limit: 5, offset: 0, items: [] },
    });
    const one = await get('/api/escalations/E-1');
    assert.equal(one.status, 404);
    assert.equal(one.body.error, 'not_found');
    const calls = await get('/api/calls');
    assert.equal(calls.status, 200);
    assert.equal(calls.body.total, 0);
    assert.deepEqual(calls.body.servers, []);
    // Announcements and push stay (their features are in the list).
    assert.equal((await get('/api/announcements/history')).status, 200);
    await service.stop();
  });

  test('without announce and push: their console lists are empty, push not enabled', async () => {
    const list = FEATURES.filter(
      (f) => !['announce', 'jenkins', 'push', 'retention'].includes(f.name),
    );
    const config = testConfig();
    config.push.enabled = true;
    const service = createService({ config, modules: featureModules(list) });
    cleanups.push(() => service.stop());
    const { url } = await service.start();
    const get = async (route: string) =>
      (await (await fetch(`${url}${route}`)).json()) as Record<string, unknown>;
    assert.deepEqual((await get('/api/announcements/schedule')).items, []);
    assert.deepEqual(await get('/api/announcements/history'), {
      total: 0,
      limit: 50,
      offset: 0,
      items: [],
    });
    const push = await get('/api/push');
    assert.equal(push.enabled, false);
    assert.deepEqual(push.devices, []);
    await service.stop();
  });

  test("config check: a removed feature's section is not checked", () => {
    // An announce setting its own check refuses (a shell-special character in soundsDir).
    const config = testConfig({}, 'announce:\n  soundsDir: "/tmp/sounds dir*"\n');
    const all = checkServiceConfig(config);
    assert.deepEqual(
      all.map((problem) => problem.key),
      ['announce.soundsDir'],
    );
    assert.deepEqual(checkServiceConfig(config, without('announce')), []);
    // createService checks the features it runs: without announce it builds.
    const service = createService({ config, modules: featureModules(without('announce')) });
    assert.ok(service);
    assert.throws(
      () => createService({ config, modules: featureModules() }),
      /config: announce\.soundsDir: /,
    );
  });

  test('doctor: no line and no AMI permission of a removed feature', async () => {
    const spool = path.join(mkdtempSync(path.join(tmpdir(), 'sb-remove-')), 'absent');
    const config = testConfig(
      { ami: ['tcp://u:p@127.0.0.1:1'] },
      `announce:\n  playback: callfile\n  spoolDir: "${spool}"\n`,
    );
    // Playing by Originate (auto with an AMI server) needs announce's AMI permissions.
    const originate = testConfig({ ami: ['tcp://u:p@127.0.0.1:1'] });
    assert.deepEqual(amiFeatures(originate, 1), ['calls', 'callout', 'announce']);
    assert.deepEqual(amiFeatures(originate, 1, without('announce')), ['calls', 'callout']);
    assert.deepEqual(amiFeatures(originate, 1, without('callout')), ['calls', 'announce']);

    const names = async (features?: readonly Feature[]) =>
      (
        await runDoctor(config, [], {
          timeoutMs: 500,
          amiProbes: [],
          ...(features ? { features } : {}),
        })
      ).map((result) => `${result.ok ? 'ok' : 'FAIL'} ${result.name}`);
    const full = await names();
    assert.ok(full.includes('FAIL spool'), full.join(', '));
    assert.ok(full.includes('ok config'), full.join(', '));
    const rest = await names(without('announce'));
    assert.ok(!rest.some((line) => line.endsWith(' spool')), rest.join(', '));
    assert.ok(rest.includes('ok config'), rest.join(', '));
  });
});

/**
 * Files outside a feature's folder allowed to import from it, and why (keep in step with
 * docs/architecture.md, "Removing a feature").
 */
const EXCEPTIONS: Record<string, RegExp> = {
  // The one feature list.
  'src/serve/modules.ts': /^(announce|callout|console|jenkins|push)\/index\.ts$/,
  // The configuration composes every feature's section.
  'src/config/schema.ts': /^(announce|callout|jenkins|push)\/config\.ts$/,
  // `switchboard jenkins-watch`: the jenkins watcher standalone.
  'src/cli/jenkins-watch.ts': /^jenkins\//,
  // jenkins announces through announce's service (a declared plugin dependency; types only).
  'src/jenkins/index.ts': /^announce\/index\.ts$/,
};

test('no file outside a feature folder imports from it but the documented exceptions', () => {
  const folders = ['announce', 'callout', 'console', 'jenkins', 'push'];
  const found: string[] = [];
  const root = fileURLToPath(new URL('../../', import.meta.url));
  for (const file of globSync('src/**/*.{ts,tsx}', { cwd: root })) {
    const text = readFileSync(path.join(root, file), 'utf8');
    for (const match of text.matchAll(/(?:from\s+|import\s*\(\s*)['"](\.[^'"]+)['"]/g)) {
      const target = path
        .relative('src', path.resolve(path.dirname(file), match[1] ?? ''))
        .split(path.sep)
        .join('/');
      const owner = target.split('/')[0] ?? '';
      if (!folders.includes(owner) || file.startsWith(`src/${owner}/`)) continue;
      if (EXCEPTIONS[file]?.test(target)) continue;
      found.push(`${file} imports ${target}`);
    }
  }
  assert.deepEqual(found, []);
  // Where the features were named before: the service and the doctor ask the list only.
  for (const file of ['src/serve/service.ts', 'src/serve/tools.ts', 'src/doctor/index.ts']) {
    assert.doesNotMatch(
      readFileSync(path.join(root, file), 'utf8'),
      /from '\.\.\/(announce|callout|jenkins|push|console)\//,
      file,
    );
  }
});
