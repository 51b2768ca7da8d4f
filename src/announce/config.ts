/**
 * The `announce` section: announcements (Gong API).
 * Schema and defaults are defined here, once; `src/config/schema.ts` composes the sections.
 *
 * @module
 */
import Type, { type Static } from 'typebox';
import { bool, formatted, int, oneOf, section, str } from '../config/section.ts';

/** `announce`: announcements on a loud ringer (Gong API, issue 5). */
export const AnnounceSection = section(
  {
    enabled: bool(true, 'mount the Gong API (/messages)'),
    listen: formatted(
      'switchboard-listen',
      '127.0.0.1:9600',
      "HOST:PORT of a second listener serving only the Gong API (Gong's port 9600), besides http.listen; empty = off",
      true,
    ),
    playback: oneOf(
      ['auto', 'originate', 'callfile'],
      'auto',
      'auto = originate when AMI is configured, else callfile',
    ),
    amiServers: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        'names of ami.servers to play announcements through (originate), best first (the first connected one is used); empty = every server, in ami.servers order',
    }),
    dialString: str(
      'Local/{extension}',
      'channel of the ringer; {extension} is validated (Gong: Local/{extension})',
    ),
    extension: str(
      '42300@default',
      "ringer extension used when a request gives none (always allowed; Gong's default); empty = required",
    ),
    allowedExtensions: Type.Array(Type.String({ minLength: 1, maxLength: 80 }), {
      default: [],
      description:
        'other extensions a request may give: exact values, or patterns starting with _ (X 0-9, Z 1-9, N 2-9, [1-5], final . or !); see docs/security.md',
    }),
    context: str(
      'switchboard-announce',
      "dialplan context that plays the message (Gong's installed dialplan: xgong)",
    ),
    contextExtension: str('s', 'extension in announce.context the answered call enters', {
      pattern: '^[0-9A-Za-z_*#+.-]{1,80}$',
    }),
    soundVariable: str(
      'SWITCHBOARD_MESSAGE',
      "channel variable holding the sound file without .wav (Gong's dialplan: AUDIO_FILE)",
      { pattern: '^[A-Za-z][A-Za-z0-9_]{0,63}$' },
    ),
    spoolDir: str('/var/spool/asterisk/outgoing', 'Asterisk call-file spool directory'),
    soundsDir: str('./data/sounds', 'where converted audio files are kept'),
    ringTimeS: int(30, 1, 600, 'ring time of the ringer'),
    gapS: int(5, 0, 3600, 'pause between two messages'),
    leadingSilenceMs: int(
      1_000,
      0,
      60_000,
      'silence added before a message to an extension the request gave (Gong: 1 s)',
    ),
    defaultLeadingSilenceMs: int(
      3_000,
      0,
      60_000,
      'silence added before a message without extension, played on announce.extension (Gong: 3 s)',
    ),
    uploadLimitBytes: int(20_971_520, 1024, 1_073_741_824, 'largest audio upload'),
    rawAudioFormat: oneOf(
      ['none', 'ulaw', 'alaw'],
      'none',
      'how uploads without a known header are read (8 kHz mono raw); none = refused',
    ),
    maxDurationS: int(
      120,
      1,
      3_600,
      'longest announcement (upload or TTS), leading silence excluded',
    ),
    maxPending: int(100, 1, 100_000, 'most messages scheduled or playing at once; more = 409'),
    textLimitChars: int(1_000, 1, 100_000, 'longest TTS text'),
    maxRetries: int(2, 0, 100, 'call-file MaxRetries'),
    retryTimeS: int(60, 1, 86_400, 'call-file RetryTime'),
    callerId: str('Switchboard', 'caller ID shown on the ringer'),
    language: str('en', 'default TTS language', { pattern: '^[a-z]{2}(-[a-z]{2})?$' }),
  },
  'announcements (Gong API)',
);

/** The `announce` section. */
export type AnnounceConfig = Static<typeof AnnounceSection>;
