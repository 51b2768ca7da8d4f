/**
 * Audio for Asterisk with sox: probe a file, convert the formats of the allow-list (WAV, MP3,
 * Ogg Vorbis/Opus, FLAC, AIFF, GSM; raw μ-law/A-law when declared; see `format.ts`) to what
 * Asterisk plays — 8 kHz, mono, 16-bit signed PCM WAV — with optional leading silence and a
 * duration limit, and measure durations.
 *
 * Nothing about an input's name decides how it is read: its format is detected from its
 * content, sox gets that type with `-t`, and it reads the input through a link named by us
 * (sox reads a name ending `.m3u`/`.pls` as a playlist even with `-t`).
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
import { open, rename, symlink, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MediaError } from './errors.ts';
import { runTool } from './exec.ts';
import { detectAudioFormat, type RawAudioFormat, requireSoxHandler } from './format.ts';

/** What Asterisk plays: the format of every file this module writes. */
export const ASTERISK_AUDIO = { sampleRateHz: 8000, channels: 1, bitsPerSample: 16 } as const;

/** Default timeout of one sox run, in ms. */
export const DEFAULT_SOX_TIMEOUT_MS = 30_000;

/** Facts about an audio file (from sox's header report, or our own WAV header). */
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
   * How to read content with no known header: as raw 8 kHz mono μ-law (`ulaw`) or A-law
   * (`alaw`). Default: such content is refused (`UNSUPPORTED_FORMAT`). The format of every
   * other input is detected from its content ({@link detectAudioFormat}), never its name.
   */
  rawFormat?: RawAudioFormat;
  /** How error messages name the input (e.g. `the uploaded file`). Default: its base name. */
  inputName?: string;
}

/** Options of {@link convertForAsterisk}. */
export interface ConvertOptions extends SoxOptions {
  /** Seconds of silence added before the audio (Gong: 3 s, 1 s with an explicit extension). Default 0. */
  leadingSilenceS?: number;
  /** Output sample rate, in Hz. Default 8000 (what Asterisk's `wav` format plays). */
  sampleRateHz?: number;
  /**
   * Longest accepted audio, in seconds (leading silence not counted). sox stops reading the
   * input shortly after it (`trim`), so a small file that decodes to hours costs neither time
   * nor disk; a longer input is refused with `TOO_LONG`. Default: no limit.
   */
  maxDurationS?: number;
}

function soxError(error: unknown, name: string): never {
  if (error instanceof MediaError && error.code === 'TOOL_FAILED') {
    const detail = error.detail;
    if (/can't open input file[^\n]*(No such file|Permission denied)/i.test(detail)) {
      throw new MediaError('INPUT_MISSING', `cannot read ${name}`, detail);
    }
    // The format was detected from the content: sox failing to decode it means a corrupt file.
    throw new MediaError('NOT_AUDIO', `${name} is not an audio file sox can read`, detail);
  }
  throw error;
}

/**
 * Runs `fn` with a path to `input` that sox interprets as nothing but a file: a symbolic link
 * `.<random>.sox-input` in `dir` (no playlist extension, no `|command`, no URL, no leading
 * `-`), whatever the caller named the file.
 */
async function withOwnName<T>(
  input: string,
  dir: string,
  fn: (file: string) => Promise<T>,
): Promise<T> {
  const link = path.join(dir, `.${randomBytes(6).toString('hex')}.sox-input`);
  await symlink(path.resolve(input), link);
  try {
    return await fn(link);
  } finally {
    await unlink(link).catch(() => undefined);
  }
}

/** The detection options of `options` (only the keys that are set). */
function detectOptions(options: SoxOptions) {
  return {
    ...(options.rawFormat ? { rawFormat: options.rawFormat } : {}),
    ...(options.inputName ? { inputName: options.inputName } : {}),
  };
}

