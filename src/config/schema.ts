/**
 * The schema of Switchboard's one configuration file (YAML), written with TypeBox.
 *
 * Each section is its own exported schema object so that the module that uses it owns its
 * shape (`CalloutSection`, `PushSection`, ...); {@link ConfigSchema} assembles them. Every key
 * has a default, so an empty file is a valid configuration (the embedded default: SQLite file
 * `./data/switchboard.db`, in-process bus, HTTP on 127.0.0.1:8080, no Asterisk).
 *
 * TypeScript types are derived with `Static<>`; never repeat them by hand.
 * Custom string formats (`switchboard-*`) are registered in TypeBox's format registry when this
 * module is imported; {@link FORMAT_MESSAGES} holds the message each one reports.
 *
 * The commented reference of every key is `switchboard.example.yaml` at the repository root;
 * `docs/configuration.md` explains the environment-variable rule.
 */
import Type, { type Static, type TSchema } from 'typebox';
import Format from 'typebox/format';
import { AMI_CLIENT_DEFAULTS as AMI } from '../ami/defaults.ts';
import { AMQP_BUS_DEFAULTS as AMQP } from '../bus/defaults.ts';
import { isCidr } from '../util/cidr.ts';

// ---------------------------------------------------------------------------------------------
// Formats
// ---------------------------------------------------------------------------------------------

function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

function hasProtocol(value: string, protocols: string[]): boolean {
  const url = parseUrl(value);
  return url !== undefined && protocols.includes(url.protocol) && url.hostname !== '';
}

/** `HOST:PORT` with an IPv4 address, a host name or a bracketed IPv6 address, port 0–65535. */
function isListen(value: string): boolean {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  if (!match) return false;
  return Number(match[2]) <= 65535;
}

/**
 * Names and checks of the custom string formats used by the schema, and the message reported
 * (after the key) when a value does not match. Registered in TypeBox's global format registry
 * on import.
 */
export const FORMAT_MESSAGES: Record<string, string> = {
  'switchboard-listen': 'expected HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)',
  'switchboard-ami-url': 'expected an AMI URL (tcp://user:secret@host:5038 or tls://...)',
  'switchboard-amqp-url': 'expected a URL (amqp:// or amqps://)',
  'switchboard-http-url': 'expected a URL (http:// or https://)',
  'switchboard-redis-url': 'expected a URL (redis:// or rediss://)',
  'switchboard-database-url': 'expected a file path, sqlite:PATH, :memory: or postgres://',
  'switchboard-cidr': 'expected an IP address or CIDR network (e.g. 10.0.0.0/8, ::1/128)',
  'switchboard-uuid': 'expected a UUID (8-4-4-4-12 hexadecimal digits)',
};

const FORMAT_CHECKS: Record<string, (value: string) => boolean> = {
  'switchboard-listen': isListen,
  'switchboard-ami-url': (v) => hasProtocol(v, ['tcp:', 'tls:']),
  'switchboard-amqp-url': (v) => hasProtocol(v, ['amqp:', 'amqps:']),
  'switchboard-http-url': (v) => hasProtocol(v, ['http:', 'https:']),
  'switchboard-redis-url': (v) => hasProtocol(v, ['redis:', 'rediss:']),
  'switchboard-database-url': (v) =>
    v.startsWith('postgres://') || v.startsWith('postgresql://')
      ? hasProtocol(v, ['postgres:', 'postgresql:'])
      : v.length > 0 && !/^[a-z][a-z0-9+.-]*:\/\//i.test(v),
  'switchboard-cidr': isCidr,
  'switchboard-uuid': (v) =>
    /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v),
};
for (const [name, check] of Object.entries(FORMAT_CHECKS)) {
  Format.Set(name, check);
  Format.Set(`${name}-or-empty`, (v) => v === '' || check(v));
}

/**
 * A string in one of the formats above; `optional` also accepts the empty string ("not set").
 * `defaultValue` undefined makes the key required.
 */
