/**
 * Hostile input to Gong's API, end to end against `serve` (real sox, real SQLite, the PBX
 * simulator for Originate, a real spool directory for call files):
 *
 * - playlist uploads (`.m3u`/`.pls` with a shell-command entry, an internal URL and a server
 *   file) are 400 `unsupported audio format`: no command runs (marker file), nothing is
 *   fetched (a local HTTP server counts requests), nothing is stored or dialled;
 * - uploads are read by their content: a WAV named `.m3u`, MP3/Ogg/FLAC/AIFF named `x.bin`;
 * - an hour of silence is 400 `too_long`; a full queue is 409 `too_many_pending`;
 * - extensions with `@trunk`, `&`, `/`, `,`, a newline, or not in the allow-list are 400 and
 *   reach neither Asterisk nor the spool directory;
 * - call-file playback without a spool directory refuses to start (one line naming
 *   `announce.spoolDir`, also as a real `switchboard serve` process), and `/readyz` follows
 *   the directory.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { announceServiceModule } from '../../src/announce/index.ts';
import { createService } from '../../src/serve/service.ts';
import type { Simulator } from '../../src/sim/index.ts';
import { testConfig } from '../serve/helpers.ts';
import { startCli } from '../support/cli.ts';
import {
  type AnnounceServer,
  announceYaml,
  dropSchema,
  listMessages,
  localStart,
  PG_URL,
  postForm,
  postMultipart,
  sine,
  soxi,
  startAnnounceServer,
  startRingerSim,
  tempDir,
  until,
} from './helpers.ts';

const ENTRY = join(import.meta.dirname, '..', 'serve', 'cli-entry.ts');

/** Files of a directory (none when it does not exist). */
function files(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** A local HTTP server standing for an internal host; records every request. */
async function internalHost(): Promise<{ url: string; requests: string[]; server: Server }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    res.end('secret');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    requests,
    server,
  };
}

/** Hostile extensions and why each is refused. */
const HOSTILE_EXTENSIONS: Array<[string, string]> = [
  ['+31900123456@pstn-trunk', 'another endpoint through a trunk'],
  ['42300@pstn-trunk', 'the ringer number on a trunk'],
  ['42300&PJSIP/31900123456', 'a parallel dial'],
  ['PJSIP/31900123456', 'a channel technology'],
  ['42300/31900123456', 'a slash'],
  ['42300,1', 'an option'],
  ['42300\nApplication: System', 'a newline'],
  ['99999', 'not in the allow-list'],
  ['4230', 'too short for _423XX'],
];

