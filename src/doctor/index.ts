/**
 * `switchboard doctor`: checks what the service needs on this machine and from the servers
 * its configuration names, one result per check (one line each), without starting anything.
 *
 * Checks, in order: the configuration; sox and the audio handlers of the upload allow-list
 * (WAV and MP3 required: `libsox-fmt-all`); espeak-ng and its voices, Japanese included
 * (when `tts.engine` is `espeak`); the database (SQLite: its directory; PostgreSQL: a login
 * and `select version()`); each Asterisk server (`ami.servers`: login, then every
 * {@link AmiProbe} of {@link DEFAULT_AMI_PROBES}: `Ping`, and the manager user's permission
 * classes found by `amiPermissions()`, one FAIL line per missing class naming what it breaks);
 * Redis (`PING`) and RabbitMQ (a connection)
 * when configured; the call-file spool directory when announcements are placed as call files.
 * Network checks run in parallel, each bounded by `timeoutMs`.
 *
 * Every detail is safe to print: URLs lose their passwords, secrets never appear.
 *
 * @module
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { AmiClient } from '../ami/client.ts';
import {
  type AmiFeature,
  amiPermissions,
  describeMissing,
  describeNeed,
  permissionProblems,
  ReadEvidence,
} from '../ami/permissions.ts';
import type { AmiServerConfig, Config } from '../config/schema.ts';
import { INSTALL_TOOLS, MediaError } from '../media/errors.ts';
import { runTool } from '../media/exec.ts';
import { AUDIO_FORMATS, soxHandlers } from '../media/format.ts';
import { EspeakEngine } from '../media/tts/espeak.ts';
import type { Feature } from '../serve/module.ts';
import { FEATURES } from '../serve/modules.ts';
import { amiClientOptions, amiFeatures, checkServiceConfig } from '../serve/service.ts';
import { redactUrl } from '../util/redact.ts';
import { withTimeout } from '../util/timeout.ts';
import type { DoctorResult } from './result.ts';

export type { DoctorResult } from './result.ts';

/** The Debian packages that bring the external tools. */
export { INSTALL_TOOLS };

/** Default bound of each network check, ms. */
export const DOCTOR_TIMEOUT_MS = 5000;

/** Options of {@link runDoctor}. */
export interface DoctorOptions {
  /** Bound of each network check (connect, login, first answer), ms. Default {@link DOCTOR_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Probes run on each AMI connection after the login. Default {@link DEFAULT_AMI_PROBES}. */
  amiProbes?: readonly AmiProbe[];
  /**
   * The features whose checks run (config, AMI permissions, their own lines, their
   * languages). Default every feature of `serve` (`FEATURES`, src/serve/modules.ts).
   */
  features?: readonly Feature[];
}

/** What an {@link AmiProbe} is given besides the client and the server's configuration. */
export interface AmiProbeContext {
  /** The features the configuration uses on this server (`amiFeatures` of `serve`). */
  features: readonly AmiFeature[];
  /** The read classes the connection's events proved since the login. */
  evidence: ReadEvidence;
}

/** What an {@link AmiProbe} found: a phrase for the server's line, and failure lines. */
export interface AmiProbeResult {
  /** Added to the server's line (what was found). */
  note?: string;
  /** Each a FAIL line of its own (`ami <name> classes: ...`). */
  failures?: readonly string[];
}

/**
 * A check run on a logged-in AMI connection (after the login succeeded), e.g. that the
 * manager user's permission classes allow what Switchboard does. Resolves with a phrase to
 * add to the line (or undefined), or with an {@link AmiProbeResult}; rejects with what is
 * wrong: the server's check fails with it.
 */
export type AmiProbe = (
  client: AmiClient,
  server: AmiServerConfig,
  context: AmiProbeContext,
) => Promise<string | undefined | AmiProbeResult>;

/** `Ping`: the connection answers actions. */
export const pingProbe: AmiProbe = async (client, server) => {
  await client.action({ Action: 'Ping' }, { timeoutMs: server.actionTimeoutMs });
  return undefined;
};