function formatted(
  format: string,
  defaultValue: string | undefined,
  description: string,
  optional = false,
) {
  return Type.String({
    format: optional ? `${format}-or-empty` : format,
    description,
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
  });
}

function oneOf(values: string[], defaultValue: string, description: string) {
  return Type.Enum(values, { default: defaultValue, description });
}

function int(defaultValue: number, minimum: number, maximum: number, description: string) {
  return Type.Integer({ default: defaultValue, minimum, maximum, description });
}

function str(defaultValue: string, description: string, extra: object = {}) {
  return Type.String({ default: defaultValue, description, ...extra });
}

function bool(defaultValue: boolean, description: string) {
  return Type.Boolean({ default: defaultValue, description });
}

/** An object section: closed (unknown keys are errors), defaulting to `{}` filled by defaults. */
function section<P extends Record<string, TSchema>>(properties: P, description: string) {
  return Type.Object(properties, { additionalProperties: false, default: {}, description });
}

function item<P extends Record<string, TSchema>>(properties: P, description: string) {
  return Type.Object(properties, { additionalProperties: false, description });
}

// ---------------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------------

/** `instance`: identity of this Switchboard on the bus. */
export const InstanceSection = section(
  {
    uuid: formatted(
      'switchboard-uuid',
      '',
      'origin_uuid of bus messages; empty = derived from the host name and instance name',
      true,
    ),
    name: str('switchboard', 'instance name, shown in logs and service_registered_event'),
  },
  'identity of this instance',
);

/** `http`: the one HTTP server every API is mounted on. */
export const HttpSection = section(
  {
    listen: formatted('switchboard-listen', '127.0.0.1:8080', 'HOST:PORT of the HTTP server'),
    bodyLimitBytes: int(1_048_576, 1024, 1_073_741_824, 'largest accepted request body (bytes)'),
    trustProxy: Type.Union(
      [Type.Boolean(), Type.Array(Type.String({ format: 'switchboard-cidr' }))],
      {
        default: false,
        description:
          'false, or the reverse proxies (addresses/CIDRs) whose X-Forwarded-For gives the client IP',
      },
    ),
    docs: bool(true, 'serve the OpenAPI document and UI at /docs'),
    shutdownTimeoutMs: int(10_000, 0, 600_000, 'longest wait for in-flight requests at shutdown'),
    headersTimeoutMs: int(10_000, 100, 600_000, 'request line and headers must arrive within'),
    requestTimeoutMs: int(
      30_000,
      100,
      3_600_000,
      'a request body must arrive within this after its headers (else 408, connection closed)',
    ),
    uploadTimeoutMs: int(
      300_000,
      100,
      3_600_000,
      'the same for audio uploads (POST /messages/add)',
    ),
    keepAliveTimeoutMs: int(5_000, 100, 600_000, 'an idle keep-alive connection is closed after'),
    jsonMaxDepth: int(32, 1, 1_000, 'deepest nesting of arrays/objects accepted in a JSON body'),
    sseMaxStreams: int(100, 1, 100_000, 'concurrent /api/events streams; beyond: 503'),
    sseMaxBufferedBytes: int(
      1_048_576,
      1024,
      1_073_741_824,
      'bytes an /api/events client may fall behind before its connection is closed',
    ),
  },
  'HTTP server',
);

/** Log levels accepted by pino. */
export const LogLevel = oneOf(
  ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
  'info',
  'minimum level logged',
);

/** How logs are written: one readable line per entry, JSON lines, or pretty on a terminal only. */
export const LogFormat = oneOf(
  ['auto', 'pretty', 'json'],
  'auto',
  'auto = pretty on a terminal, JSON lines otherwise (journald, files, pipes)',
);

/** `log`: the process logs (pino; stdout, or stderr with `serve --print-events`). */
export const LogSection = section({ level: LogLevel, format: LogFormat }, 'logging');

