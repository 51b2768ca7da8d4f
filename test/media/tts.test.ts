import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { defaultConfig } from '../../src/config/load.ts';
import { MediaError } from '../../src/media/errors.ts';
import {
  CachedEngine,
  CommandEngine,
  cleanText,
  createSpeechEngine,
  EspeakEngine,
  espeakInput,
  KANJI,
  normalizeLanguage,
  type SpeechEngine,
  splitCommandLine,
  toKana,
  VoiceRssEngine,
  voiceRssLanguage,
} from '../../src/media/tts/index.ts';

const HEAD_JA = '障害を検知しました。サーバー名は、web01。';
const FOOT_JA = '対応できる場合は1を、できない場合は2を押してください。';

let dir: string;

function soxi(file: string): { rate: string; channels: string; bits: string; encoding: string } {
  const run = (flag: string): string => execFileSync('soxi', [flag, file]).toString().trim();
  return { rate: run('-r'), channels: run('-c'), bits: run('-b'), encoding: run('-e') };
}
const ASTERISK = { rate: '8000', channels: '1', bits: '16', encoding: 'Signed Integer PCM' };
const durationS = (file: string): number =>
  Number(execFileSync('soxi', ['-D', file]).toString().trim());

/** A fake espeak-ng (sh script) that records its stdin and arguments, then runs the real one. */
async function recordingEspeak(): Promise<{ binary: string; stdinFile: string; argsFile: string }> {
  const binary = path.join(dir, 'espeak-recorder.sh');
  const stdinFile = path.join(dir, 'espeak-stdin.txt');
  const argsFile = path.join(dir, 'espeak-args.txt');
  await writeFile(
    binary,
    `#!/bin/sh\nprintf '%s\\n' "$@" > '${argsFile}'\ntee '${stdinFile}' | espeak-ng "$@"\n`,
  );
  await chmod(binary, 0o755);
  return { binary, stdinFile, argsFile };
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sb-tts-'));
});
after(() => rm(dir, { recursive: true, force: true }));

describe('text and language helpers', () => {
  test('cleanText removes control characters, refuses empty text', () => {
    assert.equal(cleanText('  a\r\nb\tc\u0000d  '), 'a b c d');
    assert.throws(() => cleanText(' \n\t '), { name: 'MediaError', code: 'EMPTY_TEXT' });
  });
  test('normalizeLanguage accepts en, ja-JP, en_US; refuses options and junk', () => {
    assert.equal(normalizeLanguage('ja-JP'), 'ja-jp');
    assert.equal(normalizeLanguage('en_US'), 'en-us');
    for (const bad of ['-v', '--stdin', 'en us', 'e', 'ja;rm', '../x', '']) {
      assert.throws(() => normalizeLanguage(bad), { code: 'UNSUPPORTED_LANGUAGE' }, bad);
    }
  });
});

