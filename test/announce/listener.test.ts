/**
 * Gong's port (issue 12 §2): the Gong listener on `announce.listen` (default
 * `127.0.0.1:9600`; tests use free ports) serves Gong's API and nothing else, with the same
 * access rule; a busy address refuses the start with one line naming the key (in process and
 * as a real `switchboard serve`); `''` turns it off. And call files without their spool
 * directory: `auto` without an AMI server starts (one warning line, `/readyz` not ready,
 * 503 `playback_unavailable` naming the problem, nothing stored), holds queued messages
 * until the directory exists, then places them one slot apart; the embedded default runs as
 * a real process on a machine without Asterisk.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { announceServiceModule } from '../../src/announce/index.ts';
import { loadConfig } from '../../src/config/load.ts';
import { checkServiceConfig, createService } from '../../src/serve/service.ts';
import { testConfig } from '../serve/helpers.ts';
import { startCli } from '../support/cli.ts';
import {
  announceYaml,
  listMessages,
  localStart,
  postForm,
  postMultipart,
  sine,
  startAnnounceServer,
  tempDir,
  until,
} from './helpers.ts';

const ENTRY = join(import.meta.dirname, '..', 'serve', 'cli-entry.ts');
const TOKEN = 'gong-listener-token-0123456789';

async function busyPort(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/** A logger writing JSON lines into `lines`. */
function capturingLogger(lines: string[]) {
  return pino(
    { level: 'info' },
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    }),
  );
}

test('the default announce.listen is Gong’s port 9600 on loopback', () => {
  assert.equal(loadConfig({ text: '', env: {} }).announce.listen, '127.0.0.1:9600');
  assert.equal(
    loadConfig({ text: '', env: { SWITCHBOARD_ANNOUNCE_LISTEN: '' } }).announce.listen,
    '',
  );
});

