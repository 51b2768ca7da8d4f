/**
 * The `tts` section: speech synthesis.
 * Schema and defaults are defined here, once; `src/config/schema.ts` composes the sections.
 *
 * @module
 */
import type { Static } from 'typebox';
import { formatted, oneOf, section, str } from '../../config/section.ts';

/** `tts`: speech synthesis shared by alert calls and announcements. */
export const TtsSection = section(
  {
    engine: oneOf(
      ['espeak', 'voicerss', 'command'],
      'espeak',
      'espeak (offline), voicerss or command',
    ),
    espeakBinary: str('espeak-ng', 'espeak-ng executable'),
    voicerss: section(
      {
        apiKey: str('', 'VoiceRSS API key'),
        url: formatted('switchboard-http-url', 'https://api.voicerss.org/', 'VoiceRSS endpoint'),
      },
      'VoiceRSS',
    ),
    command: str('', 'external command: {text_file} {out_wav} {language} are replaced'),
  },
  'speech synthesis',
);

/** The `tts` section. */
export type TtsConfig = Static<typeof TtsSection>;
