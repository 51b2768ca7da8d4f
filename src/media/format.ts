/**
 * Audio formats Switchboard reads, detected from a file's CONTENT (magic bytes), never from
 * its name: an upload called `x.m3u` is not a playlist to us, and the sox handler that reads
 * a file is chosen here from an allow-list, then forced with `-t TYPE`.
 *
 * Why: sox picks its handler from the file name when no `-t` is given, and a name ending
 * `.m3u` / `.pls` is read as a playlist even WITH `-t` (sox 14.4: each entry is opened in
 * turn; an `http://` entry goes to `popen("wget ...")` through a shell, a `/path` entry plays
 * any file of the server). Without `-t`, libsox also guesses among dozens of rarely used
 * handlers by their magic. So every file sox reads gets a name of ours and an explicit type from this module.
 *
 * The allow-list (sox handler in brackets): WAV (`RIFF`/`RIFX` … `WAVE`) [wav], MP3 (an ID3v2
 * tag or an MPEG audio frame header at the start) [mp3], Ogg Vorbis (`OggS` page whose first
 * packet is `\x01vorbis`) [vorbis], Ogg Opus (`OpusHead`) [opus], FLAC (`fLaC`) [flac], AIFF /
 * AIFF-C (`FORM` … `AIFF`/`AIFC`) [aiff, aifc], raw GSM 06.10 (33-byte frames, each starting
 * with the 0xD signature nibble) [gsm]; headerless 8 kHz mono μ-law [ul] / A-law [al] only when
 * the caller declares it (`rawFormat`), and never for content that reads as text.
 *
 * @module
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import { MediaError } from './errors.ts';
import { runTool } from './exec.ts';

/** An audio format of the allow-list. */
export type AudioFormatName =
  | 'wav'
  | 'mp3'
  | 'vorbis'
  | 'opus'
  | 'flac'
  | 'aiff'
  | 'aifc'
  | 'gsm'
  | 'ulaw'
  | 'alaw';

/** Headerless formats a caller may declare (config `announce.rawAudioFormat`). */
export type RawAudioFormat = 'ulaw' | 'alaw';

/** One allowed format and how sox is told to read it. */
export interface AudioFormat {
  name: AudioFormatName;
  /** Readable name for messages (`Ogg Vorbis`). */
  label: string;
  /** sox's handler name, as `sox -h` lists it under AUDIO FILE FORMATS. */
  soxHandler: string;
  /** The sox input options put before the input file: `-t wav`, or `-t ul -r 8000 -c 1`. */
  soxArgs: readonly string[];
}

/** The allow-list. */
export const AUDIO_FORMATS: Readonly<Record<AudioFormatName, AudioFormat>> = {
  wav: { name: 'wav', label: 'WAV', soxHandler: 'wav', soxArgs: ['-t', 'wav'] },
  mp3: { name: 'mp3', label: 'MP3', soxHandler: 'mp3', soxArgs: ['-t', 'mp3'] },
  vorbis: { name: 'vorbis', label: 'Ogg Vorbis', soxHandler: 'vorbis', soxArgs: ['-t', 'vorbis'] },
  opus: { name: 'opus', label: 'Ogg Opus', soxHandler: 'opus', soxArgs: ['-t', 'opus'] },
  flac: { name: 'flac', label: 'FLAC', soxHandler: 'flac', soxArgs: ['-t', 'flac'] },
  aiff: { name: 'aiff', label: 'AIFF', soxHandler: 'aiff', soxArgs: ['-t', 'aiff'] },
  aifc: { name: 'aifc', label: 'AIFF-C', soxHandler: 'aifc', soxArgs: ['-t', 'aifc'] },
  gsm: {
    name: 'gsm',
    label: 'GSM 06.10',
    soxHandler: 'gsm',
    soxArgs: ['-t', 'gsm', '-r', '8000', '-c', '1'],
  },
  ulaw: {
    name: 'ulaw',
    label: 'raw μ-law',
    soxHandler: 'ul',
    soxArgs: ['-t', 'ul', '-r', '8000', '-c', '1'],
  },
  alaw: {
    name: 'alaw',
    label: 'raw A-law',
    soxHandler: 'al',
    soxArgs: ['-t', 'al', '-r', '8000', '-c', '1'],
  },
};