describe('the Gong listener', () => {
  test('serves only Gong’s API, in its error shape; the main server keeps it too', async () => {
    const dir = tempDir('sb-listener-');
    mkdirSync(join(dir, 'spool', 'outgoing'), { recursive: true });
    const s = await startAnnounceServer({ yaml: announceYaml(dir) });
    try {
      const gong = s.module.listener;
      assert.ok(gong);
      assert.notEqual(gong.url, s.url);
      const list = await fetch(`${gong.url}/messages`);
      assert.equal(list.status, 200);
      assert.deepEqual(await list.json(), { messages: [] });
      for (const path of ['/healthz', '/readyz', '/metrics', '/docs/json', '/api/v1/call']) {
        const res = await fetch(`${gong.url}${path}`);
        assert.equal(res.status, 404, path);
        assert.deepEqual(await res.json(), {
          error: `no route GET ${path} (this port serves only the Gong API)`,
          code: 'not_found',
        });
      }
      // Form-encoded (xgong-jenkins), multipart and JSON bodies, as on the main server.
      const later = localStart(Date.now() + 3_600_000);
      const tts = await postForm(`${gong.url}/messages/tts/add`, { text: 'Hi.', start: later });
      assert.equal(tts.status, 200, JSON.stringify(tts.body));
      const upload = await postMultipart(
        `${gong.url}/messages/add`,
        { start: later },
        { name: 'a.wav', path: sine(dir, 'wav') },
      );
      assert.equal(upload.status, 200, JSON.stringify(upload.body));
      const json = await fetch(`${gong.url}/messages/tts/add`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text: 'Json.', start: later }),
      });
      assert.equal(json.status, 200);
      // One store behind both listeners.
      assert.equal((await listMessages(s.url)).length, 3);
      assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
    } finally {
      await s.close();
    }
    // Closed with the service.
    await assert.rejects(fetch(`${s.module.listener?.url}/messages`));
  });

  test('the same access rule as the main server', async () => {
    const dir = tempDir('sb-listener-auth-');
    mkdirSync(join(dir, 'spool', 'outgoing'), { recursive: true });
    const s = await startAnnounceServer({
      yaml: `${announceYaml(dir)}auth:\n  allowLoopback: false\n  tokens:\n    - {name: jenkins, token: ${TOKEN}, modules: [announce]}\n`,
    });
    try {
      const gong = s.module.listener;
      assert.ok(gong);
      for (const base of [s.url, gong.url]) {
        const refused = await fetch(`${base}/messages`);
        assert.equal(refused.status, 401, base);
        const body = (await refused.json()) as { error: string; code: string };
        assert.equal(typeof body.error, 'string');
        const allowed = await fetch(`${base}/messages`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        assert.equal(allowed.status, 200, base);
      }
    } finally {
      await s.close();
    }
  });

  test("a busy address refuses the start with one line naming announce.listen; '' turns it off", async () => {
    const dir = tempDir('sb-listener-busy-');
    mkdirSync(join(dir, 'spool', 'outgoing'), { recursive: true });
    const busy = await busyPort();
    try {
      const config = testConfig({}, announceYaml(dir, `  listen: 127.0.0.1:${busy.port}\n`));
      config.push.enabled = false;
      const service = createService({ config, modules: [announceServiceModule()] });
      await assert.rejects(service.start(), (error: Error) => {
        assert.equal(
          error.message,
          `announce.listen: 127.0.0.1:${busy.port} is already in use (is Gong itself still running there?); set announce.listen to another HOST:PORT, or '' to serve the Gong API on http.listen only`,
        );
        return true;
      });
      const off = await startAnnounceServer({ yaml: announceYaml(dir, "  listen: ''\n") });
      try {
        assert.equal(off.module.listener, undefined);
        assert.equal((await fetch(`${off.url}/messages`)).status, 200);
      } finally {
        await off.close();
      }
    } finally {
      busy.server.close();
    }
  });

  test('switchboard serve with a busy announce.listen: exit 1, one switchboard: line', async () => {
    const dir = tempDir('sb-listener-cli-');
    const busy = await busyPort();
    const saved = process.env.SWITCHBOARD_ANNOUNCE_LISTEN;
    process.env.SWITCHBOARD_ANNOUNCE_LISTEN = `127.0.0.1:${busy.port}`;
    let cli: ReturnType<typeof startCli>;
    try {
      cli = startCli(
        [
          'serve',
          '--listen',
          '127.0.0.1:0',
          '--database',
          join(dir, 'db.sqlite'),
          '--config',
          writeYaml(dir),
        ],
        [process.execPath, ENTRY],
      );
    } finally {
      if (saved === undefined) delete process.env.SWITCHBOARD_ANNOUNCE_LISTEN;
      else process.env.SWITCHBOARD_ANNOUNCE_LISTEN = saved;
    }
    const timer = setTimeout(() => cli.child.kill('SIGKILL'), 60_000);
    const code = await cli.exited;
    clearTimeout(timer);
    busy.server.close();
    assert.equal(code, 1, cli.stderr());
    const lines = cli
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('switchboard:'));
    assert.deepEqual(lines, [
      `switchboard: cannot start: announce.listen: 127.0.0.1:${busy.port} is already in use (is Gong itself still running there?); set announce.listen to another HOST:PORT, or '' to serve the Gong API on http.listen only`,
    ]);
  });

  test('config check: announce.listen equal to http.listen is a problem naming the key', () => {
    const problems = checkServiceConfig(
      loadConfig({
        text: 'http: {listen: "127.0.0.1:9600"}\nannounce: {listen: "127.0.0.1:9600"}\n',
        env: {},
      }),
    );
    assert.deepEqual(
      problems.map((p) => p.key),
      ['announce.listen'],
    );
  });
});

