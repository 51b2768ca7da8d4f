/**
 * A configurable external TTS program (Open JTalk, piper, festival's text2wave, a vendor
 * CLI, ...), run with `spawn` and an argument array — never through a shell.
 *
 * The template is an argument array; these placeholders are substituted inside each argument
 * (the result stays ONE argument, whatever the text contains):
 *
 * | placeholder | value |
 * |---|---|
 * | `{text}` | the cleaned text (control characters removed) |
 * | `{text_file}` | path of a UTF-8 file holding the text (for programs reading a file) |
 * | `{out}`, `{out_wav}` | path the program must write its audio to (a format of the allow-list of `format.ts`, detected from the content) |
 * | `{lang}`, `{language}` | the normalized language code (`en`, `ja-jp`) |
 *
 * `{out}`/`{out_wav}` is required. Without `{text}`/`{text_file}` the text is written to the
 * program's stdin. The program's output is converted with sox to 8 kHz mono 16-bit.
 * Prefer `{text_file}` or stdin: a program may parse a `{text}` argument starting with `-`
 * as an option (`cleanText` output can start with `-`).
 *
 * @module
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type AudioInfo, convertForAsterisk } from '../audio.ts';
import { MediaError } from '../errors.ts';
import { runTool } from '../exec.ts';
import type { RawAudioFormat } from '../format.ts';
import {
  cleanText,
  normalizeLanguage,
  type SpeechEngine,
  type SynthesizeOptions,
} from './engine.ts';

const PLACEHOLDER = /\{([a-z_]+)\}/g;
const KNOWN = new Set(['text', 'text_file', 'out', 'out_wav', 'lang', 'language']);

/**
 * Splits a command line from a config string into an argument array, like a shell would
 * split words but with no expansion of any kind: whitespace separates arguments, single or
 * double quotes group (no escapes inside single quotes; `\"` and `\\` inside double quotes).
 *
 * @throws {MediaError} `INVALID_OPTION` on an unterminated quote or an empty command.
 */
export function splitCommandLine(line: string): string[] {
  const args: string[] = [];
  let current = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (quote === "'") {
      if (ch === "'") quote = undefined;
      else current += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = undefined;
      else if (ch === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) current += line[++i];
      else current += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) args.push(current);
      current = '';
      inWord = false;
    } else {
      current += ch;
      inWord = true;
    }
  }
  if (quote !== undefined)
    throw new MediaError('INVALID_OPTION', 'unterminated quote in TTS command');
  if (inWord) args.push(current);
  if (args.length === 0) throw new MediaError('INVALID_OPTION', 'TTS command is empty');
  return args;
}

/**
 * Checks a command template: non-empty, the program itself has no placeholder, only known
 * placeholders, `{out}`/`{out_wav}` present.
 *
 * @throws {MediaError} `INVALID_OPTION` naming the problem.
 */
export function validateCommandTemplate(argv: readonly string[]): void {
  const [program, ...rest] = argv;
  if (program === undefined || program === '') {
    throw new MediaError('INVALID_OPTION', 'TTS command is empty');
  }
  if (program.includes('{')) {
    throw new MediaError('INVALID_OPTION', 'the TTS program name cannot contain a placeholder');
  }
  let hasOut = false;
  for (const arg of rest) {
    for (const match of arg.matchAll(PLACEHOLDER)) {
      const name = match[1] as string;
      if (!KNOWN.has(name)) {
        throw new MediaError('INVALID_OPTION', `unknown placeholder {${name}} in TTS command`);
      }
      if (name === 'out' || name === 'out_wav') hasOut = true;
    }
  }
  if (!hasOut) throw new MediaError('INVALID_OPTION', 'TTS command needs an {out} placeholder');
}

/** Substitutes the placeholders of one template (each argument stays one argument). */
export function substituteCommand(
  argv: readonly string[],
  values: Readonly<Record<string, string>>,
): string[] {
  return argv.map((arg, index) =>
    index === 0 ? arg : arg.replace(PLACEHOLDER, (all, name: string) => values[name] ?? all),
  );
}

/** Options of {@link CommandEngine}. */
export interface CommandEngineOptions {
  /** The command as an argument array (or a config string, split by {@link splitCommandLine}). */
  command: readonly string[] | string;
  /** Timeout of the program (and of each sox run), in ms. Default 30000. */
  timeoutMs?: number;
  /** sox executable. Default `sox`. */
  soxPath?: string;
  /**
   * What the program writes is detected from its content (WAV, MP3, Ogg, FLAC, AIFF, GSM);
   * set this when it writes headerless 8 kHz mono μ-law (`ulaw`) or A-law (`alaw`).
   * Default: headerless output is refused.
   */
  rawFormat?: RawAudioFormat;
}

/** The external-command engine. */
export class CommandEngine implements SpeechEngine {
  readonly name = 'command';
  readonly #argv: readonly string[];
  readonly #timeoutMs: number;
  readonly #soxPath: string | undefined;
  readonly #rawFormat: RawAudioFormat | undefined;

  constructor(options: CommandEngineOptions) {
    const argv =
      typeof options.command === 'string' ? splitCommandLine(options.command) : options.command;
    validateCommandTemplate(argv);
    this.#argv = [...argv];
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#soxPath = options.soxPath;
    this.#rawFormat = options.rawFormat;
  }

  /** See {@link SpeechEngine.synthesize}. */
  async synthesize(
    text: string,
    language: string,
    outPath: string,
    options: SynthesizeOptions = {},
  ): Promise<AudioInfo> {
    const cleaned = cleanText(text);
    const lang = normalizeLanguage(language);
    const dir = await mkdtemp(path.join(path.dirname(path.resolve(outPath)), '.tts-'));
    try {
      const textFile = path.join(dir, 'text.txt');
      const raw = path.join(dir, 'out.wav');
      await writeFile(textFile, cleaned, { mode: 0o600 });
      const values = {
        text: cleaned,
        text_file: textFile,
        out: raw,
        out_wav: raw,
        lang,
        language: lang,
      };
      const usesText = this.#argv.some((arg) => /\{text(_file)?\}/.test(arg));
      const [program, ...args] = substituteCommand(this.#argv, values) as [string, ...string[]];
      await runTool(program, args, {
        timeoutMs: this.#timeoutMs,
        ...(usesText ? {} : { input: cleaned }),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      return await convertForAsterisk(raw, outPath, {
        leadingSilenceS: options.leadingSilenceS ?? 0,
        timeoutMs: this.#timeoutMs,
        ...(this.#soxPath ? { soxPath: this.#soxPath } : {}),
        ...(this.#rawFormat ? { rawFormat: this.#rawFormat } : {}),
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
