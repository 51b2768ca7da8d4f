/**
 * The speech-engine contract shared by the alert calls (issue 4) and the announcements
 * (issue 5), and the helpers every engine uses: language codes and text clean-up.
 *
 * Decision: an engine writes a file (it does not return a buffer). Asterisk plays files, the
 * cache keeps files, and sox works on files; the caller names the destination so that it
 * owns the result (e.g. `soundsDir/<message id>.wav`) and may delete it.
 *
 * @module
 */
import type { AudioInfo } from '../audio.ts';
import { MediaError } from '../errors.ts';

/** Options of {@link SpeechEngine.synthesize}. */
export interface SynthesizeOptions {
  /** Seconds of silence before the speech (Gong-style `pad`). Default 0. */
  leadingSilenceS?: number;
  /** Cancels the synthesis (kills the external program / aborts the HTTP request). */
  signal?: AbortSignal;
}

/**
 * A text-to-speech engine. `synthesize` writes an 8 kHz mono 16-bit signed PCM WAV (what
 * Asterisk plays) to `outPath`, atomically (temporary name in the same directory, then
 * rename), and resolves with its format and duration.
 */
export interface SpeechEngine {
  /** Engine id (`espeak`, `voicerss`, `command`), part of cache keys. */
  readonly name: string;
  /**
   * Synthesizes `text` in `language` (`en`, `ja`, `ja-jp`, `fr-fr`, ...) into `outPath`.
   *
   * @throws {MediaError} `EMPTY_TEXT`, `UNSUPPORTED_LANGUAGE`, `TIMEOUT`, `TOOL_MISSING`,
   *   `TOOL_FAILED`, `TTS_SERVICE_ERROR`, `TTS_HTTP_ERROR`.
   */
  synthesize(
    text: string,
    language: string,
    outPath: string,
    options?: SynthesizeOptions,
  ): Promise<AudioInfo>;
}

const LANGUAGE = /^[a-z]{2,3}(-[a-z0-9]{2,8}){0,2}$/;

/**
 * Lower-cases and checks a language code (`ja-JP` → `ja-jp`, `en_US` → `en-us`): 2–3
 * letters, then up to two `-` subtags of 2–8 letters/digits. What it returns is safe as one
 * command-line argument (never starts with `-`).
 *
 * @throws {MediaError} `UNSUPPORTED_LANGUAGE` for anything else.
 */
export function normalizeLanguage(language: string): string {
  const code = language.trim().toLowerCase().replaceAll('_', '-');
  if (!LANGUAGE.test(code)) {
    throw new MediaError('UNSUPPORTED_LANGUAGE', 'language must look like en, ja or ja-jp');
  }
  return code;
}

/** The primary subtag of a normalized language code (`ja-jp` → `ja`). */
export function primaryLanguage(language: string): string {
  return normalizeLanguage(language).split('-')[0] as string;
}

/**
 * Prepares text for a speech engine: control characters (CR, LF, tab, NUL, ...) become
 * spaces, runs of spaces collapse, ends are trimmed.
 *
 * @throws {MediaError} `EMPTY_TEXT` when nothing is left.
 */
export function cleanText(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
  const cleaned = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').replace(/\s+/g, ' ');
  const trimmed = cleaned.trim();
  if (trimmed === '') throw new MediaError('EMPTY_TEXT', 'text to synthesize is empty');
  return trimmed;
}
