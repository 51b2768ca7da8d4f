/**
 * The callout module (Barista alert calls, issue 4): the API (`routes.ts`), the durable
 * escalation worker (`service.ts`), its tables (`repository.ts`) and the telephony providers
 * (`providers/`: asterisk, twilio, dryrun). See docs/callout.md.
 *
 * As a `serve` feature plugin: {@link calloutServiceModule}. Standalone:
 *
 * ```ts
 * const callout = createCalloutModule({ config, db, logger, amiClients: () => ami.clients,
 *   publish: (key, name, data) => bus.publish(key, envelope(name, uuid, data)) });
 * await migrate(db, [callout.migrations]);
 * await app.register(callout.plugin);
 * callout.start();
 * ...
 * await callout.stop();
 * ```
 */
import { join, resolve } from 'node:path';
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { envelope } from '../bus/xivo.ts';
import type { Config } from '../config/schema.ts';
import type { App } from '../http/server.ts';
import type { SpeechEngine } from '../media/tts/engine.ts';
import { createSpeechEngine } from '../media/tts/index.ts';
import {
  checkAmiServerRefs,
  contextOf,
  type Feature,
  SPINE_PLUGINS,
  withHandles,
} from '../serve/module.ts';
import type { Database, MigrationSet } from '../store/db.ts';
import type { CallEventSource } from '../telephony/originate.ts';
import { provideConsoleSource } from './console.ts';
import { calloutMetrics } from './metrics.ts';
import { createAsteriskProvider } from './providers/asterisk.ts';
import { createDryRunProvider } from './providers/dryrun.ts';
import { createTwilioProvider, twilioWebhookRoutes } from './providers/twilio.ts';
import type { CalloutProvider } from './providers/types.ts';
import { calloutMigrations } from './repository.ts';
import { calloutRetention } from './retention.ts';
import { calloutRoutes } from './routes.ts';
import { type CalloutPublish, CalloutService, type CalloutServiceOptions } from './service.ts';

export type { AttemptOutcome, CalloutProvider, DialRequest } from './providers/types.ts';
export { calloutMigrations } from './repository.ts';
export { baristaErrorFormatter, historyBody, validateCallRequest } from './routes.ts';
export { CalloutService, EVENT_STATUS } from './service.ts';

/** Dependencies of {@link createCalloutModule}. */
export interface CalloutModuleOptions {
  /** The whole config (`callout`, `auth`, `tts`, `ami.servers` are read). */
  config: Config;
  db: Database;
  logger: Logger;
  /** AMI clients (the service's `ami.clients`). */
  amiClients?: () => ReadonlyArray<
    CallEventSource & { readonly connected: boolean; readonly name: string }
  >;
  /** Bus publisher for `callout.*`. */
  publish?: CalloutPublish;
  /** Replaces the speech engine built from `tts` (benchmarks). */
  speech?: SpeechEngine;
  /** Extra/replacement providers by name. */
  providers?: Record<string, CalloutProvider>;
  /** Lease owner id of this worker. */
  owner?: string;
  /** Registry of the Prometheus series (`callout/metrics.ts`); none = not exported. */
  metricsRegistry?: Registry;
  /** Told of each call handed to its provider (benchmarks: due-to-placed delays). */
  onPlaced?: CalloutServiceOptions['onPlaced'];
}

/** The assembled module. */
export interface CalloutModule {
  readonly migrations: MigrationSet;
  /** Fastify plugin (register it encapsulated): the Barista routes and the Twilio webhooks. */
  readonly plugin: (app: App) => Promise<void>;
  readonly service: CalloutService;
  /** Name of the provider used for testflg=0. */
  readonly defaultProvider: string;
  start(): void;
  stop(graceMs?: number): Promise<void>;
}

/**
 * Which provider `callout.provider` selects (`auto`: asterisk with AMI servers or the embedded
 * simulator, else dryrun).
 */
export function selectProvider(config: Config): string {
  const p = config.callout.provider;
  if (p !== 'auto') return p;
  return config.ami.servers.length > 0 || config.simulator.enabled ? 'asterisk' : 'dryrun';
}

/** Alert calls go through AMI (and need its permissions): enabled, with the asterisk provider. */
export function calloutNeedsAmi(config: Config): boolean {
  return config.callout.enabled && selectProvider(config) === 'asterisk';
}

/**
 * Builds the module.
 * @throws Error when `auth.allowNetworks` is invalid (at plugin registration) or the media
 *   directory cannot be created.
 */