/** One Asterisk server reached over AMI. */
export const AmiServer = item(
  {
    url: formatted(
      'switchboard-ami-url',
      undefined,
      'tcp://user:secret@host:5038 (tls:// for TLS); user and secret are the manager.conf login',
    ),
    name: str('', 'name in logs and metrics; empty = host:port'),
    auth: oneOf(['plain', 'md5'], AMI.auth, 'login method: plain secret or md5 challenge'),
    pingIntervalMs: int(AMI.pingIntervalMs, 0, 3_600_000, 'keep-alive Ping interval; 0 = never'),
    connectTimeoutMs: int(AMI.connectTimeoutMs, 100, 600_000, 'TCP (and TLS) connect timeout'),
    actionTimeoutMs: int(AMI.actionTimeoutMs, 100, 600_000, 'time to wait for an action response'),
    reconnectMinMs: int(
      AMI.reconnectInitialDelayMs,
      10,
      600_000,
      'first reconnect delay (doubles on each failure)',
    ),
    reconnectMaxMs: int(AMI.reconnectMaxDelayMs, 10, 3_600_000, 'longest reconnect delay'),
    tlsRejectUnauthorized: bool(true, 'verify the server certificate for tls://'),
  },
  'an Asterisk server',
);

/** `ami`: the Asterisk servers to connect to. */
export const AmiSection = section(
  {
    servers: Type.Array(AmiServer, { default: [], description: 'Asterisk servers' }),
    maxChannels: int(
      50_000,
      1,
      10_000_000,
      'live channels followed per server; beyond, the oldest are forgotten (counted, logged)',
    ),
    maxBridges: int(
      25_000,
      1,
      10_000_000,
      'live bridges followed per server; beyond, the oldest are forgotten (counted, logged)',
    ),
  },
  'Asterisk Manager Interface',
);

/** `amqp`: the XiVO-compatible message bus (RabbitMQ); empty url = in-process bus. */
export const AmqpSection = section(
  {
    url: formatted(
      'switchboard-amqp-url',
      '',
      'amqp://user:pass@host:5672/vhost; empty = in-process bus',
      true,
    ),
    exchange: str(AMQP.exchange, 'topic exchange name', { minLength: 1 }),
    persistent: bool(AMQP.persistent, 'publish messages as persistent (delivery mode 2)'),
    bufferSize: int(
      AMQP.bufferSize,
      0,
      10_000_000,
      'messages other than raw AMI events (call, callout, service, ...) kept while the broker is unreachable; beyond: dropped and counted',
    ),
    amiBufferSize: int(
      AMQP.amiBufferSize,
      1,
      10_000_000,
      'raw AMI events (ami.*) kept while the broker is unreachable, a budget of their own; beyond: dropped first, counted',
    ),
    heartbeatS: int(AMQP.heartbeatS, 0, 3600, 'AMQP heartbeat'),
    reconnectMinMs: int(
      AMQP.reconnectInitialDelayMs,
      10,
      600_000,
      'first reconnect delay (doubles on each failure)',
    ),
    reconnectMaxMs: int(AMQP.reconnectMaxDelayMs, 10, 3_600_000, 'longest reconnect delay'),
  },
  'message bus',
);

/** `database`: where durable state lives. */
export const DatabaseSection = section(
  {
    url: formatted(
      'switchboard-database-url',
      './data/switchboard.db',
      'SQLite file path (or sqlite:PATH, :memory:) or postgres://user:pass@host/db',
    ),
    poolSize: int(10, 1, 1000, 'PostgreSQL pool size'),
    schema: str('', 'PostgreSQL schema for every table (created if missing); empty: public'),
    busyTimeoutMs: int(5_000, 0, 600_000, 'SQLite busy timeout'),
    connectTimeoutMs: int(
      5_000,
      100,
      600_000,
      'PostgreSQL: longest wait for a connection (a new one, or a free one of the pool); then the database counts as unreachable',
    ),
    retryAfterS: int(
      5,
      1,
      3_600,
      'Retry-After of the 503 answered while the database is unreachable',
    ),
  },
  'database',
);

