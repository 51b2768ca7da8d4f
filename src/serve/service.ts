/**
 * `switchboard serve` as a library: assembles the service from a validated configuration.
 *
 * ```
 * Asterisk ──AMI──▶ AmiRunner ──▶ reporter ──▶ XivoPublisher ──▶ Bus (AMQP | in-process)
 *                    (engine)        │                               │
 *                                    ├──▶ WebhookSink per endpoint    ├──▶ /api/events (SSE)
 *                                    └──▶ extra reporter (console)    └──▶ switchboard listen
 * HTTP (Fastify): /healthz /readyz /metrics /docs, POST /api/cti/:event, GET /api/events,
 *                 + every feature module's routes (see ./module.ts)
 * ```
 *
 * Lifecycle: {@link createService} builds nothing yet; {@link Service.start} opens the
 * database (migrations applied), the bus, the HTTP server, publishes
 * `service.registered.switchboard`, and starts AMI in the background (an unreachable
 * Asterisk or broker does not stop the start: `/readyz` answers 503 until they are up, and
 * both keep reconnecting). {@link Service.stop} shuts down gracefully.
 */

import type { Logger } from 'pino';
import { Counter, Gauge } from 'prom-client';
import { type AmiClientOptions, amiServerOptions, parseAmiUrl } from '../ami/client.ts';
import { AmiAuthError } from '../ami/errors.ts';
import { amiEventLabel } from '../ami/known-events.ts';
import type { AmiEvent } from '../ami/message.ts';
import {
  AMI_REQUIREMENTS,
  type AmiFeature,
  type AmiPermissionProblem,
  describeNeed,
  FEATURE_NAMES,
} from '../ami/permissions.ts';
import { checkAnnounceConfig } from '../announce/checks.ts';
import { resolvePlayback } from '../announce/index.ts';
import type { Bus } from '../bus/bus.ts';
import { type CreateBusOptions, createBus } from '../bus/index.ts';
import { type CallEventLike, XivoPublisher } from '../bus/xivo.ts';
import { selectProvider } from '../callout/index.ts';
import type { CallEngine } from '../calls/engine.ts';
import type { CallEvent } from '../calls/events.ts';
import { AmiRunner } from '../calls/live.ts';
import type { EventContext, Reporter } from '../calls/reporter.ts';
import type { ConfigProblem } from '../config/load.ts';
import type { AmiServerConfig, Config } from '../config/schema.ts';
import { followAuth } from '../http/auth.ts';
import {
  createLogger,
  createServer,
  listenFailure,
  Readiness,
  type SwitchboardServer,
} from '../http/server.ts';
import { createMetrics, type Metrics } from '../metrics.ts';
import { BusHistory, type SseStream } from '../sinks/sse.ts';
import { type WebhookEvent, WebhookSink, webhookEventFilter } from '../sinks/webhook.ts';
import { type Database, migrate, type OpenDatabaseOptions, openDatabase } from '../store/db.ts';
import { reuseMetric } from '../util/metrics.ts';
import { redactUrl } from '../util/redact.ts';
import { withTimeout } from '../util/timeout.ts';
import type { ServiceContext, ServiceModule } from './module.ts';
import { serviceRoutes } from './routes.ts';
import { type EmbeddedSimulator, startEmbeddedSimulator } from './simulator.ts';
import { toolReadiness } from './tools.ts';