describe('hostile uploads and extensions (Originate playback, PBX simulator)', () => {
  const dir = tempDir('sb-hostile-');
  let sim: Simulator;
  let s: AnnounceServer;
  let host: Awaited<ReturnType<typeof internalHost>>;
  const uploads = join(dir, 'sounds', '.uploads');

  before(async () => {
    host = await internalHost();
    sim = await startRingerSim();
    s = await startAnnounceServer({ ami: [sim.url()], yaml: announceYaml(dir) });
    await until(() => (s.service.context?.ami.clients[0]?.connected ? true : undefined));
  });
  after(async () => {
    await s.close();
    await sim.close();
    await new Promise((resolve) => host.server.close(resolve));
  });

  for (const name of ['alarm.m3u', 'alarm.pls']) {
    test(`${name} with a shell command, an internal URL and a server file: 400, nothing runs`, async () => {
      const marker = join(tmpdir(), `sb-pwned-${randomBytes(6).toString('hex')}`);
      const serverFile = sine(dir, 'wav');
      const entries = [`http://x"; touch ${marker}; echo "`, `${host.url}/internal`, serverFile];
      const content = name.endsWith('.pls')
        ? `[playlist]\n${entries.map((e, i) => `File${i + 1}=${e}`).join('\n')}\nNumberOfEntries=3\n`
        : `${entries.join('\n')}\n`;
      const originates = sim.originates().length;
      const converted = () => files(join(dir, 'sounds')).filter((f) => f.endsWith('.wav'));
      const sounds = converted().length;
      const res = await postMultipart(
        `${s.url}/messages/add`,
        { description: 'playlist' },
        { name, content: Buffer.from(content) },
      );
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.code, 'unsupported_audio_format');
      assert.match(String(res.body.error), /^audio: unsupported audio format/);
      assert.equal(existsSync(marker), false, 'the shell command of the playlist ran');
      assert.deepEqual(host.requests, [], 'the internal URL was fetched');
      assert.equal(sim.originates().length, originates);
      assert.deepEqual(
        await listMessages(s.url, true).then((m) => m.filter((x) => x.description === 'playlist')),
        [],
      );
      assert.deepEqual(files(uploads), [], 'an upload was left behind');
      assert.equal(converted().length, sounds);
    });
  }

  test('a WAV named .m3u is accepted and converted as WAV', async () => {
    const res = await postMultipart(
      `${s.url}/messages/add`,
      { start: localStart(Date.now() + 3_600_000), description: 'wav as m3u' },
      { name: 'a.m3u', path: sine(dir, 'wav') },
    );
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const row = await s.module.instance?.repository.find(res.body.id as string);
    assert.ok(row);
    const info = soxi(row.audio_path);
    assert.deepEqual([info.rate, info.channels, info.bits], [8000, 1, 16]);
    assert.ok(Math.abs(info.durationS - 1.5) < 0.05, `duration ${info.durationS}`);
    assert.equal(
      (await fetch(`${s.url}/messages/${row.public_id}`, { method: 'DELETE' })).status,
      200,
    );
  });

  test('MP3, Ogg, FLAC and AIFF uploads named x.bin are detected and converted', async () => {
    for (const format of ['mp3', 'ogg', 'flac', 'aiff']) {
      const res = await postMultipart(
        `${s.url}/messages/add`,
        { start: localStart(Date.now() + 3_600_000), description: `bin ${format}` },
        { name: 'x.bin', path: sine(dir, format) },
      );
      assert.equal(res.status, 200, `${format}: ${JSON.stringify(res.body)}`);
      const row = await s.module.instance?.repository.find(res.body.id as string);
      assert.ok(row);
      const info = soxi(row.audio_path);
      assert.deepEqual([info.rate, info.channels, info.bits], [8000, 1, 16], format);
      assert.ok(Math.abs(info.durationS - 1.5) < 0.1, `${format}: duration ${info.durationS}`);
      assert.equal(
        (await fetch(`${s.url}/messages/${row.public_id}`, { method: 'DELETE' })).status,
        200,
      );
    }
    assert.deepEqual(files(uploads), []);
  });

  test('an hour of silence (a 100 kB FLAC) is 400 too_long, nothing stored', async () => {
    const hour = join(dir, 'hour.flac');
    execFileSync('sox', ['-n', '-r', '8000', '-c', '1', hour, 'trim', '0', '3600']);
    const before = (await listMessages(s.url, true)).length;
    const res = await postMultipart(
      `${s.url}/messages/add`,
      { description: 'an hour' },
      { name: 'hour.flac', path: hour },
    );
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.deepEqual(res.body, {
      error: 'audio: the audio is longer than 120 s (announce.maxDurationS)',
      code: 'too_long',
    });
    assert.equal((await listMessages(s.url, true)).length, before);
    assert.deepEqual(files(uploads), []);
  });

  test('extensions with @trunk, &, /, a comma, a newline or not allowed: 400, nothing dialled', async () => {
    const originates = sim.originates().length;
    const before = (await listMessages(s.url, true)).length;
    const audio = sine(dir, 'wav');
    for (const [extension, why] of HOSTILE_EXTENSIONS) {
      const upload = await postMultipart(
        `${s.url}/messages/add`,
        { extension },
        { name: 'a.wav', path: audio },
      );
      assert.equal(upload.status, 400, `${why}: ${JSON.stringify(upload.body)}`);
      assert.match(String(upload.body.error), /^extension: /, why);
      const tts = await postForm(`${s.url}/messages/tts/add`, { text: 'Fire drill.', extension });
      assert.equal(tts.status, 400, `${why}: ${JSON.stringify(tts.body)}`);
      assert.match(String(tts.body.error), /^extension: /, why);
    }
    const json = await fetch(`${s.url}/messages/tts/add`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'Fire drill.', extension: '+31900123456@pstn-trunk' }),
    });
    assert.equal(json.status, 400);
    assert.equal((await listMessages(s.url, true)).length, before);
    assert.equal(sim.originates().length, originates);
  });

  test('the default and the allow-list are dialled', async () => {
    const originates = sim.originates().length;
    const viaDefault = await postForm(`${s.url}/messages/tts/add`, { text: 'One.' });
    assert.equal(viaDefault.status, 200, JSON.stringify(viaDefault.body));
    assert.equal(viaDefault.body.extension, '42300');
    const viaPattern = await postForm(`${s.url}/messages/tts/add`, {
      text: 'Two.',
      extension: '42311',
    });
    assert.equal(viaPattern.status, 200, JSON.stringify(viaPattern.body));
    await sim.waitForAction('Originate', () => sim.originates().length >= originates + 2, 60_000);
    const channels = sim
      .originates()
      .slice(originates)
      .map((o) => o.channel)
      .sort();
    assert.deepEqual(channels, ['PJSIP/42300', 'PJSIP/42311']);
  });
});

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`queue and duration limits on ${kind} (announce.maxPending, announce.maxDurationS)`, () => {
    const dir = tempDir('sb-limits-');
    const schema = `announce_limits_${process.pid}_${Date.now().toString(36)}`;
    let s: AnnounceServer;

    before(async () => {
      mkdirSync(join(dir, 'spool', 'outgoing'), { recursive: true });
      s = await startAnnounceServer({
        yaml: announceYaml(dir, '  maxPending: 2\n  maxDurationS: 2\n'),
        ...(kind === 'postgres' ? { database: PG_URL, schema } : {}),
      });
    });
    after(async () => {
      await s.close();
      if (kind === 'postgres') await dropSchema(schema);
    });

    test('a full queue answers 409 too_many_pending; a freed place is usable again', async () => {
      const later = (h: number) => localStart(Date.now() + h * 3_600_000);
      const audio = sine(dir, 'wav');
      const first = await postMultipart(
        `${s.url}/messages/add`,
        { start: later(1) },
        {
          name: 'a.wav',
          path: audio,
        },
      );
      assert.equal(first.status, 200, JSON.stringify(first.body));
      // One place left, three concurrent adds: exactly one gets it.
      const burst = await Promise.all(
        [2, 3, 4].map((h) =>
          postForm(`${s.url}/messages/tts/add`, { text: 'Hi.', start: later(h) }),
        ),
      );
      assert.deepEqual(burst.map((r) => r.status).sort(), [200, 409, 409]);
      const full = {
        error: 'too many pending messages: at most 2 may be scheduled (announce.maxPending)',
        code: 'too_many_pending',
      };
      for (const r of burst.filter((x) => x.status === 409)) assert.deepEqual(r.body, full);
      const upload = await postMultipart(
        `${s.url}/messages/add`,
        { start: later(3) },
        {
          name: 'a.wav',
          path: audio,
        },
      );
      assert.equal(upload.status, 409);
      assert.deepEqual(upload.body, full);
      const tts = await postForm(`${s.url}/messages/tts/add`, { text: 'Hi.', start: later(3) });
      assert.equal(tts.status, 409);
      assert.deepEqual(tts.body, full);
      assert.equal((await listMessages(s.url)).length, 2);
      assert.equal(
        (await fetch(`${s.url}/messages/${first.body.id}`, { method: 'DELETE' })).status,
        200,
      );
      const again = await postForm(`${s.url}/messages/tts/add`, { text: 'Hi.', start: later(5) });
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.equal((await listMessages(s.url)).length, 2);
      for (const m of await listMessages(s.url)) {
        await fetch(`${s.url}/messages/${m.id}`, { method: 'DELETE' });
      }
    });

    test('speech longer than maxDurationS is 400 too_long on the text', async () => {
      const res = await postForm(`${s.url}/messages/tts/add`, {
        text: 'This sentence is far too long to be spoken in two seconds, however fast the voice.',
      });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.deepEqual(res.body, {
        error: 'text: spoken, the text is longer than 2 s (announce.maxDurationS)',
        code: 'too_long',
      });
      assert.deepEqual(await listMessages(s.url), []);
      assert.deepEqual(
        files(join(dir, 'sounds')).filter((f) => f.startsWith('announce-')),
        [],
      );
    });

    test('hostile extensions never reach the spool directory', async () => {
      for (const [extension, why] of HOSTILE_EXTENSIONS) {
        const res = await postForm(`${s.url}/messages/tts/add`, { text: 'Hi.', extension });
        assert.equal(res.status, 400, `${why}: ${JSON.stringify(res.body)}`);
      }
      assert.deepEqual(await listMessages(s.url), []);
      // A message that is accepted is spooled: the worker runs (so nothing hostile was queued).
      const ok = await postForm(`${s.url}/messages/tts/add`, { text: 'Hi.' });
      assert.equal(ok.status, 200);
      const spool = join(dir, 'spool', 'outgoing');
      await until(() => (files(spool).length > 0 ? true : undefined), 30_000);
      assert.deepEqual(files(spool), [`announce-${ok.body.id}.call`]);
    });
  });
}

