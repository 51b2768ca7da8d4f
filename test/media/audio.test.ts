import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  convertForAsterisk,
  measureDurationS,
  probeAudio,
  writeAtomically,
} from '../../src/media/audio.ts';
import { MediaError } from '../../src/media/errors.ts';
import { runTool } from '../../src/media/exec.ts';

let dir: string;

/** Format as `soxi` reports it: independent of the code under test. */
function soxi(file: string): { rate: string; channels: string; bits: string; encoding: string } {
  const run = (flag: string): string => execFileSync('soxi', [flag, file]).toString().trim();
  return { rate: run('-r'), channels: run('-c'), bits: run('-b'), encoding: run('-e') };
}

function soxiDuration(file: string): number {
  return Number(execFileSync('soxi', ['-D', file]).toString().trim());
}

/** A stereo 44.1 kHz tone of `seconds` in the format the extension says (made by sox). */
function tone(name: string, seconds: number): string {
  const file = path.join(dir, name);
  execFileSync('sox', [
    '-n',
    '-r',
    '44100',
    '-c',
    '2',
    file,
    'synth',
    String(seconds),
    'sine',
    '440',
  ]);
  return file;
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sb-audio-'));
});
after(() => rm(dir, { recursive: true, force: true }));

describe('convertForAsterisk', () => {
  for (const ext of ['wav', 'mp3', 'ogg', 'flac']) {
    test(`${ext} → 8 kHz mono 16-bit signed PCM WAV`, async () => {
      const input = tone(`in.${ext}`, 1.5);
      const output = path.join(dir, `out-${ext}.wav`);
      const info = await convertForAsterisk(input, output);
      assert.deepEqual(soxi(output), {
        rate: '8000',
        channels: '1',
        bits: '16',
        encoding: 'Signed Integer PCM',
      });
      assert.equal(info.sampleRateHz, 8000);
      assert.equal(info.channels, 1);
      assert.equal(info.path, output);
      // mp3 decoders add a few ms of padding
      assert.ok(Math.abs(soxiDuration(output) - 1.5) < 0.1, `duration ${soxiDuration(output)}`);
      assert.ok(Math.abs(info.durationS - soxiDuration(output)) < 0.01);
    });
  }

  test('leading silence is added (Gong pad) and is silent', async () => {
    const input = tone('pad-in.wav', 1);
    const output = path.join(dir, 'padded.wav');
    const info = await convertForAsterisk(input, output, { leadingSilenceS: 3 });
    assert.ok(Math.abs(soxiDuration(output) - 4) < 0.01);
    assert.ok(Math.abs(info.durationS - 4) < 0.01);
    // the first 2.9 s have a maximum amplitude of 0
    const result = await runTool('sox', [output, '-n', 'trim', '0', '2.9', 'stat']);
    // dither may leave ±1 LSB (0.00003); the tone itself has amplitude ~1
    const max = Number(/Maximum amplitude:\s+([\d.]+)/.exec(result.stderr)?.[1]);
    assert.ok(max < 0.001, `silence has amplitude ${max}`);
    const whole = await runTool('sox', [output, '-n', 'stat']);
    assert.ok(Number(/Maximum amplitude:\s+([\d.]+)/.exec(whole.stderr)?.[1]) > 0.5);
  });

  test('an input without a telling extension is read by its content', async () => {
    const mp3 = tone('upload.mp3', 1);
    const blob = path.join(dir, 'upload-123.tmp');
    execFileSync('cp', [mp3, blob]);
    const info = await convertForAsterisk(blob, path.join(dir, 'x.wav'));
    assert.equal(info.sampleRateHz, 8000);
    assert.ok(Math.abs(info.durationS - 1) < 0.1, `duration ${info.durationS}`);
  });

  for (const name of ['notes.wav', 'notes.mp3', 'notes.ogg', 'notes.txt', 'notes']) {
    test(`text file named ${name} is refused as UNSUPPORTED_FORMAT with a clear message`, async () => {
      const input = path.join(dir, name);
      await writeFile(input, 'hello, this is not audio at all\n'.repeat(50));
      const output = path.join(dir, `never-${name}.wav`);
      const error = await convertForAsterisk(input, output).then(
        () => assert.fail('accepted text as audio'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof MediaError);
      assert.equal(error.code, 'UNSUPPORTED_FORMAT');
      assert.equal(
        error.message,
        `unsupported audio format: ${name} is not an audio file of an allowed format (WAV, MP3, Ogg Vorbis, Ogg Opus, FLAC, AIFF or GSM)`,
      );
      assert.doesNotMatch(error.message, /sox FAIL/);
      await assert.rejects(stat(output));
    });
  }

  test('a missing input is INPUT_MISSING', async () => {
    await assert.rejects(convertForAsterisk(path.join(dir, 'nope.wav'), path.join(dir, 'n.wav')), {
      code: 'INPUT_MISSING',
    });
  });

  test('a file name starting with "-" is not taken for an option', async () => {
    const input = tone('-n.wav', 0.5);
    const info = await convertForAsterisk(input, path.join(dir, 'dash.wav'));
    assert.ok(Math.abs(info.durationS - 0.5) < 0.01);
  });

  test('no temporary file is left behind, the target appears complete', async () => {
    const sub = await mkdtemp(path.join(dir, 'atomic-'));
    const input = tone('atomic.flac', 1);
    await convertForAsterisk(input, path.join(sub, 'final.wav'));
    assert.deepEqual(await readdir(sub), ['final.wav']);
    await writeFile(path.join(sub, 'bad.wav'), 'garbage');
    await assert.rejects(convertForAsterisk(path.join(sub, 'bad.wav'), path.join(sub, 'out.wav')));
    assert.deepEqual((await readdir(sub)).sort(), ['bad.wav', 'final.wav']);
  });
});

describe('probe and duration', () => {
  test('measureDurationS agrees with soxi -D', async () => {
    const input = tone('len.ogg', 2.25);
    assert.ok(Math.abs((await measureDurationS(input)) - soxiDuration(input)) < 0.001);
    const info = await probeAudio(input);
    assert.equal(info.channels, 2);
    assert.equal(info.sampleRateHz, 44100);
  });
  test('probe of text is UNSUPPORTED_FORMAT; of a broken WAV, NOT_AUDIO', async () => {
    const input = path.join(dir, 'probe.wav');
    await writeFile(input, 'RIFX nope');
    await assert.rejects(probeAudio(input), { code: 'UNSUPPORTED_FORMAT' });
    await assert.rejects(measureDurationS(input), { code: 'UNSUPPORTED_FORMAT' });
    const broken = path.join(dir, 'broken.wav');
    await writeFile(
      broken,
      Buffer.concat([Buffer.from('RIFF\0\0\0\0WAVEjunk'), Buffer.alloc(64, 7)]),
    );
    await assert.rejects(probeAudio(broken), { code: 'NOT_AUDIO' });
  });
});

describe('runTool and writeAtomically', () => {
  test('kills a program that runs past its timeout', async () => {
    await assert.rejects(runTool('sleep', ['5'], { timeoutMs: 150 }), { code: 'TIMEOUT' });
  });
  test('a missing program is TOOL_MISSING; a failing one TOOL_FAILED with stderr in detail', async () => {
    await assert.rejects(runTool('/nonexistent/sox', []), { code: 'TOOL_MISSING' });
    const error = await runTool('sox', ['--no-such-flag']).catch((e: unknown) => e);
    assert.ok(error instanceof MediaError);
    assert.equal(error.code, 'TOOL_FAILED');
    assert.notEqual(error.detail, '');
  });
  test('arguments are never interpreted by a shell', async () => {
    const result = await runTool('printf', ['%s|', '$(id)', '; rm -rf /', '`x`']);
    assert.equal(result.stdout, '$(id)|; rm -rf /|`x`|');
  });
  test('writeAtomically leaves the target untouched on failure', async () => {
    const target = path.join(dir, 'keep.txt');
    await writeFile(target, 'old');
    await assert.rejects(
      writeAtomically(target, async (temp) => {
        await writeFile(temp, 'half');
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(await readFile(target, 'utf8'), 'old');
    assert.equal((await readdir(dir)).filter((n) => n.startsWith('.keep.')).length, 0);
  });
});
