/**
 * Audio for Asterisk with sox: probe a file, convert any common format (wav, mp3, ogg, flac,
 * aiff, au, ...) to what Asterisk plays — 8 kHz, mono, 16-bit signed PCM WAV — with optional
 * leading silence, and measure durations.
 *
 * Follows the original Gong (`sox in -c 1 -r 8000 out.wav`, leading silence with `pad`),
 * adding `-b 16 -e signed-integer` (so 8-bit or float inputs come out as 16-bit PCM) and `-G`
 * (guard against clipping while resampling). Every sox run has a timeout; outputs are written
 * under a temporary name in the destination directory and renamed into place, so a reader
 * never sees half a file. Needs `sox` and `libsox-fmt-all` (mp3/ogg/flac handlers).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { rename, stat, symlink, unlink } from 'node:fs/promises';
import path from 'node:path';
import { MediaError } from './errors.ts';
import { runTool } from './exec.ts';

/** What Asterisk plays: the format of every file this module writes. */
export const ASTERISK_AUDIO = { sampleRateHz: 8000, channels: 1, bitsPerSample: 16 } as const;

/** Default timeout of one sox run, in ms. */
export const DEFAULT_SOX_TIMEOUT_MS = 30_000;

/** Facts about an audio file, read with `sox --i`. */
export interface AudioInfo {
  /** Absolute or caller-given path of the file. */
  path: string;
  /** Sample rate, in Hz. */
  sampleRateHz: number;
  /** Number of channels. */
  channels: number;
  /** Bits per sample (sox's `Precision`), e.g. 16. */
  bitsPerSample: number;
  /** sox's `Sample Encoding`, e.g. `16-bit Signed Integer PCM`. */
  encoding: string;
  /** Duration, in seconds. */
  durationS: number;
}

/** Options shared by the functions of this module. */
export interface SoxOptions {
  /** sox executable. Default `sox`. */
  soxPath?: string;
  /** Timeout of each sox run, in ms. Default {@link DEFAULT_SOX_TIMEOUT_MS}. */
  timeoutMs?: number;
  /**
   * sox file type of the input (`mp3`, `ogg`, `wav`, ...) when its name has no telling
   * extension (an upload stored as `upload-123.tmp`); passed as `-t TYPE`. Letters and digits
   * only. Default: sox decides from the extension (or the header, for wav/aiff/au/flac).
   */
  inputType?: string;
}

/** Options of {@link convertForAsterisk}. */
export interface ConvertOptions extends SoxOptions {
  /** Seconds of silence added before the audio (Gong: 3 s, 1 s with an explicit extension). Default 0. */
  leadingSilenceS?: number;
  /** Output sample rate, in Hz. Default 8000 (what Asterisk's `wav` format plays). */
  sampleRateHz?: number;
}

function soxError(error: unknown, input: string): never {
  if (error instanceof MediaError && error.code === 'TOOL_FAILED') {
    const detail = error.detail;
    if (/can't open input file[^\n]*(No such file|Permission denied)/i.test(detail)) {
      throw new MediaError('INPUT_MISSING', `cannot read ${path.basename(input)}`, detail);
    }
    if (
      /can't open input file|can't determine type|no handler for|unknown file type|not a valid|header/i.test(
        detail,
      )
    ) {
      throw new MediaError(
        'NOT_AUDIO',
        `${path.basename(input)} is not an audio file sox can read`,
        detail,
      );
    }
  }
  throw error;
}

function checkType(type: string | undefined): string | undefined {
  if (type === undefined || type === '') return undefined;
  if (!/^[a-z0-9]{1,10}$/i.test(type)) {
    throw new MediaError('INVALID_OPTION', 'inputType must be letters and digits (e.g. mp3)');
  }
  return type.toLowerCase();
}

/**
 * Runs `fn` with a path sox reads as `inputType`: a symbolic link named `.<random>.<type>`
 * in `dir` pointing at `input` (`sox --i` has no way to force a type: its `-t` means "print
 * the type"). Without `inputType`, `fn(input)`.
 */
async function withTypedInput<T>(
  input: string,
  options: SoxOptions,
  dir: string,
  fn: (file: string) => Promise<T>,
): Promise<T> {
  const type = checkType(options.inputType);
  if (type === undefined) return fn(input);
  await stat(input).catch(() => {
    throw new MediaError('INPUT_MISSING', `cannot read ${path.basename(input)}`);
  });
  const link = path.join(dir, `.${randomBytes(6).toString('hex')}.input.${type}`);
  await symlink(path.resolve(input), link);
  try {
    return await fn(link);
  } finally {
    await unlink(link).catch(() => undefined);
  }
}

