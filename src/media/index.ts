/**
 * Media for Asterisk: sox conversion and measurement (`audio.ts`) and speech synthesis
 * (`tts/`). Everything external runs through `spawn` with argument arrays and timeouts.
 *
 * @module
 */
export {
  ASTERISK_AUDIO,
  type AudioInfo,
  type ConvertOptions,
  convertForAsterisk,
  DEFAULT_SOX_TIMEOUT_MS,
  measureDurationS,
  probeAudio,
  readWavInfo,
  type SoxOptions,
  tempPathFor,
  writeAtomically,
} from './audio.ts';
export { MediaError, type MediaErrorCode } from './errors.ts';
export { type RunToolOptions, type RunToolResult, runTool } from './exec.ts';
export {
  AUDIO_FORMATS,
  type AudioFormat,
  type AudioFormatName,
  type DetectOptions,
  detectAudioFormat,
  detectAudioFormatFromBytes,
  looksLikeText,
  type RawAudioFormat,
  requireSoxHandler,
  soxHandlers,
} from './format.ts';
export * from './tts/index.ts';