/** What the refusal message lists. */
const ALLOWED_LABELS = 'WAV, MP3, Ogg Vorbis, Ogg Opus, FLAC, AIFF or GSM';

/** Bytes read from the start of a file for detection. */
const HEAD_BYTES = 64 * 1024;
/** GSM 06.10 frame size (sox's `gsm` handler), bytes. */
const GSM_FRAME = 33;

/** Options of {@link detectAudioFormat}. */
export interface DetectOptions {
  /** Read content with no known header as this raw format (8 kHz mono). Default: refuse it. */
  rawFormat?: RawAudioFormat;
  /** How messages name the file (e.g. `the uploaded file`). Default: its base name. */
  inputName?: string;
}

function ascii(buf: Buffer, offset: number, length: number): string {
  return buf.subarray(offset, offset + length).toString('latin1');
}

/** An MPEG-1/2/2.5 audio frame header (layer I–III) at `offset`. */
function isMpegFrame(buf: Buffer, offset: number): boolean {
  if (buf.length < offset + 4) return false;
  const b1 = buf[offset + 1] as number;
  const b2 = buf[offset + 2] as number;
  if (buf[offset] !== 0xff || (b1 & 0xe0) !== 0xe0) return false;
  const version = (b1 >> 3) & 3; // 1 = reserved
  const layer = (b1 >> 1) & 3; // 0 = reserved
  const bitrate = b2 >> 4; // 0 = free format, 15 = bad
  const rate = (b2 >> 2) & 3; // 3 = reserved
  return version !== 1 && layer !== 0 && bitrate !== 0 && bitrate !== 15 && rate !== 3;
}

/** Size of an ID3v2 tag at the start of `buf` (header + syncsafe size + footer), or 0. */
function id3Size(buf: Buffer): number {
  if (buf.length < 10 || ascii(buf, 0, 3) !== 'ID3') return 0;
  const version = buf[3] as number;
  const sizeBytes = [buf[6], buf[7], buf[8], buf[9]] as number[];
  if (version === 0xff || sizeBytes.some((b) => b >= 0x80)) return 0;
  const size = sizeBytes.reduce((sum, b) => sum * 128 + b, 0);
  const footer = ((buf[5] as number) & 0x10) !== 0 ? 10 : 0;
  return 10 + size + footer;
}

/** The codec of an Ogg stream from its first page (`vorbis`, `opus`, or undefined). */
function oggCodec(buf: Buffer): AudioFormatName | undefined {
  // Page header: "OggS", version 0, header type (BOS = 0x02), ..., segment count at 26.
  if (buf.length < 28 || ascii(buf, 0, 4) !== 'OggS' || buf[4] !== 0) return undefined;
  if (((buf[5] as number) & 0x02) === 0) return undefined;
  const packet = 27 + (buf[26] as number);
  if (ascii(buf, packet, 7) === '\x01vorbis') return 'vorbis';
  if (ascii(buf, packet, 8) === 'OpusHead') return 'opus';
  return undefined;
}

/** Raw GSM 06.10: whole 33-byte frames, each with the 0xD signature in its first nibble. */
function isGsm(head: Buffer, size: number): boolean {
  if (size < GSM_FRAME || size % GSM_FRAME !== 0) return false;
  for (let at = 0; at + GSM_FRAME <= head.length; at += GSM_FRAME) {
    if (((head[at] as number) & 0xf0) !== 0xd0) return false;
  }
  return true;
}

/**
 * Content that reads as text (valid UTF-8 without control characters other than tab, CR,
 * LF): a playlist, a script, an HTML error page. Real μ-law/A-law audio never does.
 */
export function looksLikeText(head: Buffer): boolean {
  let sample = head.subarray(0, 4096);
  if (sample.length === 0) return true;
  // Do not cut a multi-byte character at the end of the sample.
  for (let cut = 0; cut < 3 && sample.length > 0; cut++) {
    const last = sample[sample.length - 1] as number;
    if (last < 0x80) break;
    sample = sample.subarray(0, sample.length - 1);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(sample);
  } catch {
    return false;
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters mean binary
  return !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text);
}