/** `redis`: optional; coordinates several processes (push responses). */
export const RedisSection = section(
  {
    url: formatted(
      'switchboard-redis-url',
      '',
      'redis://[:pass@]host:6379/0; empty = not used',
      true,
    ),
    keyPrefix: str('switchboard:', 'prefix of every key and channel'),
  },
  'Redis',
);

/** One webhook endpoint receiving call events. */
export const WebhookEndpoint = item(
  {
    url: formatted('switchboard-http-url', undefined, 'URL call events are POSTed to'),
    name: str(
      '',
      'name in logs and metrics (the URL never is: it may carry a token); empty = the URL host',
      { pattern: '^[A-Za-z0-9._:-]*$', maxLength: 64 },
    ),
    secret: str('', 'HMAC-SHA256 key of the signature header; empty = unsigned'),
    events: Type.Array(Type.String({ minLength: 1 }), {
      default: ['#'],
      description:
        'call event kinds sent (e.g. hangup, up), or routing-key patterns (call.*, # any); empty = every call event',
    }),
    maxRetries: int(5, 0, 100, 'retries after a failure, with exponential backoff'),
    timeoutMs: int(5_000, 100, 600_000, 'request timeout'),
  },
  'a webhook',
);

/** `webhooks`: call events POSTed as JSON. */
export const WebhooksSection = section(
  {
    endpoints: Type.Array(WebhookEndpoint, { default: [], description: 'webhook endpoints' }),
    retryBaseMs: int(1_000, 10, 600_000, 'first retry delay (doubles on each retry)'),
  },
  'webhooks',
);

/** What the simulated PBX does when a number is called. */
export const SimulatorScript = item(
  {
    outcome: oneOf(
      ['answer', 'busy', 'noanswer', 'congestion', 'fail'],
      'answer',
      'what happens to the call',
    ),
    answerAfterMs: int(2_000, 0, 600_000, 'ringing time before the outcome'),
    dtmf: str('', 'keys pressed after answering, e.g. "1"', { pattern: '^[0-9*#A-D]*$' }),
    dtmfAfterMs: int(1_000, 0, 600_000, 'delay between answer and the first key'),
    hangupAfterMs: int(5_000, 0, 3_600_000, 'call duration after answer'),
  },
  'scripted behaviour of one number',
);

/** `simulator`: the fake Asterisk (`switchboard sim`, and `npm start`). */
export const SimulatorSection = section(
  {
    enabled: bool(false, 'run the simulator inside serve and connect to it'),
    listen: formatted('switchboard-listen', '127.0.0.1:5038', 'HOST:PORT the fake AMI listens on'),
    username: str('switchboard', 'AMI login accepted'),
    secret: str('switchboard', 'AMI secret accepted'),
    recording: str('', 'recorded session replayed in a loop; empty = the shipped demo recording'),
    loop: bool(true, 'replay the recording forever'),
    loopGapMs: int(1_000, 0, 3_600_000, 'pause between two replays'),
    defaultScript: Type.Object(SimulatorScript.properties, {
      additionalProperties: false,
      default: {},
      description: 'behaviour of numbers not in scripts',
    }),
    scripts: Type.Record(Type.String({ pattern: '^[0-9+*#]+$' }), SimulatorScript, {
      default: {},
      additionalProperties: false,
      description: 'behaviour per called number',
    }),
  },
  'PBX simulator',
);

/** A credential for the HTTP APIs (`modules` empty = every module). */
const Modules = Type.Array(Type.String({ minLength: 1 }), {
  default: [],
  description:
    'modules this credential may use (callout, announce, cti, events, console, ...); empty = all',
});

/** An API token accepted as `Authorization: Bearer <token>`. */
export const ApiToken = item(
  {
    name: str('', 'who uses it (logged instead of the token)'),
    token: Type.String({ minLength: 16, description: 'the token (at least 16 characters)' }),
    modules: Modules,
  },
  'an API token',
);

