/**
 * The `callout` section: alert calls (Barista API).
 * Schema and defaults are defined here, once; `src/config/schema.ts` composes the sections.
 *
 * @module
 */
import Type, { type Static } from 'typebox';
import { bool, CLOSED, formatted, int, oneOf, section, str } from '../config/section.ts';

/** Texts per id then per language, e.g. `{ "2": { "ja-jp": "...", "en": "..." } }`. */
const TextsById = (defaults: Record<string, Record<string, string>>, description: string) =>
  Type.Record(
    Type.String({ pattern: '^[0-9]+$' }),
    Type.Record(Type.String({ pattern: '^[a-z]{2}(-[a-z]{2})?$' }), Type.String(), {
      additionalProperties: CLOSED,
    }),
    { default: defaults, description, additionalProperties: CLOSED },
  );

/** `callout`: alert calls (Barista API, issue 4). */
export const CalloutSection = section(
  {
    enabled: bool(true, 'mount the Barista API (/api/v1/call)'),
    provider: oneOf(
      ['auto', 'asterisk', 'twilio', 'dryrun'],
      'auto',
      'auto = asterisk with an AMI server or the simulator, else dryrun',
    ),
    amiServers: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        'names of ami.servers to place alert calls through, best first (the first connected one is used); empty = every server, in ami.servers order',
    }),
    dialString: str('PJSIP/{telno}@trunk', 'Originate channel; {telno} is the validated number'),
    context: str('switchboard-callout', 'dialplan context the answered call enters'),
    callerId: str('', 'caller ID of alert calls; empty = the PBX default'),
    ringTimeoutS: int(30, 5, 600, 'ring time before no answer'),
    maxAddressees: int(50, 1, 1000, 'addressees per event'),
    maxRequestBytes: int(65_536, 1024, 10_485_760, 'largest POST /api/v1/call body'),
    mediaDir: str(
      './data/callout',
      'where announcement WAVs are written; must be readable by Asterisk at the same path',
    ),
    confirm: Type.Record(Type.String({ pattern: '^[a-z]{2}(-[a-z]{2})?$' }), Type.String(), {
      default: { 'ja-jp': '承知しました。', en: 'Acknowledged.' },
      description: 'confirmation played after a valid key, per language; empty = none',
    }),
    timeScale: Type.Number({
      default: 1,
      exclusiveMinimum: 0,
      maximum: 1,
      description: "multiplies the addressees' minimum intervals (tests: 0.01); 1 in production",
    }),
    pollIntervalMs: int(1_000, 10, 60_000, 'how often the escalation worker looks for due work'),
    attemptLeaseMs: int(
      300_000,
      500,
      3_600_000,
      'after this long without an outcome a call counts as unknown = no answer (never redialled)',
    ),
    batchSize: int(200, 1, 10_000, 'events decided per worker round'),
    pendingResultsMax: int(
      100_000,
      100,
      10_000_000,
      'call results (keys, outcomes) kept in memory while the database is unreachable; beyond: dropped and counted',
    ),
    dryRun: section(
      {
        delayMs: int(1_000, 0, 600_000, 'simulated call duration'),
        answer: str('1', 'simulated result: 1, 2 (keys), or noanswer, busy, failed'),
        numbers: Type.Record(Type.String({ pattern: '^\\+?[0-9]{1,32}$' }), Type.String(), {
          default: {},
          description: 'per-number simulated result, same values as answer',
        }),
      },
      'testflg=1 (dry run): simulated outcomes',
    ),
    head: TextsById(
      {
        '1': { 'ja-jp': '障害を検知しました。', en: 'A failure has been detected.' },
        '2': {
          'ja-jp': '障害を検知しました。サーバー名は、{hostname}。',
          en: 'A failure has been detected on server {hostname}.',
        },
      },
      'head texts by headid then language; {hostname} is replaced',
    ),
    foot: TextsById(
      {
        '1': {
          'ja-jp': '対応できる場合は1を、できない場合は2を押してください。',
          en: 'Press 1 if you can respond, or 2 if you cannot.',
        },
        '2': { 'ja-jp': '以上です。', en: 'End of message.' },
      },
      'foot texts by footid then language',
    ),
    twilio: section(
      {
        accountSid: str('', 'Twilio account SID'),
        authToken: str('', 'Twilio auth token (also validates X-Twilio-Signature)'),
        from: str('', 'caller number (E.164)'),
        baseUrl: formatted(
          'switchboard-http-url',
          'https://api.twilio.com',
          'Twilio REST base URL',
        ),
        publicUrl: formatted(
          'switchboard-http-url',
          '',
          'public base URL of this server for Twilio callbacks',
          true,
        ),
      },
      'Twilio provider',
    ),
  },
  'alert calls (Barista API)',
);

/** The `callout` section. */
export type CalloutConfig = Static<typeof CalloutSection>;