/**
 * The manager user's permission classes (`amiPermissions()`: `ListCommands` and a
 * `UserEvent` probe, plus what the events since the login proved) against what the
 * configured features need (`AMI_REQUIREMENTS`): one failure line per missing class naming
 * the features it breaks and the `manager.conf` fix; the classes Asterisk cannot be asked
 * about (read `call`, `agent` before any such event) are noted as not confirmed.
 */
export const permissionsProbe: AmiProbe = async (client, server, context) => {
  const permissions = await amiPermissions(client, {
    evidence: context.evidence,
    actionTimeoutMs: server.actionTimeoutMs,
  });
  const problems = permissionProblems(permissions, context.features);
  const prefix = `${client.name}: `;
  const failures = describeMissing(client.name, problems).map((line) =>
    line.startsWith(prefix) ? line.slice(prefix.length) : line,
  );
  const unknown = [
    ...new Set(problems.filter((p) => p.state === 'unknown').map((p) => describeNeed(p))),
  ];
  const checked = `classes checked for ${context.features.join(', ')}`;
  return {
    note:
      unknown.length === 0
        ? checked
        : `${checked}; not confirmed: ${unknown.join(', ')} (Asterisk does not tell before an event of the class)`,
    failures,
  };
};

/** The probes `doctor` runs on each AMI server; add a probe here to extend the AMI check. */
export const DEFAULT_AMI_PROBES: readonly AmiProbe[] = [pingProbe, permissionsProbe];

function message(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
}

/** The configuration checks `serve` makes at start, beyond the schema. */
export function checkConfig(
  config: Config,
  files: string[],
  features: readonly Feature[] = FEATURES,
): DoctorResult {
  const problems = checkServiceConfig(config, features);
  if (problems.length > 0) {
    return {
      name: 'config',
      ok: false,
      detail: problems.map((p) => `${p.key}: ${p.reason}`).join('; '),
    };
  }
  return {
    name: 'config',
    ok: true,
    detail: files.length === 0 ? 'no file: defaults, environment and flags' : files.join(', '),
  };
}

/** sox, and the handlers of the upload allow-list (WAV and MP3 required). */
export async function checkSox(soxPath = 'sox'): Promise<DoctorResult> {
  let version: string;
  let handlers: Set<string>;
  try {
    const result = await runTool(soxPath, ['--version'], { timeoutMs: 10_000 });
    version = /SoX v?(\S+)/.exec(result.stdout)?.[1] ?? result.stdout.trim();
    handlers = await soxHandlers(soxPath);
  } catch (error) {
    const missing = error instanceof MediaError && error.code === 'TOOL_MISSING';
    return {
      name: 'sox',
      ok: false,
      detail: missing ? `not installed (${INSTALL_TOOLS})` : message(error),
    };
  }
  const absent = Object.values(AUDIO_FORMATS).filter((f) => !handlers.has(f.soxHandler));
  const required = absent.filter((f) => f.name === 'wav' || f.name === 'mp3');
  if (required.length > 0) {
    return {
      name: 'sox',
      ok: false,
      detail: `SoX ${version} has no ${required.map((f) => f.label).join(' or ')} handler (apt-get install libsox-fmt-all)`,
    };
  }
  const others =
    absent.length === 0
      ? ''
      : `; no handler for ${absent.map((f) => f.label).join(', ')}: such uploads are refused`;
  return { name: 'sox', ok: true, detail: `SoX ${version}, MP3 and WAV handlers${others}` };
}