/** A Basic-auth user. */
export const BasicUser = item(
  {
    username: Type.String({ minLength: 1, pattern: '^[^:]+$', description: 'user name' }),
    password: Type.String({ minLength: 8, description: 'password (at least 8 characters)' }),
    modules: Modules,
  },
  'a Basic-auth user',
);

/** `auth`: the access rule of the Barista, Gong and CTI APIs. */
export const AuthSection = section(
  {
    tokens: Type.Array(ApiToken, { default: [], description: 'Bearer tokens' }),
    users: Type.Array(BasicUser, { default: [], description: 'Basic users' }),
    allowNetworks: Type.Array(Type.String({ format: 'switchboard-cidr' }), {
      default: [],
      description: 'networks allowed without a credential (CIDR, IPv4 or IPv6)',
    }),
    allowLoopback: bool(true, 'allow 127.0.0.0/8 and ::1 without a credential'),
  },
  'access rule of the HTTP APIs',
);

/** Texts per id then per language, e.g. `{ "2": { "ja-jp": "...", "en": "..." } }`. */
const TextsById = (defaults: Record<string, Record<string, string>>, description: string) =>
  Type.Record(
    Type.String({ pattern: '^[0-9]+$' }),
    Type.Record(Type.String({ pattern: '^[a-z]{2}(-[a-z]{2})?$' }), Type.String(), {
      additionalProperties: false,
    }),
    { default: defaults, description, additionalProperties: false },
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

/** `jenkins`: the failed-job watcher (issue 5). */
export const JenkinsSection = section(
  {
    enabled: bool(false, 'watch Jenkins and announce failed jobs'),
    url: formatted('switchboard-http-url', '', 'Jenkins base URL', true),
    user: str('', 'Jenkins user'),
    token: str('', 'Jenkins API token'),
    intervalS: int(60, 1, 86_400, 'poll interval'),
    extension: str('', 'ringer extension announcements go to; empty = announce.extension'),
    failColors: Type.Array(Type.String({ minLength: 1 }), {
      default: ['red', 'yellow'],
      description:
        'job colors counted as failed (red = failed, yellow = unstable); a building job (*_anime) counts as the color it carries',
    }),
    template: str('Jenkins job {job} has failed.', 'sentence per failed job; {job} {url} {color}'),
    recoveryTemplate: str('', 'sentence when a job recovers; empty = no announcement'),
    firstPoll: oneOf(
      ['record', 'announce'],
      'record',
      'first poll with no stored state: record = only record it, announce = announce every failed job (as xgong-jenkins with an empty state file)',
    ),
    language: str('en', 'TTS language', { pattern: '^[a-z]{2}(-[a-z]{2})?$' }),
    window: section(
      {
        weekdays: Type.Array(Type.Integer({ minimum: 0, maximum: 6 }), {
          default: [],
          description: 'days announcements are made (0 = Sunday); empty = every day',
        }),
        fromHour: int(0, 0, 24, 'first hour (local time, inclusive)'),
        toHour: int(24, 0, 24, 'last hour (local time, exclusive)'),
      },
      'when announcements are made',
    ),
  },
  'Jenkins watcher',
);

/** Push platforms of `push.apps[].platforms`: `apns` (`/api/apns-device/`) or `fcm` (`/api/gcm-device/`, `/api/android-device/`). */
export const PushPlatform = Type.Enum(['apns', 'fcm'], { description: 'apns or fcm' });

/**
 * One `push.apps` entry: an app the middleware knows (the original's `App` rows: app id and
 * platform, with that app's push credentials). Empty credentials fall back to `push.apns.*` /
 * `push.fcm.*`.
 */
export const PushApp = item(
  {
    id: Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
      description: 'the app identifier the apps send as `app` (bundle id / package name)',
    }),
    platforms: Type.Array(PushPlatform, {
      default: ['apns', 'fcm'],
      minItems: 1,
      description: 'platforms this app registers on',
    }),
    apns: section(
      {
        topic: str('', 'bundle id (".voip" is appended); empty = push.apns.topic, else the app id'),
        keyFile: str('', '.p8 key file; empty = push.apns.keyFile'),
        keyId: str('', 'key id of keyFile; empty = push.apns.keyId'),
        teamId: str('', 'Apple team id; empty = push.apns.teamId'),
        certFile: str('', 'certificate (PEM) instead of a key; empty = push.apns.certFile'),
        certKeyFile: str('', 'private key (PEM) of certFile; empty = push.apns.certKeyFile'),
        certPassphrase: str('', 'passphrase of certKeyFile; empty = push.apns.certPassphrase'),
      },
      "this app's APNs credentials",
    ),
    fcm: section(
      {
        serviceAccountFile: str(
          '',
          'service-account JSON file; empty = push.fcm.serviceAccountFile',
        ),
        projectId: str('', 'Firebase project id; empty = push.fcm.projectId, else the file'),
      },
      "this app's FCM credentials",
    ),
  },
  'an app known to the push middleware',
);