export function createCalloutModule(options: CalloutModuleOptions): CalloutModule {
  const { config } = options;
  const c = config.callout;
  const logger = options.logger.child({ module: 'callout' });
  const providers: Record<string, CalloutProvider> = {
    dryrun: createDryRunProvider(c.dryRun),
  };
  const defaultProvider = selectProvider(config);
  if (defaultProvider === 'asterisk' || config.ami.servers.length > 0) {
    const mediaDir = resolve(c.mediaDir);
    providers.asterisk = createAsteriskProvider({
      clients: options.amiClients ?? (() => []),
      servers: c.amiServers,
      dialString: c.dialString,
      context: c.context,
      callerId: c.callerId,
      mediaDir,
      confirm: c.confirm,
      speech:
        options.speech ?? createSpeechEngine(config.tts, { cacheDir: join(mediaDir, 'cache') }),
      logger,
    });
  }
  let twilio: ReturnType<typeof createTwilioProvider> | undefined;
  if (defaultProvider === 'twilio' || c.twilio.accountSid) {
    twilio = createTwilioProvider({ ...c.twilio, logger });
    providers.twilio = twilio;
  }
  Object.assign(providers, options.providers);
  const service = new CalloutService({
    database: options.db,
    providers,
    defaultProvider,
    timeScale: c.timeScale,
    pollIntervalMs: c.pollIntervalMs,
    attemptLeaseMs: c.attemptLeaseMs,
    ringTimeoutMs: c.ringTimeoutS * 1000,
    batchSize: c.batchSize,
    pendingResultsMax: c.pendingResultsMax,
    // Decisions at the same time on PostgreSQL: half the pool (API and results need the rest).
    concurrency: Math.max(1, Math.floor(config.database.poolSize / 2)),
    logger,
    metrics: calloutMetrics(options.metricsRegistry),
    ...(options.publish ? { publish: options.publish } : {}),
    ...(options.owner ? { owner: options.owner } : {}),
    ...(options.onPlaced ? { onPlaced: options.onPlaced } : {}),
  });
  const plugin = async (app: App) => {
    await calloutRoutes(app, { service, config: c, auth: config.auth });
    if (twilio) {
      await twilioWebhookRoutes(app, {
        service,
        authToken: c.twilio.authToken,
        publicUrl: c.twilio.publicUrl,
        confirm: c.confirm,
      });
    }
  };
  return {
    migrations: calloutMigrations,
    plugin,
    service,
    defaultProvider,
    start: () => service.start(),
    async stop(graceMs) {
      await service.stop(graceMs);
      await Promise.all(Object.values(providers).map((p) => p.close?.()));
    },
  };
}

/**
 * The callout feature as a Fastify plugin (name `callout`, needs the spine): declares its
 * tables, builds {@link createCalloutModule} from the spine's decorations and mounts its
 * routes (an encapsulated child: the access rule, the seed's error shape and validator stay
 * its own); starts the worker in `onReady`, stops it in `onClose`. Registers nothing else
 * when `callout.enabled` is false. `.instance` is the module once registered.
 */
export function calloutServiceModule(extra: Partial<CalloutModuleOptions> = {}) {
  let module: CalloutModule | undefined;
  const plugin = fp(
    async (app: App) => {
      app.store.addMigrations(calloutMigrations);
      app.store.addRetention(calloutRetention);
      const ctx = contextOf(app);
      // What the live console shows of callout (its tables exist even when disabled).
      provideConsoleSource(app, ctx.db);
      if (!ctx.config.callout.enabled) return;
      // Alert calls by AMI Originate need their permissions (docs/ami.md).
      if (calloutNeedsAmi(ctx.config)) app.amiNeeds.add('callout');
      const uuid = ctx.config.instance.uuid;
      const built = createCalloutModule({
        config: ctx.config,
        db: ctx.db,
        logger: ctx.logger,
        amiClients: () => ctx.ami.clients,
        metricsRegistry: ctx.metrics.registry,
        publish: (key, name, data) => {
          ctx.bus.publish(key, envelope(name, uuid, data));
        },
        ...extra,
      });
      module = built;
      await app.register(built.plugin);
      app.addHook('onReady', async () => built.start());
      app.addHook('onClose', async () => {
        await built.stop().catch((error: unknown) => {
          ctx.logger.error({ err: error, module: 'callout' }, 'module stop failed');
        });
      });
    },
    { name: 'callout', dependencies: [...SPINE_PLUGINS], fastify: '5.x' },
  );
  return withHandles(plugin, {
    /** The module built at registration (undefined before, or when disabled). */
    get instance(): CalloutModule | undefined {
      return module;
    },
  });
}

/**
 * The callout feature in the feature list (src/serve/modules.ts): its plugin, the check of
 * `callout.amiServers`, its AMI permissions (`calloutNeedsAmi`), its use of sox and the
 * speech engine, and the languages of its head and foot texts.
 */
export const calloutFeature: Feature = {
  name: 'callout',
  plugin: () => calloutServiceModule(),
  checkConfig: (config) => checkAmiServerRefs(config, 'callout', config.callout.amiServers),
  amiFeature: (config) => (calloutNeedsAmi(config) ? 'callout' : undefined),
  toolUse: (config) =>
    config.callout.enabled &&
    (selectProvider(config) === 'asterisk' || config.ami.servers.length > 0)
      ? 'alert calls (their message is synthesized)'
      : undefined,
  speechLanguages: (config) =>
    [config.callout.head, config.callout.foot].flatMap((texts) =>
      Object.values(texts).flatMap((byLanguage) => Object.keys(byLanguage)),
    ),
};
