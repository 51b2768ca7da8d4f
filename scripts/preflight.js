// What the test suite needs from the machine, checked before any test runs (scripts/test.js):
// the external tools (sox with its MP3 handler, espeak-ng with its Japanese voice, Chromium
// for the console's browser tests) and the
// services the selected test files use (PostgreSQL, Redis, RabbitMQ). Each problem is one
// line naming what is missing and how to fix it; the caller stops instead of running tests
// that would fail one by one (or wait for a tool that is not there).
import { execFileSync } from 'node:child_process';
import { existsSync, globSync, readFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { delimiter, dirname, join, resolve } from 'node:path';

/** The Debian command that installs every external tool the tests use. */
export const INSTALL_TOOLS = 'apt-get install sox libsox-fmt-all espeak-ng chromium';

/** The browser the console tests drive (playwright-core); `SWITCHBOARD_TEST_CHROMIUM` overrides. */
export const CHROMIUM = process.env.SWITCHBOARD_TEST_CHROMIUM || '/usr/bin/chromium';

/** Defaults of the SWITCHBOARD_TEST_* variables (the same as in the test helpers). */
export const SERVICES = {
  postgresql: {
    variable: 'SWITCHBOARD_TEST_PG_URL',
    url: 'postgres://postgres@127.0.0.1:5432/test',
    start: 'systemctl start postgresql',
    expect: 'user postgres, trust auth, database "test"',
  },
  redis: {
    variable: 'SWITCHBOARD_TEST_REDIS_URL',
    url: 'redis://127.0.0.1:6379',
    start: 'systemctl start redis-server',
    expect: 'no password',
  },
  rabbitmq: {
    variable: 'SWITCHBOARD_TEST_AMQP_URL',
    url: 'amqp://guest:guest@127.0.0.1:5672/',
    start: 'systemctl start rabbitmq-server',
    expect: 'user guest/guest, vhost /',
    tool: { name: 'rabbitmqctl', why: 'the tests close connections with it' },
  },
};

const PROBE_TIMEOUT_MS = 3000;

/** Runs `file args` and returns its stdout, or undefined when it cannot run or fails. */
function output(file, args) {
  try {
    return execFileSync(file, args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 10_000,
    });
  } catch {
    return undefined;
  }
}

/** True when `name` is an executable file in one of the PATH directories. */
export function onPath(name, path = process.env.PATH ?? '') {
  return path.split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, name)));
}

/**
 * The external tools the tests need that are missing, as human names (empty when all are
 * there): `sox` and `soxi`, sox's MP3 handler (`sox -h` lists mp3 among its AUDIO FILE
 * FORMATS, brought by libsox-fmt-mp3 / libsox-fmt-all), `espeak-ng` and its Japanese voice,
 * Debian's `chromium` at {@link CHROMIUM} (the console's browser tests, test/console/).
 */
export function missingTools() {
  const missing = [];
  const help = output('sox', ['-h']);
  if (help === undefined || !onPath('soxi')) {
    missing.push('sox');
  } else {
    const formats = /^AUDIO FILE FORMATS:(.*)$/m.exec(help)?.[1]?.trim().split(/\s+/) ?? [];
    if (!formats.includes('mp3')) missing.push("sox's MP3 handler (libsox-fmt-mp3)");
  }
  if (output('espeak-ng', ['--version']) === undefined) {
    missing.push('espeak-ng');
  } else if (output('espeak-ng', ['-q', '-x', '-v', 'ja', 'テスト']) === undefined) {
    missing.push("espeak-ng's Japanese voice (espeak-ng-data)");
  }
  if (!existsSync(CHROMIUM)) missing.push(`chromium (${CHROMIUM})`);
  return missing;
}