function parseInfo(text: string, file: string, name = path.basename(file)): AudioInfo {
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
    throw new MediaError('NOT_AUDIO', `${name} is not an audio file sox can read`, text);
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
 * Reads format and duration of an audio file: its format is detected from the content
 * (allow-list), then sox reads its header with that type forced
 * (`sox -V3 -t TYPE LINK -n trim 0 0.001`, the input block of the verbose output).
 *
 * @throws {MediaError} `UNSUPPORTED_FORMAT`, `NOT_AUDIO` (allowed magic but unreadable),
 *   `INPUT_MISSING`, `TOOL_MISSING`, `TIMEOUT`.
 */
export async function probeAudio(file: string, options: SoxOptions = {}): Promise<AudioInfo> {
  const sox = options.soxPath ?? 'sox';
  const timeoutMs = options.timeoutMs ?? DEFAULT_SOX_TIMEOUT_MS;
  const name = options.inputName ?? path.basename(file);
  const format = await detectAudioFormat(file, detectOptions(options));
  await requireSoxHandler(format, sox, timeoutMs);
  // The link goes to the temporary directory: the file's own may be read-only.
  const result = await withOwnName(file, tmpdir(), (link) =>
    runTool(sox, ['-V3', ...format.soxArgs, link, '-n', 'trim', '0', '0.001'], {
      timeoutMs,
    }).catch((error: unknown) => soxError(error, name)),
  );
  const block = /Input File[\s\S]*?(?=\n\s*\n|$)/.exec(result.stderr)?.[0] ?? '';
  return { ...parseInfo(block, file, name), path: file };
}

/**
 * Duration of an audio file in seconds ({@link probeAudio}).
 *
 * @throws {MediaError} as {@link probeAudio}.
 */
export async function measureDurationS(file: string, options: SoxOptions = {}): Promise<number> {
  return (await probeAudio(file, options)).durationS;
}

/**
 * Format and duration of a WAV file this module wrote (8 kHz mono 16-bit PCM, or any PCM
 * WAV), read from its RIFF header without running sox: used on our own outputs (conversion
 * results, TTS cache entries).
 *
 * @throws {MediaError} `NOT_AUDIO` when the file is not a PCM WAV; `INPUT_MISSING`.
 */
export async function readWavInfo(file: string): Promise<AudioInfo> {
  let head: Buffer;
  let size: number;
  try {
    const handle = await open(file, 'r');
    try {
      size = (await handle.stat()).size;
      const buffer = Buffer.alloc(Math.min(size, 64 * 1024));
      head = buffer.subarray(0, (await handle.read(buffer, 0, buffer.length, 0)).bytesRead);
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw new MediaError('INPUT_MISSING', `cannot read ${path.basename(file)}`, String(error));
  }
  const bad = () => new MediaError('NOT_AUDIO', `${path.basename(file)} is not a PCM WAV file`);
  if (head.length < 12 || head.toString('latin1', 0, 4) !== 'RIFF') throw bad();
  if (head.toString('latin1', 8, 12) !== 'WAVE') throw bad();
  let fmt: { tag: number; channels: number; rate: number; block: number; bits: number } | undefined;
  for (let at = 12; at + 8 <= head.length; ) {
    const id = head.toString('latin1', at, at + 4);
    const length = head.readUInt32LE(at + 4);
    if (id === 'fmt ' && at + 24 <= head.length) {
      fmt = {
        tag: head.readUInt16LE(at + 8),
        channels: head.readUInt16LE(at + 10),
        rate: head.readUInt32LE(at + 12),
        block: head.readUInt16LE(at + 20),
        bits: head.readUInt16LE(at + 22),
      };
    } else if (id === 'data') {
      if (!fmt || !(fmt.tag === 1 || fmt.tag === 0xfffe) || fmt.rate === 0 || fmt.block === 0) {
        throw bad();
      }
      const bytes = Math.min(length, size - (at + 8));
      return {
        path: file,
        sampleRateHz: fmt.rate,
        channels: fmt.channels,
        bitsPerSample: fmt.bits,
        encoding: `${fmt.bits}-bit ${fmt.bits === 8 ? 'Unsigned' : 'Signed'} Integer PCM`,
        durationS: Math.floor(bytes / fmt.block) / fmt.rate,
      };
    }
    at += 8 + length + (length % 2);
  }
  throw bad();
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
 * `leadingSilenceS` seconds of silence before the audio. The input's format is detected from
 * its content against the allow-list ({@link detectAudioFormat}; its name plays no part),
 * then sox runs with that type forced and the input behind a name of ours:
 * `sox -V1 -G -t TYPE LINK -t wav -c 1 -r 8000 -b 16 -e signed-integer TEMP [trim 0 MAX+1]
 * [pad S]`. The result is measured from its own header. Input size limits are the caller's job.
 *
 * @returns the format and duration (leading silence included) of the written file.
 * @throws {MediaError} `UNSUPPORTED_FORMAT` (content not in the allow-list, or no sox
 *   handler for it), `NOT_AUDIO` (corrupt, or no samples), `TOO_LONG` (over
 *   `maxDurationS`), `INPUT_MISSING`, `INVALID_OPTION`, `TOOL_MISSING`, `TIMEOUT`,
 *   `TOOL_FAILED`.
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
  const maxS = options.maxDurationS;
  if (maxS !== undefined && !(maxS > 0 && maxS <= 86_400)) {
    throw new MediaError('INVALID_OPTION', 'maxDurationS must be between 0 and 86400 seconds');
  }
  const sox = options.soxPath ?? 'sox';
  const timeoutMs = options.timeoutMs ?? DEFAULT_SOX_TIMEOUT_MS;
  const name = options.inputName ?? path.basename(input);
  const format = await detectAudioFormat(input, detectOptions(options));
  await requireSoxHandler(format, sox, timeoutMs);
  const outDir = path.dirname(path.resolve(output));
  return withOwnName(input, outDir, (link) =>
    writeAtomically(output, async (temp) => {
      const args = ['-V1', '-G', ...format.soxArgs, link, '-t', 'wav', '-c', '1'];
      args.push('-r', String(rate), '-b', '16', '-e', 'signed-integer', path.resolve(temp));
      // Stop decoding 1 s past the limit: enough to tell "too long", never hours of work.
      if (maxS !== undefined) args.push('trim', '0', String(maxS + 1));
      if (silenceS > 0) args.push('pad', String(silenceS));
      await runTool(sox, args, { timeoutMs }).catch((error: unknown) => soxError(error, name));
      const info = await readWavInfo(temp);
      const audioS = info.durationS - silenceS;
      if (audioS <= 0.0005) {
        throw new MediaError('NOT_AUDIO', `${name} contains no audio samples`);
      }
      if (maxS !== undefined && audioS > maxS + 0.0005) {
        throw new MediaError('TOO_LONG', `the audio is longer than ${maxS} s`);
      }
      return { ...info, path: output };
    }),
  );
}