/** espeak-ng with the voices of the configured languages, Japanese included. */
export async function checkEspeak(
  config: Config,
  features: readonly Feature[] = FEATURES,
): Promise<DoctorResult> {
  if (config.tts.engine !== 'espeak') {
    return { name: 'espeak-ng', ok: true, detail: `not used (tts.engine: ${config.tts.engine})` };
  }
  const binary = config.tts.espeakBinary;
  const engine = new EspeakEngine({ binary, timeoutMs: 10_000 });
  let version: string;
  try {
    const result = await runTool(binary, ['--version'], { timeoutMs: 10_000 });
    version = /eSpeak NG text-to-speech: (\S+)/.exec(result.stdout)?.[1] ?? 'unknown version';
    await engine.languages();
  } catch (error) {
    const missing = error instanceof MediaError && error.code === 'TOOL_MISSING';
    return {
      name: 'espeak-ng',
      ok: false,
      detail: missing ? `${binary} not installed (${INSTALL_TOOLS})` : message(error),
    };
  }
  const wanted = new Set<string>(['ja', 'en']);
  for (const feature of features) {
    for (const language of feature.speechLanguages?.(config) ?? []) {
      wanted.add(language.toLowerCase());
    }
  }
  // The voice each language gets in production (EspeakEngine.voiceFor's rule).
  const missing: string[] = [];
  for (const language of wanted) {
    await engine.voiceFor(language).catch(() => missing.push(language));
  }
  if (missing.length > 0) {
    return {
      name: 'espeak-ng',
      ok: false,
      detail: `espeak-ng ${version} has no voice for ${missing.join(', ')} (apt-get install espeak-ng-data)`,
    };
  }
  return {
    name: 'espeak-ng',
    ok: true,
    detail: `espeak-ng ${version}, voices for ${[...wanted].sort().join(', ')}`,
  };
}

/** The database: PostgreSQL answers a login, or SQLite's directory can be written. */
export async function checkDatabase(config: Config, timeoutMs: number): Promise<DoctorResult> {
  const url = config.database.url;
  if (/^postgres(ql)?:\/\//.test(url)) {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
    client.on('error', () => {});
    try {
      await withTimeout(client.connect(), timeoutMs, 'login');
      const result = await withTimeout(client.query('show server_version'), timeoutMs, 'query');
      const version = String(result.rows[0]?.server_version ?? '?');
      return { name: 'database', ok: true, detail: `PostgreSQL ${version} at ${redactUrl(url)}` };
    } catch (error) {
      return { name: 'database', ok: false, detail: `${redactUrl(url)}: ${message(error)}` };
    } finally {
      await client.end().catch(() => {});
    }
  }
  if (url === ':memory:' || url === 'sqlite::memory:') {
    return { name: 'database', ok: true, detail: 'SQLite in memory (nothing is kept)' };
  }
  const file = path.resolve(url.replace(/^sqlite:/, ''));
  // The first existing directory up from the file's: serve creates the missing ones.
  let dir = path.dirname(file);
  while (!(await stat(dir).catch(() => undefined)) && path.dirname(dir) !== dir) {
    dir = path.dirname(dir);
  }
  const existing = await stat(file).catch(() => undefined);
  try {
    await access(existing ? file : dir, constants.W_OK);
  } catch {
    return {
      name: 'database',
      ok: false,
      detail: `SQLite ${file}: ${existing ? 'the file' : dir} is not writable by this user`,
    };
  }
  return {
    name: 'database',
    ok: true,
    detail: `SQLite ${file}${existing ? '' : ' (created at the first start)'}`,
  };
}

/**
 * One Asterisk server: TCP connect and login with the configured user, then each probe.
 * Never retries (a refused login is reported as Asterisk said it).
 * @returns the server's line (`ami <name>`), then one FAIL line (`ami <name> classes`) per
 *   missing permission class a probe found.
 */
export async function checkAmiServer(
  server: AmiServerConfig,
  options: {
    timeoutMs?: number;
    probes?: readonly AmiProbe[];
    features?: readonly AmiFeature[];
  } = {},
): Promise<DoctorResult[]> {
  const timeoutMs = options.timeoutMs ?? DOCTOR_TIMEOUT_MS;
  const name = `ami ${server.name}`;
  const client = new AmiClient({
    ...amiClientOptions(server),
    retryInitialConnect: false,
    connectTimeoutMs: Math.min(server.connectTimeoutMs, timeoutMs),
    pingIntervalMs: 0,
  });
  client.on('error', () => {});
  // Events on: the read classes are proven by the events Asterisk sends (FullyBooted: system)
  // and by the permission probe's UserEvent coming back.
  const evidence = new ReadEvidence();
  client.on('event', (event) => evidence.observe(event));
  const context: AmiProbeContext = { features: options.features ?? ['calls'], evidence };
  try {
    await withTimeout(client.connect(), timeoutMs, 'login');
    const notes: string[] = [];
    const failures: DoctorResult[] = [];
    for (const probe of options.probes ?? DEFAULT_AMI_PROBES) {
      const found = await withTimeout(probe(client, server, context), timeoutMs, 'probe');
      const result = typeof found === 'string' ? { note: found } : (found ?? {});
      if (result.note !== undefined && result.note !== '') notes.push(result.note);
      for (const failure of result.failures ?? []) {
        failures.push({ name: `${name} classes`, ok: false, detail: failure });
      }
    }
    const banner = client.banner ?? 'AMI';
    return [
      {
        name,
        ok: true,
        detail: [`logged in to ${redactUrl(server.url)} (${banner})`, ...notes].join('; '),
      },
      ...failures,
    ];
  } catch (error) {
    return [{ name, ok: false, detail: `${redactUrl(server.url)}: ${message(error)}` }];
  } finally {
    await Promise.resolve(client.close()).catch(() => {});
  }
}