function parseInfo(text: string, file: string): AudioInfo {
  const value = (key: string): string | undefined =>
    new RegExp(`^${key}\\s*:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
  const rate = Number(value('Sample Rate'));
  const channels = Number(value('Channels'));
  const bits = Number.parseInt(value('Precision') ?? '', 10);
  const duration = value('Duration') ?? '';
  const samples = /=\s*(\d+)\s+samples/.exec(duration);
  const hms = /^(\d+):(\d+):(\d+(?:\.\d+)?)/.exec(duration);
  let durationS = Number.NaN;
  if (samples?.[1] !== undefined && rate > 0) durationS = Number(samples[1]) / rate;
  else if (hms) durationS = Number(hms[1]) * 3600 + Number(hms[2]) * 60 + Number(hms[3]);
  if (!(rate > 0) || !(channels > 0) || !Number.isFinite(durationS)) {
    throw new MediaError(
      'NOT_AUDIO',
      `${path.basename(file)} is not an audio file sox can read`,
      text,
    );
  }
  return {
    path: file,
    sampleRateHz: rate,
    channels,
    bitsPerSample: Number.isFinite(bits) ? bits : 0,
    encoding: value('Sample Encoding') ?? '',
    durationS,
  };
}

/**
 * Reads format and duration of an audio file (`sox --i FILE`).
 *
 * @throws {MediaError} `NOT_AUDIO` (unreadable as audio), `INPUT_MISSING`, `TOOL_MISSING`,
 *   `TIMEOUT`.
 */
export async function probeAudio(file: string, options: SoxOptions = {}): Promise<AudioInfo> {
  return withTypedInput(file, options, path.dirname(path.resolve(file)), (typed) =>
    probeFile(typed, file, options),
  );
}

async function probeFile(typed: string, file: string, options: SoxOptions): Promise<AudioInfo> {
  await stat(typed).catch(() => {
    throw new MediaError('INPUT_MISSING', `cannot read ${path.basename(file)}`);
  });
  const result = await runTool(options.soxPath ?? 'sox', ['--i', path.resolve(typed)], {
    timeoutMs: options.timeoutMs ?? DEFAULT_SOX_TIMEOUT_MS,
  }).catch((error: unknown) => soxError(error, file));
  return parseInfo(result.stdout, file);
}

/**
 * Duration of an audio file in seconds (`sox --i -D FILE`, i.e. `soxi -D`).
 *
 * @throws {MediaError} as {@link probeAudio}.
 */
export async function measureDurationS(file: string, options: SoxOptions = {}): Promise<number> {
  const result = await withTypedInput(
    file,
    options,
    path.dirname(path.resolve(file)),
    async (typed) => {
      await stat(typed).catch(() => {
        throw new MediaError('INPUT_MISSING', `cannot read ${path.basename(file)}`);
      });
      return runTool(options.soxPath ?? 'sox', ['--i', '-D', path.resolve(typed)], {
        timeoutMs: options.timeoutMs ?? DEFAULT_SOX_TIMEOUT_MS,
      }).catch((error: unknown) => soxError(error, file));
    },
  );
  const seconds = Number(result.stdout.trim());
  if (!Number.isFinite(seconds)) {
    throw new MediaError('NOT_AUDIO', `${path.basename(file)} has no measurable duration`);
  }
  return seconds;
}

/**
 * A temporary path next to `target` (same directory, hence same filesystem, so `rename` is
 * atomic): `.<name>.<random>.tmp<ext>`; the extension is kept because sox picks the output
 * format from it.
 */
export function tempPathFor(target: string): string {
  const ext = path.extname(target);
  const base = path.basename(target, ext);
  return path.join(
    path.dirname(target),
    `.${base}.${randomBytes(6).toString('hex')}.tmp${ext || '.wav'}`,
  );
}

/**
 * Writes a file through `write(tempPath)` then renames it onto `target`; on failure the
 * temporary file is removed and the error rethrown. `target` is untouched until success.
 */
export async function writeAtomically<T>(
  target: string,
  write: (tempPath: string) => Promise<T>,
): Promise<T> {
  const temp = tempPathFor(target);
  try {
    const result = await write(temp);
    await rename(temp, target);
    return result;
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}

/**
 * Converts `input` to an 8 kHz mono 16-bit signed PCM WAV at `output` (atomically), with
 * `leadingSilenceS` seconds of silence before the audio. Runs
 * `sox -V1 -G [-t TYPE] INPUT -t wav -c 1 -r 8000 -b 16 -e signed-integer TEMP [pad S]`.
 * The input is probed first, so an input that is not audio gives a clear `NOT_AUDIO` error
 * (an input with no samples is `NOT_AUDIO` too). Input size limits are the caller's job.
 *
 * @returns the format and duration of the written file (probed after conversion).
 * @throws {MediaError} `NOT_AUDIO`, `INPUT_MISSING`, `INVALID_OPTION`, `TOOL_MISSING`,
 *   `TIMEOUT`, `TOOL_FAILED`.
 */
export async function convertForAsterisk(
  input: string,
  output: string,
  options: ConvertOptions = {},
): Promise<AudioInfo> {
  const silenceS = options.leadingSilenceS ?? 0;
  if (!(silenceS >= 0 && silenceS <= 600)) {
    throw new MediaError('INVALID_OPTION', 'leadingSilenceS must be between 0 and 600 seconds');
  }
  const rate = options.sampleRateHz ?? ASTERISK_AUDIO.sampleRateHz;
  if (!Number.isInteger(rate) || rate < 8000 || rate > 48000) {
    throw new MediaError('INVALID_OPTION', 'sampleRateHz must be an integer 8000–48000');
  }
  const sox = options.soxPath ?? 'sox';
  const timeoutMs = options.timeoutMs ?? DEFAULT_SOX_TIMEOUT_MS;
  const outDir = path.dirname(path.resolve(output));
  return withTypedInput(input, options, outDir, async (typed) => {
    const source = await probeFile(typed, input, options);
    if (source.durationS <= 0) {
      throw new MediaError('NOT_AUDIO', `${path.basename(input)} contains no audio samples`);
    }
    return writeAtomically(output, async (temp) => {
      // Absolute paths: a name starting with '-' can never be read as an option.
      const args = ['-V1', '-G', path.resolve(typed), '-t', 'wav', '-c', '1'];
      args.push('-r', String(rate), '-b', '16', '-e', 'signed-integer', path.resolve(temp));
      if (silenceS > 0) args.push('pad', String(silenceS));
      await runTool(sox, args, { timeoutMs }).catch((error: unknown) => soxError(error, input));
      const info = await probeFile(temp, temp, { soxPath: sox, timeoutMs });
      return { ...info, path: output };
    });
  });
}