/** Options of {@link createService}. Only `config` is required. */
export interface ServiceOptions {
  /** The validated configuration (`loadConfig`). */
  config: Config;
  /** Logger (default: pino JSON lines on stdout at `config.log.level`, secrets redacted). */
  logger?: Logger;
  /** Metrics registry (default: a new one with process metrics). */
  metrics?: Metrics;
  /** Feature modules (./module.ts), in registration order. */
  modules?: readonly ServiceModule[];
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
 * Checks what the configuration schema cannot: AMI server names unique, webhook `events`
 * patterns valid binding keys, AMI URLs parseable. Used by `start()` and by
 * `switchboard config check`.
 * @returns the problems, each naming its key (empty when fine).
 */
export function checkServiceConfig(config: Config): ConfigProblem[] {
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
  const known = new Set(names.keys());
  if (config.simulator.enabled) known.add('simulator');
  for (const section of ['callout', 'announce'] as const) {
    config[section].amiServers.forEach((name, i) => {
      if (!known.has(name)) {
        problems.push({
          key: `${section}.amiServers[${i}]`,
          reason: `no AMI server is named ${JSON.stringify(name)} (names: ${[...known].join(', ') || 'none'})`,
        });
      }
    });
  }
  problems.push(...checkAnnounceConfig(config));
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
 * The features whose AMI permissions `serve` checks (docs/ami.md, "Permissions"): call events
 * always; alert calls when the `callout` module runs, enabled, with the asterisk provider;
 * announcements when the `announce` module runs, enabled, playing by `Originate`.
 */
export function amiFeatures(
  config: Config,
  amiServers: number,
  modules: readonly { readonly name: string }[],
): AmiFeature[] {
  const runs = (name: string): boolean => modules.some((module) => module.name === name);
  const features: AmiFeature[] = ['calls'];
  if (runs('callout') && config.callout.enabled && selectProvider(config) === 'asterisk') {
    features.push('callout');
  }
  if (
    runs('announce') &&
    config.announce.enabled &&
    resolvePlayback(config.announce.playback, amiServers) === 'originate'
  ) {
    features.push('announce');
  }
  return features;
}

interface ServiceMetrics {
  amiConnected: Gauge<'server'>;
  amiPermissionMissing: Gauge<'server' | 'access' | 'class'>;
  amiEvents: Counter<'server' | 'event'>;
  amiSkipped: Counter<'server' | 'reason'>;
  engineForgotten: Counter<'server' | 'kind'>;
  engineChannels: Gauge<'server'>;
  engineBridges: Gauge<'server'>;
  callEvents: Counter<'event'>;
}

/**
 * The service's metrics. Every label value is bounded: `server` is a configured server name,
 * `event` of `switchboard_ami_events_received_total` a documented AMI event name or `other`
 * (`amiEventLabel`), `reason` and `kind` fixed sets, call events the engine's kinds.
 */
function serviceMetrics(
  metrics: Metrics,
  currentRunner: () => AmiRunner | undefined,
): ServiceMetrics {
  const registry = metrics.registry;
  const reuse = <T>(name: string, make: () => T): T => reuseMetric(registry, name, make);
  const engineGauge = (name: string, help: string, size: (engine: CallEngine) => number) =>
    reuse(
      name,
      () =>
        new Gauge({
          name,
          help,
          labelNames: ['server'],
          registers: [registry],
          collect() {
            const runner = currentRunner();
            if (runner === undefined) return;
            for (const [server, engine] of runner.engines) this.set({ server }, size(engine));
          },
        }),
    );
  return {
    amiConnected: reuse(
      'switchboard_ami_connected',
      () =>
        new Gauge({
          name: 'switchboard_ami_connected',
          help: '1 while logged in to the Asterisk server, 0 otherwise',
          labelNames: ['server'],
          registers: [registry],
        }),
    ),
    amiPermissionMissing: reuse(
      'switchboard_ami_permission_missing',
      () =>
        new Gauge({
          name: 'switchboard_ami_permission_missing',
          help: 'Permission classes an enabled feature needs, by server, access (read, write) and class: 1 the manager user lacks it, 0 it has it; absent while it cannot be known (docs/ami.md)',
          labelNames: ['server', 'access', 'class'],
          registers: [registry],
        }),
    ),
    amiEvents: reuse(
      'switchboard_ami_events_received_total',
      () =>
        new Counter({
          name: 'switchboard_ami_events_received_total',
          help: 'AMI events received, by server and event name (documented Asterisk names; any other name counts as other)',
          labelNames: ['server', 'event'],
          registers: [registry],
        }),
    ),
    amiSkipped: reuse(
      'switchboard_ami_messages_skipped_total',
      () =>
        new Counter({
          name: 'switchboard_ami_messages_skipped_total',
          help: 'AMI messages skipped, by server and reason (too_large, too_many_headers, handler_failed); the connection stays up',
          labelNames: ['server', 'reason'],
          registers: [registry],
        }),
    ),
    engineForgotten: reuse(
      'switchboard_call_engine_forgotten_total',
      () =>
        new Counter({
          name: 'switchboard_call_engine_forgotten_total',
          help: 'Live channels and bridges the call engine forgot because ami.maxChannels / ami.maxBridges was reached, by server and kind (channel, bridge)',
          labelNames: ['server', 'kind'],
          registers: [registry],
        }),
    ),
    engineChannels: engineGauge(
      'switchboard_call_engine_channels',
      'Live channels the call engine follows, by server',
      (engine) => engine.channels.size,
    ),
    engineBridges: engineGauge(
      'switchboard_call_engine_bridges',
      'Live bridges the call engine follows, by server',
      (engine) => engine.bridges.size,
    ),
    callEvents: reuse(
      'switchboard_call_events_total',
      () =>
        new Counter({
          name: 'switchboard_call_events_total',
          help: 'Call events emitted by the engine, by kind (b_dial, up, hangup, ...)',
          labelNames: ['event'],
          registers: [registry],
        }),
    ),
  };
}

/**
 * `switchboard_ami_permission_missing` for one server: for every class a need of an enabled
 * feature names (read `user`; write `system` or `reporting` for CoreShowChannels, ...), 1
 * when a need naming it is not met, 0 when every need naming it is met; no series while that
 * cannot be known (read `call` before any call event, for one).
 */
function setPermissionGauges(
  gauge: Gauge<'server' | 'access' | 'class'>,
  server: string,
  problems: readonly AmiPermissionProblem[],
  features: readonly AmiFeature[],
): void {
  const values = new Map<string, { access: string; name: string; value: number | undefined }>();
  for (const requirement of AMI_REQUIREMENTS) {
    if (!features.includes(requirement.feature)) continue;
    const problem = problems.find(
      (p) =>
        p.feature === requirement.feature &&
        p.access === requirement.access &&
        p.action === requirement.action &&
        p.classes === requirement.classes,
    );
    const value = problem === undefined ? 0 : problem.state === 'missing' ? 1 : undefined;
    for (const name of requirement.classes) {
      const key = `${requirement.access} ${name}`;
      const before = values.get(key)?.value;
      // Missing for one need beats met for another; unknown only when nothing is known.
      const merged = before === 1 || value === 1 ? 1 : before === 0 || value === 0 ? 0 : undefined;
      values.set(key, { access: requirement.access, name, value: merged });
    }
  }
  for (const { access, name, value } of values.values()) {
    const labels = { server, access, class: name };
    if (value === undefined) gauge.remove(labels);
    else gauge.set(labels, value);
  }
}

/**
 * The `/readyz` check `ami-permissions:<feature>`: not ready while a connected server's
 * manager user lacks what the feature cannot work without (alert calls without read `user`
 * or the `Originate` action, ...); ready, with the detail, when only part of it is lost or a
 * need cannot be confirmed.
 */
function permissionReadiness(
  feature: AmiFeature,
  problemsByServer: ReadonlyMap<string, readonly AmiPermissionProblem[]>,
  connected: ReadonlySet<string>,
): { ok: boolean; detail?: string } {
  const broken: string[] = [];
  const degraded: string[] = [];
  const unconfirmed: string[] = [];
  for (const [server, problems] of problemsByServer) {
    if (!connected.has(server)) continue;
    for (const problem of problems) {
      if (problem.feature !== feature) continue;
      if (problem.state === 'unknown') unconfirmed.push(`${server}: ${describeNeed(problem)}`);
      else
        (problem.severity === 'broken' ? broken : degraded).push(
          `${server}: lacks ${describeNeed(problem)}`,
        );
    }
  }
  const name = FEATURE_NAMES[feature];
  if (broken.length > 0) {
    return { ok: false, detail: `${name} cannot work: ${[...broken, ...degraded].join('; ')}` };
  }
  const parts: string[] = [];
  if (degraded.length > 0) parts.push(`degraded: ${degraded.join('; ')}`);
  if (unconfirmed.length > 0) parts.push(`not confirmed yet: ${unconfirmed.join('; ')}`);
  return parts.length > 0 ? { ok: true, detail: parts.join('; ') } : { ok: true };
}

/** One webhook endpoint: its routing-key filter and its sink. */
interface Webhook {
  accepts: (routingKey: string) => boolean;
  sink: WebhookSink;
  /** The endpoint's settings (and `retryBaseMs`) as JSON: an unchanged endpoint keeps its sink on reload. */
  settings: string;
}

/**
 * Builds the service for `options.config` (nothing starts until {@link Service.start}).
 * @throws ConfigError-like `Error` listing {@link checkServiceConfig} problems.
 */
export function createService(options: ServiceOptions): Service {
  const { config } = options;
  const problems = checkServiceConfig(config);
  if (problems.length > 0) {
    throw new Error(problems.map((p) => `config: ${p.key}: ${p.reason}`).join('\n'));
  }
  const logger = options.logger ?? createLogger(config.log.level);
  const metrics = options.metrics ?? createMetrics();
  const modules = [...(options.modules ?? [])];
  const flushTimeoutMs = options.busFlushTimeoutMs ?? 5000;
  const streams = new Set<SseStream>();
  const history = new BusHistory();

  let context: ServiceContext | undefined;
  let server: SwitchboardServer | undefined;
  let db: Database | undefined;
  let bus: Bus | undefined;
  let runner: AmiRunner | undefined;
  const m = serviceMetrics(metrics, () => runner);
  let simulator: EmbeddedSimulator | undefined;
  let webhooks: Webhook[] = [];
  /** Sinks replaced by a reload, still delivering what they hold. */
  const retiring = new Set<Promise<void>>();
  const started: ServiceModule[] = [];
  let starting: Promise<{ host: string; port: number; url: string }> | undefined;
  let stopping: Promise<void> | undefined;
  let registered = false;

  const log = logger.child({ component: 'service' });
  // Every access rule built from this section follows its reloads.
  followAuth(config.auth);

  /** One sink per endpoint; an endpoint whose settings did not change keeps its sink. */
  function buildWebhooks(section: Config['webhooks'], current: Webhook[]): Webhook[] {
    return section.endpoints.map((endpoint) => {
      const settings = JSON.stringify([endpoint, section.retryBaseMs]);
      const kept = current.find((hook) => hook.settings === settings);
      if (kept !== undefined) return kept;
      return {
        settings,
        accepts: webhookEventFilter(endpoint.events),
        sink: new WebhookSink({
          targets: [
            endpoint.secret === ''
              ? { url: endpoint.url, name: endpoint.name }
              : { url: endpoint.url, name: endpoint.name, secret: endpoint.secret },
          ],
          maxRetries: endpoint.maxRetries,
          timeoutMs: endpoint.timeoutMs,
          initialBackoffMs: section.retryBaseMs,
          registry: metrics.registry,
          logger: logger.child({ component: 'webhook', webhook: endpoint.name }),
        }),
      };
    });
  }

  function reload(next: Config): ReloadResult {
    const problems = checkServiceConfig(next);
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
      if (starting !== undefined && stopping === undefined) {
        const before = webhooks;
        webhooks = buildWebhooks(next.webhooks, before);
        for (const hook of before) {
          if (webhooks.includes(hook)) continue;
          const closing = hook.sink.close(flushTimeoutMs);
          retiring.add(closing);
          void closing.finally(() => retiring.delete(closing));
        }
      }
    }
    return { applied, restartRequired };
  }

  async function doStart(): Promise<{ host: string; port: number; url: string }> {
    // 1. Database, every module's migrations.
    db = await openDatabase(config.database.url, {
      poolSize: config.database.poolSize,
      busyTimeoutMs: config.database.busyTimeoutMs,
      connectTimeoutMs: config.database.connectTimeoutMs,
      retryAfterS: config.database.retryAfterS,
      ...(config.database.schema === '' ? {} : { schema: config.database.schema }),
      ...options.database,
    });
    const sets = modules.flatMap((module) => module.migrations ?? []);
    const applied = await migrate(db, sets);
    log.info(
      { dialect: db.dialect, database: redactUrl(config.database.url), applied: applied.length },
      'database ready',
    );

    // 2. Bus (connects in the background; publishing buffers meanwhile).
    const amqp = config.amqp;
    bus = createBus({
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
    });
    log.info(
      amqp.url === ''
        ? { bus: 'memory' }
        : { bus: 'amqp', url: redactUrl(amqp.url), exchange: amqp.exchange },
      'bus created',
    );
    const publisher = new XivoPublisher(bus, { originUuid: config.instance.uuid });

    // 3. Webhooks: one sink per endpoint, filtered by routing-key pattern on call.<event>.
    webhooks = buildWebhooks(config.webhooks, []);

    // 4. AMI: the configured servers, plus the embedded simulator when enabled.
    const servers = config.ami.servers.map((server) => amiClientOptions(server, options.ami));
    if (config.simulator.enabled) {
      try {
        simulator = await startEmbeddedSimulator(config.simulator, logger);
      } catch (error) {
        throw listenFailure(
          error,
          'embedded PBX simulator',
          config.simulator.listen,
          'simulator.listen',
        );
      }
      servers.push({ ...simulator.clientOptions, retryInitialConnect: true, ...options.ami });
      log.info({ port: simulator.port }, 'embedded PBX simulator started');
    }
    const tagServer = servers.length > 1;
    const extra = options.reporter;
    const amiLog = logger.child({ component: 'ami' });
    const reporter: Reporter = {
      onAmiEvent(event: AmiEvent, ctx: EventContext) {
        m.amiEvents.inc({ server: ctx.server, event: amiEventLabel(event.Event) });
        try {
          publisher.ami(event);
        } catch (error) {
          amiLog.debug({ err: error, server: ctx.server }, 'AMI event not publishable');
        }
      },
      onCallEvent(event: CallEvent, ctx: EventContext) {
        m.callEvents.inc({ event: event.event });
        publisher.call(event as unknown as CallEventLike, tagServer ? ctx.server : undefined);
        if (webhooks.length > 0) {
          const routingKey = `call.${event.event}`;
          for (const hook of webhooks)
            if (hook.accepts(routingKey)) hook.sink.send(event as unknown as WebhookEvent);
        }
        if (extra !== undefined) {
          const result = extra.onCallEvent?.(event, ctx);
          if (result instanceof Promise) {
            result.catch((error: unknown) =>
              log.warn(
                { err: error, event: event.event, server: ctx.server },
                'extra reporter (--print-events) failed on a call event',
              ),
            );
          }
        }
      },
    };
    const readiness = new Readiness();
    const features = amiFeatures(config, servers.length, modules);
    const permissionProblemsByServer = new Map<string, readonly AmiPermissionProblem[]>();
    runner = new AmiRunner(servers, reporter, {
      onStatus: (message) => amiLog.info(message),
      onWarning: (message) => amiLog.warn(message),
      maxChannels: config.ami.maxChannels,
      maxBridges: config.ami.maxBridges,
      onLimit: (server, kind) => m.engineForgotten.inc({ server, kind }),
      onSkipped: (server, error) => m.amiSkipped.inc({ server, reason: error.reason }),
      features,
      ...(options.amiPermissionProbeTimeoutMs === undefined
        ? {}
        : { permissionProbeTimeoutMs: options.amiPermissionProbeTimeoutMs }),
      onPermissions: (server, _permissions, problems) => {
        permissionProblemsByServer.set(server, problems);
        setPermissionGauges(m.amiPermissionMissing, server, problems, features);
      },
    });
    const connected = new Set<string>();
    for (const feature of features) {
      readiness.add(`ami-permissions:${feature}`, () =>
        permissionReadiness(feature, permissionProblemsByServer, connected),
      );
    }
    for (const client of runner.clients) {
      m.amiConnected.set({ server: client.name }, 0);
      client.on('connect', () => {
        connected.add(client.name);
        m.amiConnected.set({ server: client.name }, 1);
      });
      client.on('disconnect', () => {
        connected.delete(client.name);
        m.amiConnected.set({ server: client.name }, 0);
      });
      readiness.add(`ami:${client.name}`, () =>
        client.connected ? { ok: true } : { ok: false, detail: 'not connected to Asterisk' },
      );
    }
    const theDb = db;
    readiness.add('database', () => theDb.check());
    // sox / espeak-ng for the features that need them: checked now (logged) and in /readyz.
    const tools = toolReadiness(config, modules, logger.child({ component: 'tools' }));
    readiness.add('tools', tools.check);
    const theBus = bus;
    readiness.add('bus', () =>
      theBus.isConnected()
        ? { ok: true }
        : { ok: false, detail: `${theBus.status().kind} bus not connected` },
    );

    context = { config, logger, metrics, db, bus, publisher, ami: runner, readiness };

    // 5. HTTP: built-ins, the service's routes, every module's routes.
    server = await createServer({ config, logger, metrics, readiness });
    await serviceRoutes(server.app, {
      bus,
      publisher,
      auth: config.auth,
      streams,
      metrics,
      history,
      sseMaxStreams: config.http.sseMaxStreams,
      sseMaxBufferedBytes: config.http.sseMaxBufferedBytes,
      ...(options.sseKeepAliveMs === undefined ? {} : { sseKeepAliveMs: options.sseKeepAliveMs }),
    });
    for (const module of modules) await module.register?.(server.app, context);
    let address: { host: string; port: number; url: string };
    try {
      address = await server.listen();
    } catch (error) {
      throw listenFailure(error, 'HTTP server', config.http.listen, 'http.listen (or --listen)');
    }
    log.info({ url: address.url }, 'HTTP server listening');
    if (modules.some((module) => module.name === 'console')) {
      log.info({ url: `${address.url}/` }, `console: open ${address.url}/ in a browser`);
    }

    // 6. Registered, then AMI in the background, then the modules.
    publisher.registered({
      address: address.host,
      port: address.port,
      tags: ['switchboard', config.instance.uuid, config.instance.name],
    });
    registered = true;
    runner.start().catch((error: unknown) => {
      if (error instanceof AmiAuthError) {
        amiLog.error({ server: error.server }, `AMI login refused: ${error.message}`);
      } else if (stopping === undefined) {
        amiLog.error({ err: error }, 'AMI runner failed to start');
      }
    });
    for (const module of modules) {
      await module.start?.(context);
      started.push(module);
    }
    await tools.checked;
    log.info(
      {
        instance: config.instance.name,
        uuid: config.instance.uuid,
        amiServers: runner.clients.map((c) => c.name),
        modules: modules.map((mod) => mod.name),
      },
      'switchboard started',
    );
    return address;
  }

  async function doStop(): Promise<void> {
    log.info('stopping');
    context?.readiness.markClosing();
    // 1. HTTP: stop accepting, end the event streams, finish in-flight requests.
    const closingHttp = server?.close();
    await Promise.all([...streams].map((s) => s.close()));
    await closingHttp?.catch((error: unknown) => log.warn({ err: error }, 'HTTP close failed'));
    // 2. Modules, in reverse order.
    for (const module of started.reverse()) {
      try {
        await module.stop?.();
      } catch (error) {
        log.error({ err: error, module: module.name }, 'module stop failed');
      }
    }
    await history
      .stop()
      .catch((error: unknown) => log.warn({ err: error }, 'event-stream history stop failed'));
    // 3. AMI, then the simulator.
    await runner
      ?.stop()
      .catch((error: unknown) => log.warn({ err: error }, 'AMI runner stop failed'));
    await simulator
      ?.close()
      .catch((error: unknown) => log.warn({ err: error }, 'embedded PBX simulator close failed'));
    // 4. Webhooks (bounded), deregistration, bus flush (bounded), database.
    await Promise.all([...webhooks.map((hook) => hook.sink.close(flushTimeoutMs)), ...retiring]);
    if (registered && context !== undefined) {
      context.publisher.deregistered({
        tags: ['switchboard', config.instance.uuid, config.instance.name],
      });
    }
    if (bus !== undefined) {
      const status = bus.status();
      if (status.buffered > 0) {
        log.info({ buffered: status.buffered }, 'flushing the bus buffer');
      }
      await withTimeout(bus.close(flushTimeoutMs), flushTimeoutMs + 1000, 'bus close').catch(
        (error: unknown) => log.warn({ err: error }, 'bus close did not finish'),
      );
    }
    await db?.close().catch((error: unknown) => log.warn({ err: error }, 'database close failed'));
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
