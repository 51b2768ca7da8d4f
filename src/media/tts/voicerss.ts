/**
 * VoiceRSS (https://www.voicerss.org/api/): the TTS service the original Gong used.
 *
 * Request: `POST <url>` form-encoded `key`, `hl` (language-region, e.g. `en-us`, `ja-jp`),
 * `src` (the text), `c=WAV`, `f=8khz_16bit_mono` — POST rather than GET so the text and the
 * key stay out of URLs and access logs. VoiceRSS answers errors with HTTP 200 and a text body
 * starting with `ERROR` (e.g. `ERROR: The API key is not available!`): detected and thrown as
 * `TTS_SERVICE_ERROR`. The answer must be a WAV file (RIFF/WAVE header); it is written under a
 * name of ours and converted with sox reading it as WAV (8 kHz mono 16-bit).
 *
 * @module
 */
import { unlink, writeFile } from 'node:fs/promises';
import { type AudioInfo, convertForAsterisk, tempPathFor } from '../audio.ts';
import { MediaError } from '../errors.ts';
import { detectAudioFormatFromBytes } from '../format.ts';
import {
  cleanText,
  normalizeLanguage,
  type SpeechEngine,
  type SynthesizeOptions,
} from './engine.ts';

/** Default VoiceRSS endpoint (config `tts.voicerss.url`). */
export const VOICERSS_URL = 'https://api.voicerss.org/';

/** Region used when only a primary language is given (`en` → `en-us`). */
const DEFAULT_REGIONS: Readonly<Record<string, string>> = {
  ar: 'ar-sa',
  bg: 'bg-bg',
  ca: 'ca-es',
  cs: 'cs-cz',
  da: 'da-dk',
  de: 'de-de',
  el: 'el-gr',
  en: 'en-us',
  es: 'es-es',
  fi: 'fi-fi',
  fr: 'fr-fr',
  he: 'he-il',
  hi: 'hi-in',
  hr: 'hr-hr',
  hu: 'hu-hu',
  id: 'id-id',
  it: 'it-it',
  ja: 'ja-jp',
  ko: 'ko-kr',
  ms: 'ms-my',
  nb: 'nb-no',
  nl: 'nl-nl',
  pl: 'pl-pl',
  pt: 'pt-pt',
  ro: 'ro-ro',
  ru: 'ru-ru',
  sk: 'sk-sk',
  sl: 'sl-si',
  sv: 'sv-se',
  ta: 'ta-in',
  th: 'th-th',
  tr: 'tr-tr',
  vi: 'vi-vn',
  zh: 'zh-cn',
};

/** VoiceRSS's `hl` for a language code: `ja` → `ja-jp`, `en-GB` → `en-gb`. */
export function voiceRssLanguage(language: string): string {
  const code = normalizeLanguage(language);
  if (code.includes('-')) return code;
  const region = DEFAULT_REGIONS[code];
  if (region === undefined) {
    throw new MediaError('UNSUPPORTED_LANGUAGE', `VoiceRSS has no default region for ${code}`);
  }
  return region;
}

/** Options of {@link VoiceRssEngine}. */
export interface VoiceRssOptions {
  /** API key (config `tts.voicerss.apiKey`). Never logged, never in an error. */
  apiKey: string;
  /** Endpoint. Default {@link VOICERSS_URL}. */
  url?: string;
  /** Timeout of the HTTP request (and of each sox run), in ms. Default 15000. */
  timeoutMs?: number;
  /** Largest accepted answer, in bytes. Default 20 MiB. */
  maxResponseBytes?: number;
  /** sox executable. Default `sox`. */
  soxPath?: string;
  /** `fetch` implementation (tests). Default the global one. */
  fetch?: typeof fetch;
}

/** The VoiceRSS engine. */
export class VoiceRssEngine implements SpeechEngine {
  readonly name = 'voicerss';
  readonly #key: string;
  readonly #url: string;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #soxPath: string | undefined;
  readonly #fetch: typeof fetch;

  constructor(options: VoiceRssOptions) {
    if (options.apiKey === '') throw new MediaError('INVALID_OPTION', 'VoiceRSS needs an API key');
    this.#key = options.apiKey;
    this.#url = options.url ?? VOICERSS_URL;
    this.#timeoutMs = options.timeoutMs ?? 15_000;
    this.#maxBytes = options.maxResponseBytes ?? 20 * 1024 * 1024;
    this.#soxPath = options.soxPath;
    this.#fetch = options.fetch ?? fetch;
  }

  /** Fetches the WAV bytes for `text` (checked: not an `ERROR` answer, a RIFF/WAVE body). */
  async fetchAudio(text: string, language: string, signal?: AbortSignal): Promise<Buffer> {
    const body = new URLSearchParams({
      key: this.#key,
      hl: voiceRssLanguage(language),
      src: cleanText(text),
      c: 'WAV',
      f: '8khz_16bit_mono',
    });
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    let response: Response;
    try {
      response = await this.#fetch(this.#url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' },
        body,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (error) {
      if (timeout.aborted) {
        throw new MediaError('TIMEOUT', `VoiceRSS did not answer within ${this.#timeoutMs} ms`);
      }
      throw new MediaError('TTS_HTTP_ERROR', 'VoiceRSS request failed', String(error), {
        cause: error,
      });
    }
    const declared = Number(response.headers.get('content-length'));
    if (declared > this.#maxBytes) {
      await response.body?.cancel();
      throw new MediaError(
        'TTS_HTTP_ERROR',
        `VoiceRSS answer is larger than ${this.#maxBytes} bytes`,
      );
    }
    const data = Buffer.from(await response.arrayBuffer());
    if (data.length > this.#maxBytes) {
      throw new MediaError(
        'TTS_HTTP_ERROR',
        `VoiceRSS answer is larger than ${this.#maxBytes} bytes`,
      );
    }
    if (!response.ok) {
      throw new MediaError(
        'TTS_HTTP_ERROR',
        `VoiceRSS answered HTTP ${response.status}`,
        data.subarray(0, 500).toString('utf8'),
      );
    }
    const head = data.subarray(0, 512).toString('utf8').trimStart();
    if (head.startsWith('ERROR')) {
      const reason =
        head
          .split('\n')[0]
          ?.replace(/^ERROR:?\s*/, '')
          .slice(0, 200) ?? '';
      throw new MediaError('TTS_SERVICE_ERROR', `VoiceRSS error: ${reason || 'unknown'}`, head);
    }
    if (detectAudioFormatFromBytes(data, data.length) !== 'wav' || data.length < 44) {
      throw new MediaError('TTS_HTTP_ERROR', 'VoiceRSS answered something that is not a WAV file');
    }
    return data;
  }

  /** See {@link SpeechEngine.synthesize}. */
  async synthesize(
    text: string,
    language: string,
    outPath: string,
    options: SynthesizeOptions = {},
  ): Promise<AudioInfo> {
    const data = await this.fetchAudio(text, language, options.signal);
    const raw = tempPathFor(outPath);
    try {
      await writeFile(raw, data, { mode: 0o640 });
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
