/**
 * Audio formats are detected from the content, never the name, against an allow-list, and
 * sox always gets an explicit type and a name of ours: a playlist (`.m3u`/`.pls`) whose
 * entries are a shell command, an internal URL and a server file is refused with nothing
 * executed and nothing fetched (a real local HTTP server counts requests); every allowed
 * format made by real sox is detected and converted whatever it is called; raw μ-law/A-law
 * only when declared; a duration limit that stops sox early. Also the TTS paths (command
 * engine output, cache entries) go through the same rule.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { convertForAsterisk, probeAudio } from '../../src/media/audio.ts';
import {
  detectAudioFormat,
  detectAudioFormatFromBytes,
  soxHandlers,
} from '../../src/media/format.ts';
import { CachedEngine } from '../../src/media/tts/cache.ts';
import { CommandEngine } from '../../src/media/tts/command.ts';
import type { SpeechEngine } from '../../src/media/tts/engine.ts';

let dir: string;
let http: Server;
let httpUrl: string;
const requests: string[] = [];

/** `soxi` facts, independent of the code under test. */
function soxi(file: string): { rate: string; channels: string; bits: string; durationS: number } {
  const run = (flag: string): string => execFileSync('soxi', [flag, file]).toString().trim();
  return { rate: run('-r'), channels: run('-c'), bits: run('-b'), durationS: Number(run('-D')) };
}

/** A tone made by real sox: `sox -n [-t type] -r rate -c ch FILE synth S sine 440`. */
function tone(file: string, seconds: number, type?: string, rate = 44100, channels = 2): string {
  const out = path.join(dir, file);
  execFileSync('sox', [
    '-n',
    '-r',
    String(rate),
    '-c',
    String(channels),
    ...(type ? ['-t', type] : []),
    out,
    'synth',
    String(seconds),
    'sine',
    '440',
  ]);
  return out;
}