describe('Japanese: kanji → kana before espeak-ng', () => {
  test('the seed texts lose every kanji and gain katakana readings', async () => {
    const head = await toKana(HEAD_JA);
    const foot = await toKana(FOOT_JA);
    assert.doesNotMatch(head, KANJI);
    assert.doesNotMatch(foot, KANJI);
    assert.match(head, /ショ[ーウ]ガイ/); // 障害
    assert.match(head, /ケンチ/); // 検知
    assert.match(head, /web01/); // latin kept
    assert.match(foot, /タイオ[ーウ]/); // 対応
    assert.match(foot, /バアイ/); // 場合
    assert.match(foot, /1/);
  });
  test('espeakInput converts for ja and ja-jp only', async () => {
    assert.doesNotMatch(await espeakInput(HEAD_JA, 'ja-jp'), KANJI);
    assert.doesNotMatch(await espeakInput(HEAD_JA, 'ja'), KANJI);
    assert.equal(await espeakInput('Server web01 failed.', 'en'), 'Server web01 failed.');
  });
  test('espeak-ng itself would say "Chinese letter" for kanji (why the conversion exists)', () => {
    const phonemes = execFileSync('espeak-ng', ['-q', '-x', '-v', 'ja', '障害']).toString();
    assert.match(phonemes, /tS'aIni:z/);
    const kana = execFileSync('espeak-ng', ['-q', '-x', '-v', 'ja', 'ショーガイ']).toString();
    assert.doesNotMatch(kana, /tS'aIni:z/);
  });
});

describe('EspeakEngine (real espeak-ng + sox)', () => {
  for (const [label, text, language] of [
    ['seed head (ja-jp)', HEAD_JA, 'ja-jp'],
    ['seed foot (ja)', FOOT_JA, 'ja'],
    ['English', 'A failure has been detected on server web01.', 'en'],
  ] as const) {
    test(`${label}: text handed to espeak-ng has no kanji; output is 8 kHz mono WAV`, async () => {
      const recorder = await recordingEspeak();
      const engine = new EspeakEngine({ binary: recorder.binary });
      const out = path.join(dir, `${label.replace(/\W+/g, '-')}.wav`);
      const info = await engine.synthesize(text, language, out);
      const spoken = await readFile(recorder.stdinFile, 'utf8');
      assert.doesNotMatch(spoken, KANJI);
      if (language !== 'en') assert.match(spoken, /[\p{Script=Katakana}]{3}/u);
      const args = (await readFile(recorder.argsFile, 'utf8')).trim().split('\n');
      assert.equal(args[0], '-v');
      assert.equal(args[1], language === 'en' ? 'en' : 'ja');
      assert.ok(!args.some((a) => a.includes(text)), 'text must not be an argument');
      assert.deepEqual(soxi(out), ASTERISK);
      const seconds = durationS(out);
      // plausible speech: at least ~1 s, not more than ~0.5 s per character
      assert.ok(seconds > 1 && seconds < text.length * 0.5, `duration ${seconds}`);
      assert.ok(Math.abs(info.durationS - seconds) < 0.01);
    });
  }

  test('leading silence lengthens the file', async () => {
    const engine = new EspeakEngine();
    const plain = await engine.synthesize('Test one two', 'en', path.join(dir, 'p0.wav'));
    const padded = await engine.synthesize('Test one two', 'en', path.join(dir, 'p1.wav'), {
      leadingSilenceS: 1,
    });
    assert.ok(Math.abs(padded.durationS - plain.durationS - 1) < 0.02);
  });

  test('unknown language, empty text, missing binary are typed errors', async () => {
    const engine = new EspeakEngine();
    await assert.rejects(engine.synthesize('x', 'xx-yy', path.join(dir, 'n.wav')), {
      code: 'UNSUPPORTED_LANGUAGE',
    });
    await assert.rejects(engine.synthesize('  ', 'en', path.join(dir, 'n.wav')), {
      code: 'EMPTY_TEXT',
    });
    await assert.rejects(
      new EspeakEngine({ binary: '/nonexistent/espeak' }).synthesize(
        'x',
        'en',
        path.join(dir, 'n.wav'),
      ),
      { code: 'TOOL_MISSING' },
    );
    assert.ok(!(await readdir(dir)).some((n) => n.includes('.tmp')), 'temp files left behind');
  });

  test('text starting with "-" is spoken, not taken for an option', async () => {
    const info = await new EspeakEngine().synthesize(
      '--help -w /etc/passwd',
      'en',
      path.join(dir, 'dash.wav'),
    );
    assert.ok(info.durationS > 0.5);
  });
});

/** A local VoiceRSS: answers like the real one (200 + audio, 200 + ERROR text). */
function fakeVoiceRss(): Promise<{
  url: string;
  requests: URLSearchParams[];
  reply: { mode: 'wav' | 'error' | 'http500' | 'garbage' };
  close: () => Promise<void>;
}> {
  const source = path.join(dir, 'voicerss-answer.wav');
  execFileSync('sox', [
    '-n',
    '-r',
    '8000',
    '-c',
    '1',
    '-b',
    '16',
    source,
    'synth',
    '1.2',
    'sine',
    '300',
  ]);
  const wav = readFileSync(source);
  const requests: URLSearchParams[] = [];
  const reply = { mode: 'wav' as 'wav' | 'error' | 'http500' | 'garbage' };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      const params = new URLSearchParams(body);
      requests.push(params);
      if (reply.mode === 'error' || params.get('key') !== 'good-key') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ERROR: The API key is not available!');
      } else if (reply.mode === 'http500') {
        res.writeHead(500);
        res.end('oops');
      } else if (reply.mode === 'garbage') {
        res.writeHead(200, { 'content-type': 'audio/wav' });
        res.end('<html>not audio</html>');
      } else {
        res.writeHead(200, { 'content-type': 'audio/wav' });
        res.end(wav);
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}/`,
        requests,
        reply,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}

describe('VoiceRssEngine against a local fake', () => {
  test('sends key, hl, src, c=WAV, f=8khz_16bit_mono; writes 8 kHz mono WAV', async () => {
    const fake = await fakeVoiceRss();
    try {
      const engine = new VoiceRssEngine({ apiKey: 'good-key', url: fake.url });
      const out = path.join(dir, 'vrss.wav');
      const info = await engine.synthesize(HEAD_JA, 'ja', out);
      assert.equal(fake.requests.length, 1);
      const sent = Object.fromEntries(fake.requests[0] as URLSearchParams);
      assert.deepEqual(sent, {
        key: 'good-key',
        hl: 'ja-jp',
        src: HEAD_JA,
        c: 'WAV',
        f: '8khz_16bit_mono',
      });
      assert.deepEqual(soxi(out), ASTERISK);
      assert.ok(Math.abs(info.durationS - 1.2) < 0.01);
    } finally {
      await fake.close();
    }
  });

  test('HTTP 200 with an ERROR body is a TTS_SERVICE_ERROR without the key; no file written', async () => {
    const fake = await fakeVoiceRss();
    try {
      const out = path.join(dir, 'vrss-bad.wav');
      const engine = new VoiceRssEngine({ apiKey: 'wrong-key-123', url: fake.url });
      const error = await engine.synthesize('hello', 'en', out).catch((e: unknown) => e);
      assert.ok(error instanceof MediaError);
      assert.equal(error.code, 'TTS_SERVICE_ERROR');
      assert.equal(error.message, 'VoiceRSS error: The API key is not available!');
      assert.doesNotMatch(`${error.message} ${error.detail}`, /wrong-key-123/);
      assert.ok(!(await readdir(dir)).includes('vrss-bad.wav'));
      fake.reply.mode = 'http500';
      await assert.rejects(
        new VoiceRssEngine({ apiKey: 'good-key', url: fake.url }).synthesize('x', 'en', out),
        { code: 'TTS_HTTP_ERROR', message: 'VoiceRSS answered HTTP 500' },
      );
      fake.reply.mode = 'garbage';
      await assert.rejects(
        new VoiceRssEngine({ apiKey: 'good-key', url: fake.url }).synthesize('x', 'en', out),
        { code: 'TTS_HTTP_ERROR' },
      );
    } finally {
      await fake.close();
    }
  });

  test('unreachable service and timeouts are typed', async () => {
    await assert.rejects(
      new VoiceRssEngine({ apiKey: 'k', url: 'http://127.0.0.1:1/' }).synthesize(
        'x',
        'en',
        path.join(dir, 'u.wav'),
      ),
      { code: 'TTS_HTTP_ERROR' },
    );
    const hang = http.createServer(() => undefined);
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    try {
      const { port } = hang.address() as AddressInfo;
      await assert.rejects(
        new VoiceRssEngine({
          apiKey: 'k',
          url: `http://127.0.0.1:${port}/`,
          timeoutMs: 200,
        }).synthesize('x', 'en', path.join(dir, 'u.wav')),
        { code: 'TIMEOUT' },
      );
    } finally {
      hang.closeAllConnections();
      await new Promise((r) => hang.close(r));
    }
  });

  test('language mapping', () => {
    assert.equal(voiceRssLanguage('en'), 'en-us');
    assert.equal(voiceRssLanguage('ja'), 'ja-jp');
    assert.equal(voiceRssLanguage('fr-CA'), 'fr-ca');
    assert.throws(() => voiceRssLanguage('xx'), { code: 'UNSUPPORTED_LANGUAGE' });
  });
});

