/**
 * Offline speech with espeak-ng (the default engine). espeak-ng writes a 22,050 Hz WAV
 * (`-w FILE`, text on stdin with `--stdin`: text never becomes a command-line argument, so a
 * text starting with `-` cannot be read as an option); sox then converts it to 8 kHz mono
 * 16-bit for Asterisk.
 *
 * Japanese (`ja`, `ja-jp`): kanji are first replaced by kana readings with kuromoji (see
 * `japanese.ts`), because espeak-ng reads every kanji as "Chinese letter".
 *
 * Source: espeak-ng(1) (`-v`, `-w`, `-s`, `--stdin`, `--voices`).
 *
 * @module
 */
import { unlink } from 'node:fs/promises';
import { type AudioInfo, convertForAsterisk, tempPathFor } from '../audio.ts';
import { MediaError } from '../errors.ts';
import { runTool } from '../exec.ts';
import {
  cleanText,
  normalizeLanguage,
  type SpeechEngine,
  type SynthesizeOptions,
} from './engine.ts';
import { toKana } from './japanese.ts';

/** Options of {@link EspeakEngine}. */
export interface EspeakOptions {
  /** espeak-ng executable. Default `espeak-ng` (config `tts.espeakBinary`). */
  binary?: string;
  /** sox executable. Default `sox`. */
  soxPath?: string;
  /** Timeout of each external run (espeak-ng, sox), in ms. Default 20000. */
  timeoutMs?: number;
  /** Speaking rate in words per minute (`-s`), 80–450. Default: espeak-ng's own (175). */
  speedWpm?: number;
  /** Extra language → espeak-ng voice mappings, e.g. `{ 'pt-br': 'pt-br' }`. */
  voices?: Readonly<Record<string, string>>;
}

/**
 * The text espeak-ng is given for `text` in `language`: cleaned (see `cleanText`) and, for
 * Japanese, with kanji replaced by katakana readings.
 *
 * @throws {MediaError} `EMPTY_TEXT`, `UNSUPPORTED_LANGUAGE`.
 */
export async function espeakInput(text: string, language: string): Promise<string> {
  const cleaned = cleanText(text);
  const primary = normalizeLanguage(language).split('-')[0];
  return primary === 'ja' ? toKana(cleaned) : cleaned;
}

/** Parses `espeak-ng --voices` output into the set of language codes it lists. */
export function parseVoiceList(text: string): Set<string> {
  const languages = new Set<string>();
  for (const line of text.split('\n').slice(1)) {
    const columns = line.trim().split(/\s+/);
    const language = columns[1];
    if (language !== undefined && language !== '') languages.add(language.toLowerCase());
  }
  return languages;
}

/** The espeak-ng engine. Stateless apart from the cached voice list; safe to share. */
export class EspeakEngine implements SpeechEngine {
  readonly name = 'espeak';
  readonly #binary: string;
  readonly #soxPath: string | undefined;
  readonly #timeoutMs: number;
  readonly #speedWpm: number | undefined;
  readonly #voices: Readonly<Record<string, string>>;
  #languages: Promise<Set<string>> | undefined;

  constructor(options: EspeakOptions = {}) {
    this.#binary = options.binary ?? 'espeak-ng';
    this.#soxPath = options.soxPath;
    this.#timeoutMs = options.timeoutMs ?? 20_000;
    const speed = options.speedWpm;
    if (speed !== undefined && !(Number.isInteger(speed) && speed >= 80 && speed <= 450)) {
      throw new MediaError('INVALID_OPTION', 'speedWpm must be an integer 80–450');
    }
    this.#speedWpm = speed;
    this.#voices = { ...options.voices };
  }

  /** Language codes espeak-ng has voices for (`espeak-ng --voices`, read once). */
  languages(): Promise<Set<string>> {
    this.#languages ??= runTool(this.#binary, ['--voices'], { timeoutMs: this.#timeoutMs }).then(
      (result) => parseVoiceList(result.stdout),
      (error: unknown) => {
        this.#languages = undefined;
        throw error;
      },
    );
    return this.#languages;
  }

  /**
   * The espeak-ng voice for a language: a configured mapping, else the full code when
   * espeak-ng lists it (`en-us`), else its primary subtag (`ja-jp` → `ja`).
   *
   * @throws {MediaError} `UNSUPPORTED_LANGUAGE` when espeak-ng has neither.
   */
  async voiceFor(language: string): Promise<string> {
    const code = normalizeLanguage(language);
    const mapped = this.#voices[code];
    if (mapped !== undefined) return normalizeLanguage(mapped);
    const available = await this.languages();
    if (available.has(code)) return code;
    // `en` is not listed (only en-us, en-gb, ...) but `-v en` picks espeak-ng's default English
    const primary = code.split('-')[0] as string;
    if (available.has(primary) || [...available].some((l) => l.startsWith(`${primary}-`))) {
      return primary;
    }
    throw new MediaError('UNSUPPORTED_LANGUAGE', `espeak-ng has no voice for ${code}`);
  }

  /** See {@link SpeechEngine.synthesize}. */
  async synthesize(
    text: string,
    language: string,
    outPath: string,
    options: SynthesizeOptions = {},
  ): Promise<AudioInfo> {
    const voice = await this.voiceFor(language);
    const input = await espeakInput(text, language);
    const raw = tempPathFor(outPath);
    const args = ['-v', voice, '-w', raw];
    if (this.#speedWpm !== undefined) args.push('-s', String(this.#speedWpm));
    args.push('--stdin');
    try {
      await runTool(this.#binary, args, {
        input: input,
        timeoutMs: this.#timeoutMs,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      return await convertForAsterisk(raw, outPath, {
        leadingSilenceS: options.leadingSilenceS ?? 0,
        timeoutMs: this.#timeoutMs,
        ...(this.#soxPath ? { soxPath: this.#soxPath } : {}),
      });
    } finally {
      await unlink(raw).catch(() => undefined);
    }
  }
}