/** `push`: mobile wake-up (VoIPGRID push middleware API, issues 6 and 12). */
export const PushSection = section(
  {
    enabled: bool(true, 'mount the push middleware API (/api/incoming-call/ ...)'),
    budgetMs: int(4_000, 100, 60_000, 'longest hold of an incoming-call request'),
    intervalMs: int(1_000, 100, 60_000, 'push re-send interval'),
    maxPushes: int(3, 1, 100, 'pushes per call and device'),
    allowNetworks: Type.Array(Type.String({ format: 'switchboard-cidr' }), {
      default: [],
      description: 'PBX networks allowed to POST /api/incoming-call/ (loopback always allowed)',
    }),
    devicesPerAccount: oneOf(
      ['one', 'several'],
      'one',
      "one: a registration replaces the SIP account's device (the original); several: every device is pushed",
    ),
    apps: Type.Array(PushApp, {
      default: [{ id: 'com.voipgrid.vialer', platforms: ['apns', 'fcm'] }],
      description: 'the apps devices may register for; any other `app` is answered 404',
    }),
    accountApi: section(
      {
        baseUrl: formatted(
          'switchboard-http-url',
          '',
          'account API (e.g. https://partner.voipgrid.nl); empty = users below',
          true,
        ),
        profilePath: str(
          '/api/permission/systemuser/profile/',
          "path of the user's profile, GET with the app's Authorization header",
          { pattern: '^/' },
        ),
        appAccountField: str(
          'app_account',
          "profile field holding the path of the user's phone account",
          { minLength: 1 },
        ),
        accountIdField: str('account_id', 'phone-account field compared with sip_user_id', {
          minLength: 1,
        }),
        url: formatted(
          'switchboard-http-url',
          '',
          'deprecated: a full profile URL; use baseUrl + profilePath',
          true,
        ),
        cacheTtlS: int(60, 0, 86_400, 'how long an answer is cached'),
        timeoutMs: int(2_000, 100, 60_000, 'request timeout'),
      },
      'external account API (the VoIPGRID API shape by default)',
    ),
    users: Type.Array(
      item(
        {
          username: Type.String({ minLength: 1, pattern: '^[^:]+$' }),
          password: Type.String({ minLength: 8 }),
          sipUserIds: Type.Array(Type.String({ pattern: '^[0-9]{9}$' }), { default: [] }),
        },
        'a static app user',
      ),
      { default: [], description: 'static users (when no account API)' },
    ),
    apns: section(
      {
        keyFile: str('', '.p8 token-signing key file (default of every app)'),
        keyId: str('', 'key id of the .p8 key'),
        teamId: str('', 'Apple team id'),
        topic: str('', 'bundle id (".voip" is appended); empty = each app\'s id'),
        certFile: str('', 'certificate (PEM) for certificate authentication instead of a key'),
        certKeyFile: str('', 'private key (PEM) of certFile'),
        certPassphrase: str('', 'passphrase of certKeyFile'),
        host: str('api.push.apple.com', 'production host'),
        sandboxHost: str('api.sandbox.push.apple.com', 'sandbox host'),
        port: int(443, 1, 65535, 'port'),
        caFile: str('', 'extra CA (PEM) trusted, for tests'),
      },
      'Apple Push Notification service',
    ),
    fcm: section(
      {
        serviceAccountFile: str('', 'service-account JSON file (default of every app)'),
        projectId: str('', 'project id; empty = from the service account'),
        baseUrl: formatted('switchboard-http-url', 'https://fcm.googleapis.com', 'FCM base URL'),
        tokenUrl: formatted(
          'switchboard-http-url',
          'https://oauth2.googleapis.com/token',
          'OAuth2 token URL',
        ),
      },
      'Firebase Cloud Messaging HTTP v1',
    ),
  },
  'mobile wake-up (push middleware API)',
);

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