describe('CommandEngine', () => {
  test('placeholders become single arguments; no shell ever interprets the text', async () => {
    const argsFile = path.join(dir, 'cmd-args.txt');
    const script = path.join(dir, 'tts-cmd.sh');
    // writes each argument on its own line, then makes audio into the {out} argument ($2)
    await writeFile(
      script,
      `#!/bin/sh\nprintf '%s\\n' "$@" > '${argsFile}'\nexec sox -n -r 16000 -c 2 "$2" synth 0.7 sine 500\n`,
    );
    await chmod(script, 0o755);
    const engine = new CommandEngine({ command: [script, '--text={text}', '{out}', '{lang}'] });
    const evil = 'hi $(touch /tmp/sb-pwned) `id`; rm -rf / & echo "x"';
    const out = path.join(dir, 'cmd.wav');
    const info = await engine.synthesize(evil, 'ja-JP', out);
    const args = (await readFile(argsFile, 'utf8')).split('\n');
    assert.equal(args[0], `--text=${evil}`);
    assert.match(args[1] as string, /out\.wav$/);
    assert.equal(args[2], 'ja-jp');
    assert.deepEqual(soxi(out), ASTERISK);
    assert.ok(Math.abs(info.durationS - 0.7) < 0.01);
    await assert.rejects(readFile('/tmp/sb-pwned'));
  });

  test('{text_file} and stdin modes', async () => {
    const seen = path.join(dir, 'seen.txt');
    const script = path.join(dir, 'tts-file.sh');
    await writeFile(
      script,
      `#!/bin/sh\ncat "$1" > '${seen}'\nexec sox -n -r 8000 -c 1 "$2" synth 0.3 sine 400\n`,
    );
    await chmod(script, 0o755);
    await new CommandEngine({ command: `${script} {text_file} {out_wav}` }).synthesize(
      'ファイル経由',
      'ja',
      path.join(dir, 'f.wav'),
    );
    assert.equal(await readFile(seen, 'utf8'), 'ファイル経由');
    const stdinScript = path.join(dir, 'tts-stdin.sh');
    await writeFile(
      stdinScript,
      `#!/bin/sh\ncat > '${seen}'\nexec sox -n -r 8000 -c 1 "$1" synth 0.3 sine 400\n`,
    );
    await chmod(stdinScript, 0o755);
    await new CommandEngine({ command: [stdinScript, '{out}'] }).synthesize(
      'via stdin',
      'en',
      path.join(dir, 's.wav'),
    );
    assert.equal(await readFile(seen, 'utf8'), 'via stdin');
  });

  test('bad templates are refused; a command producing no audio is an error', async () => {
    const sleeper = path.join(dir, 'tts-sleep.sh');
    await writeFile(sleeper, '#!/bin/sh\nexec sleep 5\n');
    await chmod(sleeper, 0o755);
    assert.throws(() => new CommandEngine({ command: ['tts', '{text}'] }), /needs an \{out\}/);
    assert.throws(
      () => new CommandEngine({ command: ['tts', '{out}', '{shell}'] }),
      /unknown placeholder/,
    );
    assert.throws(() => new CommandEngine({ command: ['{text}', '{out}'] }), {
      code: 'INVALID_OPTION',
    });
    assert.throws(() => new CommandEngine({ command: '' }), { code: 'INVALID_OPTION' });
    await assert.rejects(
      new CommandEngine({ command: ['true', '{out}'] }).synthesize(
        'x',
        'en',
        path.join(dir, 'none.wav'),
      ),
      { code: 'INPUT_MISSING' },
    );
    await assert.rejects(
      new CommandEngine({ command: [sleeper, '{out}'], timeoutMs: 150 }).synthesize(
        'x',
        'en',
        path.join(dir, 'none.wav'),
      ),
      { code: 'TIMEOUT' },
    );
  });

  test('splitCommandLine: words and quotes, no expansion', () => {
    assert.deepEqual(
      splitCommandLine(`open_jtalk -x '/var/lib/dic' -ow {out} "{text_file}" $HOME`),
      ['open_jtalk', '-x', '/var/lib/dic', '-ow', '{out}', '{text_file}', '$HOME'],
    );
    assert.deepEqual(splitCommandLine('a "b \\" c" \'d e\''), ['a', 'b " c', 'd e']);
    assert.throws(() => splitCommandLine('a "b'), /unterminated/);
  });
});