/** Redis: connect and `PING`. */
export async function checkRedis(url: string, timeoutMs: number): Promise<DoctorResult> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  let cause: Error | undefined;
  redis.on('error', (error: Error) => {
    cause = error;
  });
  try {
    await withTimeout(redis.connect(), timeoutMs, 'connect');
    await withTimeout(redis.ping(), timeoutMs, 'PING');
    const info = await withTimeout(redis.info('server'), timeoutMs, 'INFO');
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
    return { name: 'redis', ok: true, detail: `Redis ${version} at ${redactUrl(url)}` };
  } catch (error) {
    return { name: 'redis', ok: false, detail: `${redactUrl(url)}: ${message(cause ?? error)}` };
  } finally {
    redis.disconnect();
  }
}

/** RabbitMQ: an AMQP connection with the configured user and virtual host. */
export async function checkRabbitmq(url: string, timeoutMs: number): Promise<DoctorResult> {
  const { connect } = await import('amqplib');
  try {
    const connection = await withTimeout(connect(url, { timeout: timeoutMs }), timeoutMs, 'AMQP');
    const properties = (
      connection as unknown as { connection?: { serverProperties?: Record<string, unknown> } }
    ).connection?.serverProperties;
    await connection.close().catch(() => {});
    const version = typeof properties?.version === 'string' ? ` ${properties.version}` : '';
    return { name: 'rabbitmq', ok: true, detail: `RabbitMQ${version} at ${redactUrl(url)}` };
  } catch (error) {
    return {
      name: 'rabbitmq',
      ok: false,
      detail: `${redactUrl(url)}: ${message(error).replace(/\/\/[^@/]*@/g, '//***@')}`,
    };
  }
}

/**
 * Runs every check for `config` (already loaded and valid; `files` are the files it came
 * from, for the `config` line).
 * @returns the results in the order of the module comment.
 */
export async function runDoctor(
  config: Config,
  files: string[],
  options: DoctorOptions = {},
): Promise<DoctorResult[]> {
  const timeoutMs = options.timeoutMs ?? DOCTOR_TIMEOUT_MS;
  const probes = options.amiProbes ?? DEFAULT_AMI_PROBES;
  // The features `serve` runs with this configuration (every module is built in).
  const list = options.features ?? FEATURES;
  const features = amiFeatures(config, config.ami.servers.length, list);
  const pending: Promise<DoctorResult | DoctorResult[] | undefined>[] = [
    Promise.resolve(checkConfig(config, files, list)),
    checkSox(),
    checkEspeak(config, list),
    checkDatabase(config, timeoutMs),
    ...config.ami.servers.map((server) => checkAmiServer(server, { timeoutMs, probes, features })),
    config.redis.url === '' ? Promise.resolve(undefined) : checkRedis(config.redis.url, timeoutMs),
    config.amqp.url === '' ? Promise.resolve(undefined) : checkRabbitmq(config.amqp.url, timeoutMs),
    ...list.flatMap((feature) => feature.doctorChecks?.(config, timeoutMs) ?? []),
  ];
  const results = await Promise.all(pending);
  return results.flat().filter((result): result is DoctorResult => result !== undefined);
}
