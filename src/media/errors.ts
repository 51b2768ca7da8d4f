/**
 * Typed errors of the media layer (audio conversion and speech synthesis).
 *
 * Messages are short and readable: they never carry a raw sox/espeak-ng stderr dump nor an
 * API key. The tool's stderr (trimmed, at most 2,000 characters) is kept in `detail` for logs.
 *
 * @module
 */

/** The Debian packages that bring the external tools (sox with its formats, espeak-ng). */
export const INSTALL_TOOLS = 'apt-get install sox libsox-fmt-all espeak-ng';

/** What went wrong in a {@link MediaError}. */
export type MediaErrorCode =
  /** The input is not audio sox can read (corrupt despite an allowed header, no samples). */
  | 'NOT_AUDIO'
  /**
   * The input's content is none of the allowed formats (WAV, MP3, Ogg Vorbis/Opus, FLAC,
   * AIFF, GSM; raw μ-law/A-law only when declared), or sox lacks the handler of its format.
   * The message starts with `unsupported audio format`.
   */
  | 'UNSUPPORTED_FORMAT'
  /** The audio is longer than the caller's limit (`maxDurationS`). */
  | 'TOO_LONG'
  /** The input file does not exist or cannot be read. */
  | 'INPUT_MISSING'
  /** An external program ran longer than its timeout and was killed. */
  | 'TIMEOUT'
  /** An external program (sox, espeak-ng, a TTS command) is not installed / not executable. */
  | 'TOOL_MISSING'
  /** An external program exited with an error. */
  | 'TOOL_FAILED'
  /** Text to synthesize is empty (after trimming). */
  | 'EMPTY_TEXT'
  /** Language code malformed or not supported by the engine. */
  | 'UNSUPPORTED_LANGUAGE'
  /** The TTS service answered an error (VoiceRSS: HTTP 200 with a body starting with `ERROR`). */
  | 'TTS_SERVICE_ERROR'
  /** The TTS service could not be reached, answered a non-2xx status or non-audio data. */
  | 'TTS_HTTP_ERROR'
  /** An option is invalid (bad input type, bad command template, ...). */
  | 'INVALID_OPTION';

/** The one error class of `src/media/`; switch on {@link MediaError.code}. */
export class MediaError extends Error {
  /** Machine-readable reason. */
  readonly code: MediaErrorCode;
  /** Tool stderr or service answer, trimmed (for logs; may be empty). Never holds a secret. */
  readonly detail: string;
  constructor(code: MediaErrorCode, message: string, detail = '', options?: ErrorOptions) {
    super(message, options);
    this.name = 'MediaError';
    this.code = code;
    this.detail = detail.trim().slice(0, 2000);
  }
}
