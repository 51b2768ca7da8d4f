/**
 * `switchboard serve` as a library: assembles the service from a validated configuration,
 * as Fastify plugins on one instance (docs/architecture.md):
 *
 * ```
 * switchboard-store ─┐
 * switchboard-bus ───┼─▶ events, cti, then every feature (callout, announce, jenkins, push, ...)
 * switchboard-ami ───┘     each a fastify-plugin with `name` and `dependencies`
 * ```
 *
 * Lifecycle: {@link createService} builds nothing yet; {@link Service.start} registers the
 * spine (the database opens, the bus connects in the background, AMI clients are built),
 * the service's routes and the features, then listens: `onReady` applies every declared
 * migration, starts AMI in the background and the features' workers; `onListen` publishes
 * `service.registered.switchboard` (an unreachable
 * Asterisk or broker does not stop the start: `/readyz` answers 503 until they are up, and
 * both keep reconnecting). {@link Service.stop} shuts down gracefully (`app.close()`: the
 * plugins close in reverse order).
 */

import type { Logger } from 'pino';
import { type AmiClientOptions, amiServerOptions, parseAmiUrl } from '../ami/client.ts';
import type { AmiFeature } from '../ami/permissions.ts';
import type { CreateBusOptions } from '../bus/index.ts';
import { busPlugin } from '../bus/plugin.ts';
import type { Reporter } from '../calls/reporter.ts';
import type { ConfigProblem } from '../config/load.ts';
import type { AmiServerConfig, Config } from '../config/schema.ts';
import { ctiPlugin } from '../cti/index.ts';
import { followAuth } from '../http/auth.ts';
import {
  createLogger,
  createServer,
  listenFailure,
  parseListen,
  Readiness,
  type SwitchboardServer,
} from '../http/server.ts';
import { createMetrics, type Metrics } from '../metrics.ts';
import { webhookEventFilter } from '../sinks/webhook.ts';
import type { OpenDatabaseOptions } from '../store/db.ts';
import { storePlugin } from '../store/plugin.ts';
import { redactUrl } from '../util/redact.ts';
import { amiPlugin } from './ami.ts';
import {
  contextOf,
  type Feature,
  type FeaturePlugin,
  featureName,
  type ServiceContext,
} from './module.ts';
import { FEATURES } from './modules.ts';
import { eventsPlugin } from './routes.ts';
import { toolReadiness } from './tools.ts';
import { Webhooks } from './webhooks.ts';

/** Options of {@link createService}. Only `config` is required. */
export interface ServiceOptions {
  /** The validated configuration (`loadConfig`). */
  config: Config;
  /** Logger (default: pino JSON lines on stdout at `config.log.level`, secrets redacted). */
  logger?: Logger;
  /** Metrics registry (default: a new one with process metrics). */
  metrics?: Metrics;
  /** Feature plugins (./module.ts), in registration order (`featureModules()`). */
  modules?: readonly FeaturePlugin[];
  /**
   * An extra reporter fed with every call event (e.g. the console reporter of
   * `serve --print-events`). It must not block: its promises are not awaited.
   */
  reporter?: Reporter;
  /** Options passed to `openDatabase` (tests: a PostgreSQL `schema`). */
  database?: OpenDatabaseOptions;
  /** Extra bus options (tests and benches: `connectionName`, reconnect delays). */
  bus?: Partial<CreateBusOptions>;
  /** Extra options for every AMI client (tests: faster reconnects). */
  ami?: Partial<AmiClientOptions>;
  /** Longest wait for the read-`user` probe at each AMI login, in ms (docs/ami.md). Default 3000. */
  amiPermissionProbeTimeoutMs?: number;
  /** Longest wait for the bus to flush its buffer at stop. Default 5000 ms. */
  busFlushTimeoutMs?: number;
  /** Keep-alive interval of `/api/events` streams. Default 15000 ms. */
  sseKeepAliveMs?: number;
}