/**
 * Detects the format of `head` (the first bytes of a file of `size` bytes) against the
 * allow-list. Pure; see {@link detectAudioFormat}.
 *
 * @returns the format's name, or undefined when the content is none of them.
 */
export function detectAudioFormatFromBytes(
  head: Buffer,
  size: number,
  options: DetectOptions = {},
): AudioFormatName | undefined {
  if (head.length >= 12) {
    const riff = ascii(head, 0, 4);
    if ((riff === 'RIFF' || riff === 'RIFX') && ascii(head, 8, 4) === 'WAVE') return 'wav';
    if (ascii(head, 0, 4) === 'FORM') {
      const form = ascii(head, 8, 4);
      if (form === 'AIFF') return 'aiff';
      if (form === 'AIFC') return 'aifc';
    }
  }
  if (ascii(head, 0, 4) === 'fLaC') return 'flac';
  const ogg = oggCodec(head);
  if (ogg) return ogg;
  const tag = id3Size(head);
  if (tag > 0) {
    // An ID3v2 tag: MP3 (or, rarely, FLAC) after it. A tag longer than the head is MP3's.
    if (tag + 4 > head.length) return 'mp3';
    if (ascii(head, tag, 4) === 'fLaC') return 'flac';
    if (isMpegFrame(head, tag)) return 'mp3';
    return undefined;
  }
  if (isMpegFrame(head, 0)) return 'mp3';
  if (isGsm(head, size)) return 'gsm';
  if (options.rawFormat !== undefined && size > 0 && !looksLikeText(head)) {
    return options.rawFormat;
  }
  return undefined;
}

/**
 * Reads the start of `file` and detects its format against the allow-list.
 *
 * @returns the format with the sox options that read it.
 * @throws {MediaError} `UNSUPPORTED_FORMAT` (content not in the allow-list; the message
 *   starts with `unsupported audio format`), `INPUT_MISSING`.
 */
export async function detectAudioFormat(
  file: string,
  options: DetectOptions = {},
): Promise<AudioFormat> {
  const label = options.inputName ?? path.basename(file);
  let head: Buffer;
  let size: number;
  try {
    const handle = await open(file, 'r');
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
      size = info.size;
      const buffer = Buffer.alloc(Math.min(HEAD_BYTES, size));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      head = buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw new MediaError('INPUT_MISSING', `cannot read ${label}`, String(error));
  }
  const name = detectAudioFormatFromBytes(head, size, options);
  if (name === undefined) {
    throw new MediaError(
      'UNSUPPORTED_FORMAT',
      `unsupported audio format: ${label} is not an audio file of an allowed format (${ALLOWED_LABELS})`,
    );
  }
  return AUDIO_FORMATS[name];
}

const handlers = new Map<string, Promise<Set<string>>>();

/** sox's file-format handlers (`sox -h`, AUDIO FILE FORMATS), read once per executable. */
export function soxHandlers(soxPath = 'sox', timeoutMs = 10_000): Promise<Set<string>> {
  let known = handlers.get(soxPath);
  if (!known) {
    known = runTool(soxPath, ['-h'], { timeoutMs }).then((result) => {
      const line = /^AUDIO FILE FORMATS:(.*)$/m.exec(result.stdout)?.[1] ?? '';
      return new Set(line.trim().split(/\s+/));
    });
    known.catch(() => handlers.delete(soxPath));
    handlers.set(soxPath, known);
  }
  return known;
}

/**
 * Checks that sox has the handler of `format` (mp3, vorbis and opus come from optional
 * packages such as `libsox-fmt-mp3`, `libsox-fmt-opus`).
 *
 * @throws {MediaError} `UNSUPPORTED_FORMAT` naming the missing handler; `TOOL_MISSING`.
 */
export async function requireSoxHandler(
  format: AudioFormat,
  soxPath = 'sox',
  timeoutMs?: number,
): Promise<void> {
  const known = await soxHandlers(soxPath, timeoutMs);
  if (!known.has(format.soxHandler)) {
    throw new MediaError(
      'UNSUPPORTED_FORMAT',
      `unsupported audio format: ${format.label} cannot be read here (sox has no "${format.soxHandler}" handler)`,
    );
  }
}