function writeYaml(dir: string): string {
  const file = join(dir, 'switchboard.yaml');
  writeFileSync(
    file,
    `log:\n  level: warn\n${announceYaml(dir)}callout:\n  mediaDir: ${join(dir, 'callout')}\n`,
  );
  mkdirSync(join(dir, 'spool', 'outgoing'), { recursive: true });
  return file;
}

describe('call files without their spool directory (announce.playback: auto, no AMI server)', () => {
  const stops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const stop of stops) await stop();
  });

  test('starts; one warning line; /readyz not ready; adds are 503 naming the problem, nothing stored', async () => {
    const dir = tempDir('sb-nospool-');
    const spool = join(dir, 'spool', 'outgoing');
    const lines: string[] = [];
    const config = testConfig({}, announceYaml(dir));
    config.push.enabled = false;
    config.log.level = 'info';
    const module = announceServiceModule({ pollMs: 50 });
    const service = createService({ config, modules: [module], logger: capturingLogger(lines) });
    const { url } = await service.start();
    stops.push(() => service.stop());
    const warnings = lines.filter((l) => l.includes('announce.spoolDir'));
    assert.equal(warnings.length, 1, lines.join('\n'));
    const warning = JSON.parse(warnings[0] ?? '{}') as { level: number; msg: string };
    assert.equal(warning.level, 40);
    assert.equal(
      warning.msg,
      `announce: announce.spoolDir: ${spool} does not exist (announce.playback is auto and no AMI server is configured (ami.servers), so messages are call files); the Gong API answers 503 until it exists or ami.servers is set`,
    );
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 503);
    const readiness = (await ready.json()) as {
      failed: string[];
      checks: Record<string, { detail?: string }>;
    };
    assert.deepEqual(readiness.failed, ['announce']);
    assert.match(
      readiness.checks.announce?.detail ?? '',
      /^announce\.spoolDir: \S+ does not exist/,
    );
    const expected = {
      error: `announcements cannot be placed: announce.spoolDir: ${spool} does not exist (announce.playback is auto and no AMI server is configured (ami.servers), so messages are call files)`,
      code: 'playback_unavailable',
    };
    const tts = await postForm(`${url}/messages/tts/add`, { text: 'Lost?' });
    assert.equal(tts.status, 503);
    assert.deepEqual(tts.body, expected);
    const upload = await postMultipart(
      `${url}/messages/add`,
      {},
      { name: 'a.wav', path: sine(dir, 'wav') },
    );
    assert.equal(upload.status, 503);
    assert.deepEqual(upload.body, expected);
    // The Gong listener answers the same.
    const gong = module.listener;
    assert.ok(gong);
    assert.equal((await postForm(`${gong.url}/messages/tts/add`, { text: 'Lost?' })).status, 503);
    assert.deepEqual(await listMessages(url, true), []);
    assert.equal(
      existsSync(join(dir, 'sounds')) &&
        readdirSync(join(dir, 'sounds')).some((f) => f.startsWith('announce-')),
      false,
    );
    // The directory appears: accepted and placed.
    mkdirSync(spool, { recursive: true });
    assert.equal((await fetch(`${url}/readyz`)).status, 200);
    const ok = await postForm(`${url}/messages/tts/add`, { text: 'Now.' });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    await until(
      () => (existsSync(join(spool, `announce-${ok.body.id}.call`)) ? true : undefined),
      30_000,
    );
  });

  test('messages queued before the directory went away are held, then placed one slot apart', async () => {
    const dir = tempDir('sb-nospool-hold-');
    const spool = join(dir, 'spool', 'outgoing');
    mkdirSync(spool, { recursive: true });
    const lines: string[] = [];
    const config = testConfig({}, announceYaml(dir));
    config.push.enabled = false;
    config.log.level = 'info';
    const module = announceServiceModule({ pollMs: 50 });
    const service = createService({ config, modules: [module], logger: capturingLogger(lines) });
    const { url } = await service.start();
    stops.push(() => service.stop());
    const later = localStart(Date.now() + 3_600_000);
    const a = await postForm(`${url}/messages/tts/add`, { text: 'First.', start: later });
    const b = await postForm(`${url}/messages/tts/add`, { text: 'Second.', start: later });
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    rmSync(spool, { recursive: true });
    const repo = module.instance?.repository;
    assert.ok(repo);
    // Overdue by a minute (held that long): the first is placed at once when the directory
    // is back, the second must still wait for its slot after it.
    const overdue = Date.now() - 60_000;
    await repo.db
      .updateTable('announce_message')
      .set({ requested_at: overdue, due_at: overdue })
      .where('public_id', 'in', [a.body.id as string, b.body.id as string])
      .execute();
    await module.instance?.scheduler.recompute();
    module.instance?.scheduler.poke();
    await until(() => (lines.some((l) => l.includes('due messages held')) ? true : undefined));
    const held = await listMessages(url, true);
    assert.deepEqual(
      held.map((m) => m.status),
      ['scheduled', 'scheduled'],
    );
    mkdirSync(spool, { recursive: true });
    const first = join(spool, `announce-${a.body.id}.call`);
    const second = join(spool, `announce-${b.body.id}.call`);
    await until(() => (existsSync(first) ? true : undefined), 30_000);
    await until(() => (existsSync(second) ? true : undefined), 30_000);
    const placedA = await repo.find(a.body.id as string);
    assert.ok(placedA?.finished_at);
    // Placed late, the first rings from its placement: the second waits a full slot after it
    // (duration + ringTimeS 2 s + gapS 1 s), not after its overdue start.
    const slotMs = Number(placedA.duration_ms) + 3000;
    assert.ok(
      statSync(second).mtimeMs >= Math.floor((Number(placedA.finished_at) + slotMs) / 1000) * 1000,
      `second at ${statSync(second).mtimeMs}, first placed ${placedA.finished_at} + ${slotMs}`,
    );
  });

  test('switchboard serve on the embedded defaults without Asterisk: runs, /readyz says why', async () => {
    const dir = tempDir('sb-nospool-cli-');
    const probe = await busyPort();
    const port = probe.port;
    await new Promise<void>((resolve) => probe.server.close(() => resolve()));
    const env = {
      SWITCHBOARD_DATABASE_URL: join(dir, 'db.sqlite'),
      SWITCHBOARD_ANNOUNCE_SOUNDS_DIR: join(dir, 'sounds'),
      SWITCHBOARD_ANNOUNCE_SPOOL_DIR: join(dir, 'no-asterisk', 'outgoing'),
      SWITCHBOARD_CALLOUT_MEDIA_DIR: join(dir, 'callout'),
      SWITCHBOARD_HTTP_LISTEN: `127.0.0.1:${port}`,
    };
    const saved = { ...process.env };
    Object.assign(process.env, env);
    let cli: ReturnType<typeof startCli>;
    try {
      cli = startCli(['serve'], [process.execPath, ENTRY]);
    } finally {
      for (const key of Object.keys(env)) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    }
    stops.push(async () => {
      cli.child.kill('SIGKILL');
    });
    const base = `http://127.0.0.1:${port}`;
    const readyz = await until(async () => {
      const res = await fetch(`${base}/readyz`).catch(() => undefined);
      return res
        ? { status: res.status, body: (await res.json()) as { failed: string[] } }
        : undefined;
    }, 60_000);
    assert.equal(readyz.status, 503);
    assert.ok(readyz.body.failed.includes('announce'), JSON.stringify(readyz.body));
    const add = await postForm(`${base}/messages/tts/add`, { text: 'Anyone?' });
    assert.equal(add.status, 503);
    assert.equal(add.body.code, 'playback_unavailable');
    const warnings = cli
      .stdout()
      .split('\n')
      .filter((l) => l.includes('announce.spoolDir') && l.includes('"level":40'));
    assert.equal(warnings.length, 1, cli.stdout());
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 0, cli.stderr());
  });
});