/** A running (or stopped) service. */
export interface Service {
  /**
   * Starts everything (see the module comment). Resolves once the HTTP server listens.
   * @returns the HTTP address (port 0 in config is resolved).
   * @throws when the database cannot be opened or migrated, the HTTP port cannot be bound,
   *   the embedded simulator cannot start, or a module fails to register/start; whatever
   *   had started is stopped again first.
   */
  start(): Promise<{ host: string; port: number; url: string }>;
  /**
   * Graceful shutdown, idempotent: readiness turns 503; the HTTP server stops accepting and
   * finishes in-flight requests (SSE streams are ended); modules stop (reverse order); AMI
   * logs off; webhooks get a bounded flush; `service.deregistered.switchboard` is published;
   * the bus flushes its buffer (bounded by `busFlushTimeoutMs`) and closes; the database
   * closes.
   */
  stop(): Promise<void>;
  /**
   * Applies a new configuration (already loaded and validated, e.g. from the files again on
   * SIGHUP) to the running service, as far as that is safe without a restart: `log.level`,
   * the `auth` section (tokens, users, networks: every access rule reads them at each
   * request), and the `webhooks` section (endpoints whose settings are unchanged keep their
   * queue; the others are replaced, the old ones finishing what they hold, bounded by
   * `busFlushTimeoutMs`). Every other changed key is listed in `restartRequired` and keeps
   * its old value.
   * @throws Error listing {@link checkServiceConfig} problems (nothing is applied then).
   */
  reload(next: Config): ReloadResult;
  /** The shared resources, available after `start()` resolved. */
  readonly context: ServiceContext | undefined;
  /** The HTTP server, available after `start()` resolved. */
  readonly server: SwitchboardServer | undefined;
}

/** What {@link Service.reload} did, as configuration keys (`section.key`), never values. */
export interface ReloadResult {
  /** Changed keys now in effect, e.g. `log.level`, `auth.tokens`, `webhooks.endpoints`. */
  applied: string[];
  /** Changed keys that keep their old value until a restart, e.g. `http.listen`. */
  restartRequired: string[];
}

/**
 * Keys {@link Service.reload} applies: a section name (every key in it) or `section.key`.
 * Everything else needs a restart.
 */
export const RELOADABLE_KEYS: readonly string[] = ['log.level', 'auth', 'webhooks'];

/**
 * The keys (`section.key`, e.g. `http.listen`, `auth.tokens`) whose values differ between two
 * configurations, in the order of `before`'s sections. Values are compared, never reported.
 */
export function changedKeys(before: Config, after: Config): string[] {
  const keys: string[] = [];
  const a = before as unknown as Record<string, Record<string, unknown>>;
  const b = after as unknown as Record<string, Record<string, unknown>>;
  for (const section of Object.keys({ ...a, ...b })) {
    const x = a[section] ?? {};
    const y = b[section] ?? {};
    for (const key of Object.keys({ ...x, ...y })) {
      if (JSON.stringify(x[key]) !== JSON.stringify(y[key])) keys.push(`${section}.${key}`);
    }
  }
  return keys;
}

function reloadable(key: string): boolean {
  return RELOADABLE_KEYS.some((k) => key === k || key.startsWith(`${k}.`));
}

/**
 * Checks what the configuration schema cannot: AMI server names unique, AMI URLs parseable,
 * then each feature's own checks (`Feature.checkConfig`: e.g. `announce.dialString`, the
 * `amiServers` lists), then webhook `events` patterns valid binding keys. Used by `start()`,
 * `reload()` (with the features of the service) and `switchboard config check` (every
 * feature of {@link FEATURES}, the default).
 * @returns the problems, each naming its key (empty when fine).
 */
export function checkServiceConfig(
  config: Config,
  features: readonly Feature[] = FEATURES,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const names = new Map<string, number>();
  config.ami.servers.forEach((server, i) => {
    try {
      amiServerOptions({ url: server.url, name: server.name });
    } catch (error) {
      problems.push({ key: `ami.servers[${i}].url`, reason: (error as Error).message });
    }
    const name = server.name;
    const first = names.get(name);
    if (first !== undefined) {
      problems.push({
        key: `ami.servers[${i}].name`,
        reason: `duplicate server name (same as ami.servers[${first}]); set distinct names`,
      });
    } else names.set(name, i);
  });
  if (config.simulator.enabled && names.has('simulator')) {
    problems.push({
      key: 'ami.servers',
      reason: 'the name "simulator" is taken by the embedded simulator (simulator.enabled)',
    });
  }
  for (const feature of features) problems.push(...(feature.checkConfig?.(config) ?? []));
  config.webhooks.endpoints.forEach((endpoint, i) => {
    endpoint.events.forEach((pattern, j) => {
      try {
        webhookEventFilter([pattern]);
      } catch (error) {
        problems.push({
          key: `webhooks.endpoints[${i}].events[${j}]`,
          reason: (error as Error).message,
        });
      }
    });
  });
  return problems;
}

