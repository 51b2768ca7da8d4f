/**
 * Speech synthesis: the {@link SpeechEngine} contract, the three engines and a factory from
 * the `tts` config section.
 *
 * @module
 */
import type { TtsConfig } from '../../config/schema.ts';
import { CachedEngine } from './cache.ts';
import { CommandEngine } from './command.ts';
import type { SpeechEngine } from './engine.ts';
import { EspeakEngine } from './espeak.ts';
import { VoiceRssEngine } from './voicerss.ts';

export {
  CachedEngine,
  type CacheOptions,
  type PruneCacheOptions,
  pruneSpeechCache,
  speechCacheKey,
} from './cache.ts';
export {
  CommandEngine,
  type CommandEngineOptions,
  splitCommandLine,
  substituteCommand,
  validateCommandTemplate,
} from './command.ts';
export {
  cleanText,
  normalizeLanguage,
  primaryLanguage,
  type SpeechEngine,
  type SynthesizeOptions,
} from './engine.ts';
export { EspeakEngine, type EspeakOptions, espeakInput, parseVoiceList } from './espeak.ts';
export { getTokenizer, KANJI, kuromojiDictionaryPath, toKana, warmUpJapanese } from './japanese.ts';
export {
  VOICERSS_URL,
  VoiceRssEngine,
  type VoiceRssOptions,
  voiceRssLanguage,
} from './voicerss.ts';

/** Options of {@link createSpeechEngine} beyond the config section. */
export interface CreateSpeechEngineOptions {
  /** Disk cache directory; no cache when omitted. */
  cacheDir?: string;
  /** Timeout of each external program / HTTP request, in ms. */
  timeoutMs?: number;
}

/**
 * The engine the `tts` section selects: `espeak` (`tts.espeakBinary`), `voicerss`
 * (`tts.voicerss.apiKey`, `tts.voicerss.url`) or `command` (`tts.command`, split into an
 * argument array by `splitCommandLine`; placeholders `{text}` `{text_file}` `{out}`
 * `{out_wav}` `{lang}` `{language}`), wrapped in a {@link CachedEngine} when `cacheDir` is
 * given. Files for Asterisk are always 8 kHz mono 16-bit.
 *
 * @throws {MediaError} `INVALID_OPTION`: voicerss without an API key, a bad command template.
 */
export function createSpeechEngine(
  config: TtsConfig,
  options: CreateSpeechEngineOptions = {},
): SpeechEngine {
  const timeout = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
  let engine: SpeechEngine;
  if (config.engine === 'voicerss') {
    engine = new VoiceRssEngine({
      apiKey: config.voicerss.apiKey,
      url: config.voicerss.url,
      ...timeout,
    });
  } else if (config.engine === 'command') {
    engine = new CommandEngine({ command: config.command, ...timeout });
  } else {
    engine = new EspeakEngine({ binary: config.espeakBinary, ...timeout });
  }
  return options.cacheDir === undefined
    ? engine
    : new CachedEngine(engine, { dir: options.cacheDir });
}