/** Expands the test file arguments (paths or globs) relative to `cwd`. */
export function expandFiles(patterns, cwd = process.cwd()) {
  const files = new Set();
  for (const pattern of patterns) {
    if (/[*?[{]/.test(pattern)) {
      for (const file of globSync(pattern, { cwd })) files.add(resolve(cwd, file));
    } else {
      files.add(resolve(cwd, pattern));
    }
  }
  return [...files];
}

const IMPORT = /(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g;

/**
 * The services the given test files use: a file uses a service when it, or a test module
 * it imports (relative imports, followed recursively), reads that service's
 * SWITCHBOARD_TEST_* variable — the one way the test helpers name a service's address.
 */
export function servicesUsedBy(files) {
  const used = new Set();
  const seen = new Set();
  const visit = (file) => {
    if (seen.has(file) || !existsSync(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const [name, service] of Object.entries(SERVICES)) {
      if (text.includes(service.variable)) used.add(name);
    }
    for (const match of text.matchAll(IMPORT)) {
      const target = resolve(dirname(file), match[1]);
      // Only test code: the product's sources take their addresses from the config.
      if (!target.split(/[\\/]/).includes('test')) continue;
      visit(target);
    }
  };
  for (const file of files) visit(file);
  return Object.keys(SERVICES).filter((name) => used.has(name));
}

/** Host and port of a service URL (never its credentials), or undefined when invalid. */
function address(url, defaultPort) {
  try {
    const parsed = new URL(url);
    const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
    return { host, port: Number(parsed.port || defaultPort) };
  } catch {
    return undefined;
  }
}

/** Resolves true when a TCP connection to `host:port` opens within the probe timeout. */
function reachable({ host, port }) {
  return new Promise((done) => {
    const socket = tcpConnect({ host, port, timeout: PROBE_TIMEOUT_MS });
    const end = (ok) => {
      socket.destroy();
      done(ok);
    };
    socket.once('connect', () => end(true));
    socket.once('timeout', () => end(false));
    socket.once('error', () => end(false));
  });
}

function withTimeout(promise, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms (${what})`)),
        PROBE_TIMEOUT_MS,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

async function probePostgres(url) {
  const { default: pg } = await import('pg');
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
  } finally {
    await client.end().catch(() => {});
  }
}

async function probeRedis(url) {
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: PROBE_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  let cause;
  redis.on('error', (error) => {
    cause = error;
  });
  try {
    await withTimeout(redis.connect(), 'connect');
    await withTimeout(redis.ping(), 'PING');
  } catch (error) {
    throw cause ?? error;
  } finally {
    redis.disconnect();
  }
}

async function probeRabbitmq(url) {
  const { connect } = await import('amqplib');
  const connection = await withTimeout(
    connect(url, { timeout: PROBE_TIMEOUT_MS }),
    'AMQP handshake',
  );
  await connection.close().catch(() => {});
}

const PROBES = { postgresql: probePostgres, redis: probeRedis, rabbitmq: probeRabbitmq };
const DEFAULT_PORTS = { postgresql: 5432, redis: 6379, rabbitmq: 5672 };

/**
 * Connects to each named service (at its SWITCHBOARD_TEST_* URL or the default) and returns
 * one line per service that does not answer as the tests expect, e.g.
 * `postgresql: not reachable at 127.0.0.1:5432 (start it: systemctl start postgresql; or set
 * SWITCHBOARD_TEST_PG_URL)`.
 */
export async function serviceProblems(names, env = process.env) {
  const results = await Promise.all(
    names.map(async (name) => {
      const service = SERVICES[name];
      const url = env[service.variable] || service.url;
      const at = address(url, DEFAULT_PORTS[name]);
      const fix = `set ${service.variable}`;
      if (at === undefined) return `${name}: ${service.variable} is not a URL`;
      const where = `${at.host.includes(':') ? `[${at.host}]` : at.host}:${at.port}`;
      if (!(await reachable(at))) {
        return `${name}: not reachable at ${where} (start it: ${service.start}; or ${fix})`;
      }
      try {
        await PROBES[name](url);
      } catch (error) {
        const message = String(error?.message ?? error).split('\n')[0];
        return `${name}: at ${where}: ${message} (the tests expect ${service.expect}; or ${fix})`;
      }
      if (service.tool !== undefined && !onPath(service.tool.name, env.PATH)) {
        return `${name}: ${service.tool.name} not found on PATH (${service.tool.why})`;
      }
      return undefined;
    }),
  );
  return results.filter((line) => line !== undefined);
}