/** AMI client options for one configured server (the service always retries its first connect). */
export function amiClientOptions(
  server: AmiServerConfig,
  extra: Partial<AmiClientOptions> = {},
): AmiClientOptions {
  // The one meaning of a server (the loader filled name and auth from the URL already; a
  // config built in code may still say auth in the URL only).
  const fromUrl = amiServerOptions({ url: server.url, name: server.name });
  const options: AmiClientOptions = {
    ...fromUrl,
    auth: parseAmiUrl(server.url).auth ?? (server.auth as 'plain' | 'md5'),
    pingIntervalMs: server.pingIntervalMs,
    connectTimeoutMs: server.connectTimeoutMs,
    actionTimeoutMs: server.actionTimeoutMs,
    reconnect: { initialDelayMs: server.reconnectMinMs, maxDelayMs: server.reconnectMaxMs },
    retryInitialConnect: true,
    ...extra,
  };
  if (fromUrl.tls === true && !server.tlsRejectUnauthorized) {
    options.tls = { rejectUnauthorized: false };
  }
  return options;
}

/**
 * The features whose AMI permissions `serve` checks for `config` (docs/ami.md,
 * "Permissions"), as its plugins declare them (`app.amiNeeds.add`): call events always, then
 * each of `features` that says so (`Feature.amiFeature`: alert calls when callout is enabled
 * with the asterisk provider; announcements when announce is enabled, playing by
 * `Originate`). For `switchboard doctor`, which checks a configuration without starting it.
 */
export function amiFeatures(
  config: Config,
  amiServers: number,
  features: readonly Feature[] = FEATURES,
): AmiFeature[] {
  const needed: AmiFeature[] = ['calls'];
  for (const feature of features) {
    const need = feature.amiFeature?.(config, amiServers);
    if (need !== undefined) needed.push(need);
  }
  return needed;
}

/** The entries of {@link FEATURES} whose plugin is among `modules` (matched by name). */
function featuresOf(modules: readonly FeaturePlugin[]): Feature[] {
  const names = new Set(modules.map(featureName));
  return FEATURES.filter((feature) => names.has(feature.name));
}

/**
 * Builds the service for `options.config` (nothing starts until {@link Service.start}).
 * @throws ConfigError-like `Error` listing {@link checkServiceConfig} problems.
 */