export const RetentionSection = section(
  {
    historyDays: int(
      30,
      0,
      36_500,
      'days finished alert-call escalations (with their people and calls) and finished announcements are kept; 0 = forever. Pending ones are never deleted',
    ),
    mediaGraceMinutes: int(
      60,
      0,
      100_000,
      'converted audio (one WAV per escalation, per announcement) is deleted this long after the escalation or announcement finished',
    ),
    ttsCacheDays: int(
      30,
      0,
      36_500,
      'speech cache entries not used for this many days are deleted; 0 = no age limit',
    ),
    ttsCacheMaxMB: int(
      256,
      0,
      1_048_576,
      'largest size of each speech cache directory, in MB (1,048,576 bytes); the least recently used entries go first; 0 = no cap',
    ),
    intervalMinutes: int(60, 1, 10_080, 'how often serve applies these rules (also once at start)'),
  },
  'what serve deletes, and when',
);

/** The whole configuration file. */
export const ConfigSchema = Type.Object(
  {
    instance: InstanceSection,
    http: HttpSection,
    log: LogSection,
    ami: AmiSection,
    amqp: AmqpSection,
    database: DatabaseSection,
    redis: RedisSection,
    webhooks: WebhooksSection,
    simulator: SimulatorSection,
    auth: AuthSection,
    callout: CalloutSection,
    announce: AnnounceSection,
    jenkins: JenkinsSection,
    push: PushSection,
    tts: TtsSection,
    retention: RetentionSection,
  },
  { additionalProperties: false, default: {} },
);

/** The validated configuration (every key present, defaults applied). */
export type Config = Static<typeof ConfigSchema>;
/** One `ami.servers` entry. */
export type AmiServerConfig = Static<typeof AmiServer>;
/** One `webhooks.endpoints` entry. */
export type WebhookEndpointConfig = Static<typeof WebhookEndpoint>;
/** The `auth` section (also accepted by {@link createAccessRule} in `src/http/auth.ts`). */
export type AuthConfig = Static<typeof AuthSection>;
/** The `callout` section. */
export type CalloutConfig = Static<typeof CalloutSection>;
/** The `announce` section. */
export type AnnounceConfig = Static<typeof AnnounceSection>;
/** The `jenkins` section. */
export type JenkinsConfig = Static<typeof JenkinsSection>;
/** The `push` section. */
export type PushConfig = Static<typeof PushSection>;
/** One `push.apps` entry. */
export type PushAppConfig = Static<typeof PushApp>;
/** The `tts` section. */
export type TtsConfig = Static<typeof TtsSection>;
/** The `retention` section. */
export type RetentionConfig = Static<typeof RetentionSection>;
/** The `simulator` section. */
export type SimulatorConfig = Static<typeof SimulatorSection>;
/** One simulator script. */
export type SimulatorScriptConfig = Static<typeof SimulatorScript>;