/** A playlist whose entries run a command, fetch an internal URL and play a server file. */
async function hostilePlaylist(name: string, marker: string): Promise<string> {
  const serverFile = tone('server-secret.wav', 0.5);
  const file = path.join(dir, name);
  const entries = [`http://x"; touch ${marker}; echo "`, `${httpUrl}/ssrf`, serverFile];
  const content = name.endsWith('.pls')
    ? `[playlist]\n${entries.map((e, i) => `File${i + 1}=${e}`).join('\n')}\nNumberOfEntries=${entries.length}\n`
    : `${entries.join('\n')}\n`;
  await writeFile(file, content);
  return file;
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sb-format-'));
  http = createServer((req, res) => {
    requests.push(req.url ?? '');
    res.end('RIFF');
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  httpUrl = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
});
after(async () => {
  await new Promise((resolve) => http.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe('playlists are never read as playlists', () => {
  for (const name of ['evil.m3u', 'evil.pls', 'evil.M3U']) {
    test(`${name}: refused as unsupported, nothing executed, nothing fetched`, async () => {
      const marker = path.join(tmpdir(), `sb-pwned-${randomBytes(6).toString('hex')}`);
      const input = await hostilePlaylist(name, marker);
      const output = path.join(dir, `never-${name}.wav`);
      await assert.rejects(convertForAsterisk(input, output), {
        code: 'UNSUPPORTED_FORMAT',
        message: /^unsupported audio format/,
      });
      await assert.rejects(probeAudio(input), { code: 'UNSUPPORTED_FORMAT' });
      // Raw μ-law is not a way in either: the playlist reads as text.
      await assert.rejects(convertForAsterisk(input, output, { rawFormat: 'ulaw' }), {
        code: 'UNSUPPORTED_FORMAT',
      });
      assert.equal(existsSync(marker), false, 'the shell command ran');
      assert.deepEqual(requests, [], 'an URL of the playlist was fetched');
      assert.equal(existsSync(output), false);
    });
  }

  test('a WAV named .m3u is read as WAV (its content), not as a playlist', async () => {
    const input = path.join(dir, 'really-a-wav.m3u');
    await copyFile(tone('src.wav', 1), input);
    const output = path.join(dir, 'from-m3u.wav');
    const info = await convertForAsterisk(input, output);
    const facts = soxi(output);
    assert.deepEqual([facts.rate, facts.channels, facts.bits], ['8000', '1', '16']);
    assert.ok(Math.abs(facts.durationS - 1) < 0.01, `duration ${facts.durationS}`);
    assert.ok(Math.abs(info.durationS - facts.durationS) < 0.001);
    assert.equal((await probeAudio(input)).sampleRateHz, 44100);
  });
});

describe('the allow-list, detected from the content', () => {
  const made: Array<[string, string, string | undefined, number?, number?]> = [
    ['wav', 'a.wav', undefined],
    ['mp3', 'a.mp3', undefined],
    ['vorbis', 'a.ogg', undefined],
    ['flac', 'a.flac', undefined],
    ['aiff', 'a.aiff', undefined],
    ['aifc', 'a.aifc', 'aifc'],
    ['gsm', 'a.gsm', undefined, 8000, 1],
  ];
  for (const [format, file, type, rate, channels] of made) {
    test(`${format} named x.bin is detected and converted to 8 kHz mono 16-bit`, async () => {
      const source = tone(file, 1, type, rate, channels);
      const blob = path.join(dir, `${format}-x.bin`);
      await copyFile(source, blob);
      assert.equal((await detectAudioFormat(blob)).name, format);
      const output = path.join(dir, `${format}-out.wav`);
      const info = await convertForAsterisk(blob, output, { leadingSilenceS: 0.5 });
      const facts = soxi(output);
      assert.deepEqual([facts.rate, facts.channels, facts.bits], ['8000', '1', '16']);
      // mp3 decoders add a few ms of padding
      assert.ok(Math.abs(facts.durationS - 1.5) < 0.1, `duration ${facts.durationS}`);
      assert.ok(Math.abs(info.durationS - facts.durationS) < 0.001);
    });
  }

  test('an MP3 behind an ID3v2 tag is MP3', () => {
    const frame = Buffer.from([0xff, 0xfb, 0x90, 0x64, 0, 0, 0, 0]);
    const tag = Buffer.concat([
      Buffer.from('ID3\x04\x00\x00\x00\x00\x00\x0a', 'latin1'),
      Buffer.alloc(10),
    ]);
    const data = Buffer.concat([tag, frame]);
    assert.equal(detectAudioFormatFromBytes(data, data.length), 'mp3');
  });

  test('Ogg Opus is recognised; refused clearly when sox has no opus handler', async () => {
    // One Ogg page (BOS) holding an OpusHead packet, as opusenc writes it.
    const head = Buffer.concat([
      Buffer.from('OpusHead', 'latin1'),
      Buffer.from([1, 1, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0]),
    ]);
    const page = Buffer.concat([
      Buffer.from('OggS', 'latin1'),
      Buffer.from([0, 0x02]),
      Buffer.alloc(20),
      Buffer.from([1, head.length]),
      head,
    ]);
    assert.equal(detectAudioFormatFromBytes(page, page.length), 'opus');
    const file = path.join(dir, 'voice.bin');
    await writeFile(file, page);
    const error = await convertForAsterisk(file, path.join(dir, 'opus.wav')).catch((e) => e);
    if ((await soxHandlers()).has('opus')) {
      assert.equal(error.code, 'NOT_AUDIO'); // a header without audio
    } else {
      assert.equal(error.code, 'UNSUPPORTED_FORMAT');
      assert.match(error.message, /^unsupported audio format: Ogg Opus .*"opus" handler/);
    }
  });

  test('playlists, text, HTML, scripts, Speex-in-Ogg, AU and empty files are none of them', () => {
    const refused = [
      '#EXTM3U\n/etc/passwd\n',
      '[playlist]\nFile1=http://x\n',
      '<html>error</html>',
      '#!/bin/sh\nid\n',
      '',
    ].map((text) => Buffer.from(text));
    const speex = Buffer.concat([
      Buffer.from('OggS', 'latin1'),
      Buffer.from([0, 0x02]),
      Buffer.alloc(20),
      Buffer.from([1, 8]),
      Buffer.from('Speex   ', 'latin1'),
    ]);
    const au = Buffer.concat([Buffer.from('.snd', 'latin1'), Buffer.alloc(60)]);
    for (const data of [...refused, speex, au]) {
      assert.equal(detectAudioFormatFromBytes(data, data.length), undefined, data.toString());
    }
  });
});

describe('raw μ-law / A-law only when declared', () => {
  test('headerless audio is refused by default, read as 8 kHz mono when declared', async () => {
    const ulaw = path.join(dir, 'raw.bin');
    execFileSync('sox', [
      '-n',
      '-r',
      '8000',
      '-c',
      '1',
      '-t',
      'ul',
      ulaw,
      'synth',
      '2',
      'sine',
      '300',
    ]);
    await assert.rejects(convertForAsterisk(ulaw, path.join(dir, 'raw-no.wav')), {
      code: 'UNSUPPORTED_FORMAT',
    });
    for (const rawFormat of ['ulaw', 'alaw'] as const) {
      const output = path.join(dir, `raw-${rawFormat}.wav`);
      const info = await convertForAsterisk(ulaw, output, { rawFormat });
      assert.ok(Math.abs(soxi(output).durationS - 2) < 0.01);
      assert.ok(Math.abs(info.durationS - 2) < 0.01);
    }
  });
});

describe('maxDurationS', () => {
  test('one hour of silence (a 100 kB FLAC) is TOO_LONG; nothing is left behind', async () => {
    const long = path.join(dir, 'hour.flac');
    execFileSync('sox', ['-n', '-r', '8000', '-c', '1', long, 'trim', '0', '3600']);
    const sub = await mkdtemp(path.join(dir, 'long-'));
    await assert.rejects(
      convertForAsterisk(long, path.join(sub, 'out.wav'), { maxDurationS: 120 }),
      { code: 'TOO_LONG', message: 'the audio is longer than 120 s' },
    );
    assert.deepEqual(await readdir(sub), []);
  });

  test('audio within the limit passes; the leading silence is not counted', async () => {
    const input = tone('two.wav', 2);
    const info = await convertForAsterisk(input, path.join(dir, 'two-out.wav'), {
      maxDurationS: 2,
      leadingSilenceS: 3,
    });
    assert.ok(Math.abs(info.durationS - 5) < 0.01);
    await assert.rejects(
      convertForAsterisk(tone('three.wav', 3), path.join(dir, 'three-out.wav'), {
        maxDurationS: 2,
      }),
      { code: 'TOO_LONG' },
    );
  });
});

describe('TTS outputs follow the same rule', () => {
  test('a TTS command that writes a playlist to {out}: refused, nothing run, nothing fetched', async () => {
    const marker = path.join(tmpdir(), `sb-pwned-tts-${randomBytes(6).toString('hex')}`);
    const playlist = await hostilePlaylist('tts.m3u', marker);
    const engine = new CommandEngine({ command: ['cp', playlist, '{out}'] });
    await assert.rejects(engine.synthesize('hello', 'en', path.join(dir, 'tts-out.wav')), {
      code: 'UNSUPPORTED_FORMAT',
    });
    assert.equal(existsSync(marker), false);
    assert.deepEqual(requests, []);
  });

  test('a cache entry that is not a WAV of ours is refused and removed', async () => {
    const cacheDir = await mkdtemp(path.join(dir, 'cache-'));
    const good = tone('cache-src.wav', 1, undefined, 8000, 1);
    let syntheses = 0;
    const inner: SpeechEngine = {
      name: 'fake',
      async synthesize(_text, _language, outPath) {
        syntheses++;
        return convertForAsterisk(good, outPath);
      },
    };
    const cache = new CachedEngine(inner, { dir: cacheDir });
    const entry = cache.pathFor('hi', 'en');
    const marker = path.join(tmpdir(), `sb-pwned-cache-${randomBytes(6).toString('hex')}`);
    await copyFile(await hostilePlaylist('cache.m3u', marker), entry);
    for (const leadingSilenceS of [0, 1]) {
      const out = path.join(dir, `cache-out-${leadingSilenceS}.wav`);
      await copyFile(await hostilePlaylist('cache.m3u', marker), entry);
      await assert.rejects(cache.synthesize('hi', 'en', out, { leadingSilenceS }), {
        code: /^(NOT_AUDIO|UNSUPPORTED_FORMAT)$/,
      });
      assert.equal(existsSync(out), false);
      assert.equal(existsSync(entry), false, 'the bad entry stays in the cache');
    }
    assert.equal(existsSync(marker), false);
    const info = await cache.synthesize('hi', 'en', path.join(dir, 'cache-ok.wav'));
    assert.equal(syntheses, 1);
    assert.ok(Math.abs(info.durationS - 1) < 0.01);
  });
});