export function createService(options: ServiceOptions): Service {
  const { config } = options;
  const modules = [...(options.modules ?? [])];
  // What the features of this service check (a feature it does not run checks nothing).
  const features = featuresOf(modules);
  const problems = checkServiceConfig(config, features);
  if (problems.length > 0) {
    throw new Error(problems.map((p) => `config: ${p.key}: ${p.reason}`).join('\n'));
  }
  const logger = options.logger ?? createLogger(config.log.level);
  const metrics = options.metrics ?? createMetrics();
  const flushTimeoutMs = options.busFlushTimeoutMs ?? 5000;

  let context: ServiceContext | undefined;
  let server: SwitchboardServer | undefined;
  let webhooks: Webhooks | undefined;
  let starting: Promise<{ host: string; port: number; url: string }> | undefined;
  let stopping: Promise<void> | undefined;

  const log = logger.child({ component: 'service' });
  // Every access rule built from this section follows its reloads.
  followAuth(config.auth);

  function reload(next: Config): ReloadResult {
    const problems = checkServiceConfig(next, features);
    if (problems.length > 0) {
      throw new Error(problems.map((p) => `config: ${p.key}: ${p.reason}`).join('\n'));
    }
    const changed = changedKeys(config, next);
    const applied = changed.filter(reloadable);
    const restartRequired = changed.filter((key) => !reloadable(key));
    if (applied.includes('log.level')) {
      config.log.level = next.log.level;
      logger.level = next.log.level;
    }
    if (applied.some((key) => key.startsWith('auth.'))) {
      // In place: the modules and the access rules hold this object.
      Object.assign(config.auth, next.auth);
    }
    if (applied.some((key) => key.startsWith('webhooks.'))) {
      config.webhooks = next.webhooks;
      if (starting !== undefined && stopping === undefined) webhooks?.set(next.webhooks);
    }
    return { applied, restartRequired };
  }

  async function doStart(): Promise<{ host: string; port: number; url: string }> {
    const readiness = new Readiness();
    server = await createServer({ config, logger, metrics, readiness });
    const app = server.app;
    app.decorate('switchboard', { config, logger, metrics, readiness });

    // 1. The spine: database, bus, AMI (each closes itself, in reverse order, at stop).
    await app.register(storePlugin, {
      url: config.database.url,
      open: {
        poolSize: config.database.poolSize,
        busyTimeoutMs: config.database.busyTimeoutMs,
        connectTimeoutMs: config.database.connectTimeoutMs,
        retryAfterS: config.database.retryAfterS,
        ...(config.database.schema === '' ? {} : { schema: config.database.schema }),
        ...options.database,
      },
      readiness,
      logger,
      onMigrated: (db, applied) =>
        log.info(
          {
            dialect: db.dialect,
            database: redactUrl(config.database.url),
            applied: applied.length,
          },
          'database ready',
        ),
    });
    // sox / espeak-ng for the features that need them: checked now (logged) and in /readyz.
    const names = modules.map(featureName);
    const tools = toolReadiness(config, features, logger.child({ component: 'tools' }));
    readiness.add('tools', tools.check);
    const amqp = config.amqp;
    await app.register(busPlugin, {
      bus: {
        url: amqp.url,
        exchange: amqp.exchange,
        persistent: amqp.persistent,
        bufferSize: amqp.bufferSize,
        amiBufferSize: amqp.amiBufferSize,
        heartbeatS: amqp.heartbeatS,
        reconnectInitialDelayMs: amqp.reconnectMinMs,
        reconnectMaxDelayMs: amqp.reconnectMaxMs,
        connectionName: `switchboard ${config.instance.name}`,
        registry: metrics.registry,
        logger: logger.child({ component: 'bus' }),
        ...options.bus,
      },
      instance: config.instance,
      host: parseListen(config.http.listen).host,
      flushTimeoutMs,
      readiness,
      logger: log,
    });
    log.info(
      amqp.url === ''
        ? { bus: 'memory' }
        : { bus: 'amqp', url: redactUrl(amqp.url), exchange: amqp.exchange },
      'bus created',
    );
    webhooks = new Webhooks({ registry: metrics.registry, logger, flushTimeoutMs });
    webhooks.set(config.webhooks);
    await app.register(amiPlugin, {
      config,
      servers: config.ami.servers.map((server) => amiClientOptions(server, options.ami)),
      ...(options.ami === undefined ? {} : { extra: options.ami }),
      webhooks,
      ...(options.reporter === undefined ? {} : { reporter: options.reporter }),
      ...(options.amiPermissionProbeTimeoutMs === undefined
        ? {}
        : { permissionProbeTimeoutMs: options.amiPermissionProbeTimeoutMs }),
      metrics,
      readiness,
      logger,
    });

    // 2. The service's own routes, then every feature (each a plugin with its dependencies).
    await app.register(eventsPlugin, {
      ...(options.sseKeepAliveMs === undefined ? {} : { sseKeepAliveMs: options.sseKeepAliveMs }),
    });
    await app.register(ctiPlugin);
    for (const feature of modules) await app.register(feature);
    context = contextOf(app);

    // 3. Listen: onReady (migrations, AMI in the background, the features' workers), then
    //    onListen (`service.registered`).
    let address: { host: string; port: number; url: string };
    try {
      address = await server.listen();
    } catch (error) {
      throw listenFailure(error, 'HTTP server', config.http.listen, 'http.listen (or --listen)');
    }
    log.info({ url: address.url }, 'HTTP server listening');
    if (names.includes('console')) {
      log.info({ url: `${address.url}/` }, `console: open ${address.url}/ in a browser`);
    }
    await tools.checked;
    log.info(
      {
        instance: config.instance.name,
        uuid: config.instance.uuid,
        amiServers: app.ami.clients.map((c) => c.name),
        modules: names,
      },
      'switchboard started',
    );
    return address;
  }

  async function doStop(): Promise<void> {
    log.info('stopping');
    // Readiness turns 503; event streams end (preClose); the server stops accepting and
    // finishes its in-flight requests; then every plugin's onClose, in reverse order:
    // features, AMI (and webhooks), the bus (deregistration, flush), the database.
    await server
      ?.close()
      .catch((error: unknown) => log.warn({ err: error }, 'shutdown: a plugin failed to close'));
    log.info('stopped');
  }

  return {
    get context() {
      return context;
    },
    get server() {
      return server;
    },
    reload,
    start() {
      if (starting !== undefined) return starting;
      starting = doStart().catch(async (error: unknown) => {
        await this.stop().catch((stopError: unknown) =>
          log.warn({ err: stopError }, 'stop after a failed start failed'),
        );
        throw error;
      });
      return starting;
    },
    stop() {
      if (stopping === undefined) stopping = doStop();
      return stopping;
    },
  };
}
