/**
 * `switchboard-ami`: the AMI side of the spine as a shared Fastify plugin. At registration
 * it starts the embedded PBX simulator (when `simulator.enabled`), builds the `AmiRunner`
 * (one client and call engine per server) and its reporter, and decorates `app.ami`:
 *
 * ```
 * Asterisk ──AMI──▶ AmiClient ──▶ CallEngine ──▶ reporter ──▶ XivoPublisher ──▶ Bus
 *  (bytes)          (messages)     (call events)     ├──▶ webhooks (one sink per endpoint)
 *                                                    └──▶ the extra reporter (--print-events)
 * ```
 *
 * Features declare what they need of the manager user with `app.amiNeeds.add('callout')`
 * while they register (docs/ami.md, "Permissions"); AMI logs in afterwards, in `onReady`.
 * It adds the readiness checks `ami:<server>` and `ami-permissions:<feature>`, the AMI and
 * engine metrics, starts AMI in the background in `onReady` (after the migrations, before
 * the features' workers; a refused login or an unreachable Asterisk does not stop the
 * service) and in `onClose` logs off, closes the simulator and flushes the webhooks (bounded).
 */
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import { Counter, Gauge } from 'prom-client';
import type { AmiClientOptions } from '../ami/client.ts';
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
import type { CallEventLike } from '../bus/xivo.ts';
import type { CallEngine } from '../calls/engine.ts';
import type { CallEvent } from '../calls/events.ts';
import { AmiRunner } from '../calls/live.ts';
import type { EventContext, Reporter } from '../calls/reporter.ts';
import type { Config } from '../config/schema.ts';
import { listenFailure, type Readiness } from '../http/server.ts';
import type { Metrics } from '../metrics.ts';
import type { WebhookEvent } from '../sinks/webhook.ts';
import { reuseMetric } from '../util/metrics.ts';
import { type EmbeddedSimulator, startEmbeddedSimulator } from './simulator.ts';
import type { Webhooks } from './webhooks.ts';

/** Options of {@link amiPlugin}. */
export interface AmiPluginOptions {
  config: Config;
  /** Client options of the configured servers (`amiClientOptions`), in config order. */
  servers: AmiClientOptions[];
  /** Extra options for every AMI client, the simulator's too (tests: faster reconnects). */
  extra?: Partial<AmiClientOptions>;
  /** The webhook sinks (kept by the service: `reload` replaces them). */
  webhooks: Webhooks;
  /** An extra reporter fed with every call event; it must not block. */
  reporter?: Reporter;
  /** Longest wait for the read-`user` probe at each login, ms. */
  permissionProbeTimeoutMs?: number;
  metrics: Metrics;
  readiness: Readiness;
  logger: Logger;
}

/** The AMI plugin (name `switchboard-ami`; needs `switchboard-bus`). */
export const amiPlugin = fp<AmiPluginOptions>(
  async (app, options) => {
    const { config, metrics, readiness, logger, webhooks } = options;
    const publisher = app.publisher;
    let runner: AmiRunner | undefined;
    const m = serviceMetrics(metrics, () => runner);
    const servers = [...options.servers];
    let simulator: EmbeddedSimulator | undefined;
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
      servers.push({ ...simulator.clientOptions, retryInitialConnect: true, ...options.extra });
      logger
        .child({ component: 'service' })
        .info({ port: simulator.port }, 'embedded PBX simulator started');
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
        webhooks.send(`call.${event.event}`, event as unknown as WebhookEvent);
        if (extra !== undefined) {
          const result = extra.onCallEvent?.(event, ctx);
          if (result instanceof Promise) {
            result.catch((error: unknown) =>
              logger
                .child({ component: 'service' })
                .warn(
                  { err: error, event: event.event, server: ctx.server },
                  'extra reporter (--print-events) failed on a call event',
                ),
            );
          }
        }
      },
    };
    // What the manager user must allow: call events always; each feature adds its own
    // (`app.amiNeeds.add`) while it registers, before AMI logs in (onReady).
    // (The runner reads this very array at each login.)
    const features: AmiFeature[] = [];
    const permissionProblemsByServer = new Map<string, readonly AmiPermissionProblem[]>();
    runner = new AmiRunner(servers, reporter, {
      onStatus: (message) => amiLog.info(message),
      onWarning: (message) => amiLog.warn(message),
      maxChannels: config.ami.maxChannels,
      maxBridges: config.ami.maxBridges,
      onLimit: (server, kind) => m.engineForgotten.inc({ server, kind }),
      onSkipped: (server, error) => m.amiSkipped.inc({ server, reason: error.reason }),
      features,
      ...(options.permissionProbeTimeoutMs === undefined
        ? {}
        : { permissionProbeTimeoutMs: options.permissionProbeTimeoutMs }),
      onPermissions: (server, _permissions, problems) => {
        permissionProblemsByServer.set(server, problems);
        setPermissionGauges(m.amiPermissionMissing, server, problems, features);
      },
    });
    const connected = new Set<string>();
    const need = (feature: AmiFeature) => {
      if (features.includes(feature)) return;
      features.push(feature);
      readiness.add(`ami-permissions:${feature}`, () =>
        permissionReadiness(feature, permissionProblemsByServer, connected),
      );
    };
    need('calls');
    app.decorate('amiNeeds', { add: need });
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
    const theRunner = runner;
    app.decorate('ami', theRunner);
    let closing = false;
    // onReady, after the migrations and before the features' workers (so that AMI is
    // connecting while they start), as `serve` always did.
    app.addHook('onReady', async () => {
      theRunner.start().catch((error: unknown) => {
        if (error instanceof AmiAuthError) {
          amiLog.error({ server: error.server }, `AMI login refused: ${error.message}`);
        } else if (!closing) {
          amiLog.error({ err: error }, 'AMI runner failed to start');
        }
      });
    });
    app.addHook('onClose', async () => {
      closing = true;
      const log = logger.child({ component: 'service' });
      await theRunner
        .stop()
        .catch((error: unknown) => log.warn({ err: error }, 'AMI runner stop failed'));
      await simulator
        ?.close()
        .catch((error: unknown) => log.warn({ err: error }, 'embedded PBX simulator close failed'));
      await webhooks.close();
    });
  },
  { name: 'switchboard-ami', dependencies: ['switchboard-bus'], fastify: '5.x' },
);

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