describe('CachedEngine', () => {
  test('same (engine, language, text) is synthesized once; outputs are independent copies', async () => {
    let calls = 0;
    const inner = new EspeakEngine();
    const counting: SpeechEngine = {
      name: 'espeak',
      synthesize: (...args) => {
        calls++;
        return inner.synthesize(...args);
      },
    };
    const cache = new CachedEngine(counting, { dir: path.join(dir, 'cache') });
    const [a, b] = await Promise.all([
      cache.synthesize('Cached words', 'en', path.join(dir, 'c1.wav')),
      cache.synthesize('Cached words', 'en', path.join(dir, 'c2.wav')),
    ]);
    const c = await cache.synthesize('Cached words', 'en', path.join(dir, 'c3.wav'), {
      leadingSilenceS: 2,
    });
    assert.equal(calls, 1);
    assert.equal(a.durationS, b.durationS);
    assert.ok(Math.abs(c.durationS - a.durationS - 2) < 0.02);
    await cache.synthesize('Cached words', 'ja', path.join(dir, 'c4.wav'));
    assert.equal(calls, 2);
    await rm(path.join(dir, 'c1.wav'));
    assert.deepEqual(soxi(path.join(dir, 'c2.wav')), ASTERISK);
    assert.equal(await cache.prune(60_000), 0);
    assert.equal(await cache.prune(-1), 2);
  });

  test('createSpeechEngine follows the tts config section', () => {
    const base = defaultConfig().tts;
    assert.ok(createSpeechEngine(base) instanceof EspeakEngine);
    assert.ok(createSpeechEngine(base, { cacheDir: dir }) instanceof CachedEngine);
    const vrss = {
      ...base,
      engine: 'voicerss' as const,
      voicerss: { ...base.voicerss, apiKey: 'k' },
    };
    assert.ok(createSpeechEngine(vrss) instanceof VoiceRssEngine);
    assert.throws(() => createSpeechEngine({ ...base, engine: 'voicerss' }), {
      code: 'INVALID_OPTION',
    });
    const cmd = {
      ...base,
      engine: 'command' as const,
      command: 'my-tts {text_file} {out_wav} {language}',
    };
    assert.ok(createSpeechEngine(cmd) instanceof CommandEngine);
  });
});