describe('call-file playback needs the spool directory (announce.spoolDir)', () => {
  test('playback: callfile with a missing spool directory refuses the start with one line naming the key', async () => {
    const dir = tempDir('sb-spool-');
    const config = testConfig({}, announceYaml(dir, '  playback: callfile\n'));
    config.push.enabled = false;
    const service = createService({ config, modules: [announceServiceModule({ pollMs: 100 })] });
    await assert.rejects(service.start(), (error: Error) => {
      assert.equal(
        error.message,
        `announce.spoolDir: ${join(dir, 'spool', 'outgoing')} does not exist (announce.playback is callfile; create it, or set announce.enabled: false)`,
      );
      return true;
    });
  });

  test('switchboard serve exits 1 with "cannot start: announce.spoolDir: ..."', async () => {
    const dir = tempDir('sb-spool-cli-');
    const file = join(dir, 'switchboard.yaml');
    writeFileSync(
      file,
      `log:\n  level: warn\ndatabase:\n  url: ${join(dir, 'db.sqlite')}\n${announceYaml(dir, '  playback: callfile\n')}`,
    );
    const cli = startCli(
      ['serve', '--config', file, '--listen', '127.0.0.1:0'],
      [process.execPath, ENTRY],
    );
    const timer = setTimeout(() => cli.child.kill('SIGKILL'), 60_000);
    const code = await cli.exited;
    clearTimeout(timer);
    assert.equal(code, 1, cli.stderr());
    const lines = cli
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('switchboard:'));
    assert.equal(lines.length, 1, cli.stderr());
    assert.match(
      lines[0] ?? '',
      /^switchboard: cannot start: announce\.spoolDir: \S+ does not exist \(/,
    );
  });

  test('Originate playback does not need it', async () => {
    const dir = tempDir('sb-spool-ami-');
    const sim = await startRingerSim();
    const s = await startAnnounceServer({ ami: [sim.url()], yaml: announceYaml(dir) });
    assert.equal(existsSync(join(dir, 'spool', 'outgoing')), false);
    await s.close();
    await sim.close();
  });

  test('/readyz reports a spool directory that went away, and recovers', async () => {
    const dir = tempDir('sb-spool-ready-');
    const spool = join(dir, 'spool', 'outgoing');
    mkdirSync(spool, { recursive: true });
    const s = await startAnnounceServer({ yaml: announceYaml(dir) });
    try {
      const ready = async () => {
        const res = await fetch(`${s.url}/readyz`);
        return { status: res.status, body: JSON.stringify(await res.json()) };
      };
      assert.equal((await ready()).status, 200);
      rmSync(spool, { recursive: true });
      const down = await ready();
      assert.equal(down.status, 503);
      assert.match(down.body, /announce\.spoolDir: \S+ does not exist/);
      mkdirSync(spool);
      assert.equal((await ready()).status, 200);
    } finally {
      await s.close();
    }
  });
});

test('fixture sanity: the playlist attack works on sox itself (why the name matters)', () => {
  // Not Switchboard: shows what the tests above guard against. sox given a name ending
  // .m3u runs the entry through a shell even with `-t wav`.
  const dir = tempDir('sb-sox-playlist-');
  const marker = join(dir, 'ran');
  const playlist = join(dir, 'p.m3u');
  writeFileSync(playlist, `http://x"; touch ${marker}; echo "\n`);
  try {
    execFileSync('sox', ['-V0', '-t', 'wav', playlist, '-n'], { stdio: 'ignore' });
  } catch {
    // sox fails on the entry afterwards
  }
  assert.equal(existsSync(marker), true);
  // The same bytes under a name of ours are just a file.
  const ours = join(dir, 'upload-0123');
  copyFileSync(playlist, ours);
  rmSync(marker);
  try {
    execFileSync('sox', ['-V0', '-t', 'wav', ours, '-n'], { stdio: 'ignore' });
  } catch {
    // not a WAV
  }
  assert.equal(existsSync(marker), false);
});
