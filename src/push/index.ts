/**
 * The push module (VoIPGRID push middleware API, issue 6): wakes a sleeping mobile VoIP app
 * with an APNs/FCM push when a call comes in and tells the PBX whether the app can take it.
 *
 * Wiring, with explicit dependencies (no global state):
 *
 * ```ts
 * const push = createPushModule({
 *   config: config.push, db, registry: metrics.registry, logger,
 *   redis: config.redis.url ? { url: config.redis.url, keyPrefix: config.redis.keyPrefix } : undefined,
 * });
 * await migrate(db, [push.migrations]);
 * await app.register(push.plugin);       // the routes (encapsulated: own error shape)
 * await push.start();                    // Redis subscription (when configured)
 * bus.subscribe('call.hangup', (m) => push.handleCallEvent(m.data as CallEvent));
 * ...
 * await push.stop();                     // NAK held calls, close Redis and HTTP/2 sessions
 * ```
 *
 * or as a `serve` module: {@link pushServiceModule} (`name`, `migrations`, `register`,
 * `start`, `stop`), which does the above from the service context.
 */
import { createHash } from 'node:crypto';
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { BusMessage } from '../bus/bus.ts';
import { envelope } from '../bus/xivo.ts';
import type { CallEvent } from '../calls/events.ts';
import type { PushConfig } from '../config/schema.ts';
import type { App } from '../http/server.ts';
import { type Feature, withHandles } from '../serve/module.ts';
import type { Database, MigrationSet } from '../store/db.ts';
import {
  type AccountChecker,
  accountApiLocation,
  createAccountApi,
  createStaticAccounts,
} from './accounts.ts';
import { createKnownApps, type KnownApps } from './apps.ts';
import {
  createDeviceStore,
  type DeviceStore,
  type DevicesPerAccount,
  pushMigrations,
} from './devices.ts';
import { createPushMetrics, type PushMetrics } from './metrics.ts';
import { pushRoutes } from './routes.ts';
import type { PushSender } from './senders/types.ts';
import {
  type Coordinator,
  createMemoryCoordinator,
  createRedisCoordinator,
  type WakeRecord,
  WakeService,
} from './wake.ts';

export type { AccountChecker, AccountDecision } from './accounts.ts';
export type { KnownApps, Route } from './apps.ts';
export type { Device, DeviceStore, DevicesPerAccount, Platform } from './devices.ts';
export { createDeviceStore, pushMigrations } from './devices.ts';
export type { PushMetrics } from './metrics.ts';
export { pushErrorFormatter } from './routes.ts';
export type { PushPayload, PushSender, PushTarget, SendResult } from './senders/types.ts';
export type {
  CallResponse,
  Coordinator,
  IncomingCall,
  NakReason,
  WakeAnswer,
  WakeRecord,
} from './wake.ts';
export { createMemoryCoordinator, createRedisCoordinator, WakeService } from './wake.ts';

/** Dependencies of {@link createPushModule}. */
export interface PushModuleOptions {
  /** The `push` configuration section. */
  config: PushConfig;
  /** The shared database (SQLite or PostgreSQL); run {@link PushModule.migrations} on it. */
  db: Database;
  /** The application's metrics registry (`/metrics`). */
  registry: Registry;
  /** The process logger; the module logs through a child `{module: 'push'}`. */
  logger: Logger;
  /**
   * Redis (`redis.url`, `redis.keyPrefix`) to coordinate several processes; undefined or an
   * empty url = in-process only.
   */
  redis?: { url: string; keyPrefix?: string } | undefined;
  /**
   * `response_api` put in the push payload (the public URL of `POST /api/call-response/`);
   * default: derived from each incoming-call request's protocol and Host.
   */
  responseUrl?: string;
  /** Replaces the APNs/FCM senders built from config for every app (tests, benchmarks). */
  senders?: Partial<Record<'apns' | 'fcm', PushSender>>;
  /** Replaces the account check built from config (static users or account API). */
  accounts?: AccountChecker;
  /** Replaces the coordinator built from `redis`. */
  coordinator?: Coordinator;
  /** This process's id on Redis (default random). */
  instanceId?: string;
  /** Called once per wake-up answered (ACK/NAK), never with a token (see `WakeRecord`). */
  onWake?: (wake: WakeRecord) => void;
}

/** The assembled module. */
export interface PushModule {
  /** `push`. */
  readonly name: 'push';
  /** Migrations of `push_device`. */
  readonly migrations: MigrationSet;
  /** Fastify plugin with the routes; register it on the server app. */
  readonly plugin: (app: App) => Promise<void>;
  /** The wake-up service (held calls). */
  readonly wake: WakeService;
  /** The device store. */
  readonly devices: DeviceStore;
  /** The configured apps (`push.apps`) and their senders. */
  readonly apps: KnownApps;
  readonly metrics: PushMetrics;
  /** Subscribes to Redis when configured; call before serving. */
  start(): Promise<void>;
  /**
   * Feeds a call event: a `hangup` (or `queue_caller_abandon`) whose caller's `uniqueid` or
   * `linkedid`, or the MD5 hex of one (`${MD5(${UNIQUEID})}` in the dialplan), equals a held
   * call's `call_id` answers that call NAK (and cancels its pushes when cancel pushes are on).
   */
  handleCallEvent(event: CallEvent): void;
  /** Answers held calls NAK, closes Redis and push connections. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Builds the push module from its dependencies.
 * @throws Error when a configured APNs key/certificate or FCM service-account file cannot be
 *   read, or an `allowNetworks` entry is invalid (at plugin registration).
 */
export function createPushModule(options: PushModuleOptions): PushModule {
  const { config } = options;
  const logger = options.logger.child({ module: 'push' });
  const metrics = createPushMetrics(options.registry);
  const devices = createDeviceStore(options.db, {
    devicesPerAccount: config.devicesPerAccount as DevicesPerAccount,
  });
  const apps = createKnownApps(config, options.senders);
  const location = accountApiLocation(config.accountApi);
  const accounts =
    options.accounts ??
    (location
      ? createAccountApi({
          ...location,
          appAccountField: config.accountApi.appAccountField,
          accountIdField: config.accountApi.accountIdField,
          cacheTtlS: config.accountApi.cacheTtlS,
          timeoutMs: config.accountApi.timeoutMs,
          onError: (detail) => logger.warn({ detail }, 'push: account API failed'),
        })
      : createStaticAccounts(config.users));
  const coordinator =
    options.coordinator ??
    (options.redis?.url
      ? createRedisCoordinator({
          url: options.redis.url,
          ...(options.redis.keyPrefix === undefined ? {} : { keyPrefix: options.redis.keyPrefix }),
          ...(options.instanceId === undefined ? {} : { instanceId: options.instanceId }),
          logger,
        })
      : createMemoryCoordinator());
  const wake = new WakeService({
    settings: {
      budgetMs: config.budgetMs,
      intervalMs: config.intervalMs,
      maxPushes: config.maxPushes,
      cancelPushes: config.devicesPerAccount === 'several',
    },
    devices,
    route: (device) => apps.route(device),
    coordinator,
    metrics,
    logger,
    ...(options.onWake === undefined ? {} : { onWake: options.onWake }),
  });
  const plugin = async (app: App) => {
    await pushRoutes(app, {
      wake,
      devices,
      apps,
      accounts,
      metrics,
      allowNetworks: config.allowNetworks,
      ...(options.responseUrl ? { responseUrl: options.responseUrl } : {}),
    });
  };
  let stopping: Promise<void> | undefined;
  return {
    name: 'push',
    migrations: pushMigrations,
    plugin,
    wake,
    devices,
    apps,
    metrics,
    start: () => wake.start(),
    handleCallEvent(event) {
      if (event.event !== 'hangup' && event.event !== 'queue_caller_abandon') return;
      const ids = new Set([event.caller.uniqueid, event.caller.linkedid].filter((id) => id));
      // A call_id may be the id itself or its MD5 (32 hex digits: a key the iOS app accepts).
      for (const id of [...ids]) ids.add(createHash('md5').update(id).digest('hex'));
      for (const id of ids) wake.callerHungUp(id);
    },
    stop() {
      stopping ??= (async () => {
        await wake.stop();
        await apps.close();
      })();
      return stopping;
    },
  };
}

/**
 * The push feature as a Fastify plugin (name `push`; needs `switchboard-store` and
 * `switchboard-bus`): builds {@link createPushModule} from the spine, connects its Redis
 * coordination (when `redis.url` is set) and mounts its routes at registration, subscribes
 * to `call.hangup` and `call.queue_caller_abandon` on the bus for cancel pushes, publishes
 * every answered wake-up as `push.wake.answered` (name `push_wake_answered`, data a
 * `WakeRecord`); in
 * `onClose` unsubscribes and answers held calls NAK. Does nothing else when `push.enabled`
 * is false. `.instance` is the module once registered.
 */
export function pushServiceModule(
  extra: Omit<PushModuleOptions, 'config' | 'db' | 'registry' | 'logger' | 'redis'> = {},
) {
  let module: PushModule | undefined;
  const subscriptions: Array<{ close(): Promise<void> }> = [];
  const plugin = fp(
    async (app: App) => {
      app.store.addMigrations(pushMigrations);
      const { config, logger, metrics } = app.switchboard;
      if (!config.push.enabled) return;
      const built = createPushModule({
        ...extra,
        config: config.push,
        db: app.db,
        registry: metrics.registry,
        logger,
        redis: config.redis.url ? config.redis : undefined,
        onWake: (wake) => {
          app.bus.publish(
            'push.wake.answered',
            envelope('push_wake_answered', config.instance.uuid, wake),
          );
        },
      });
      module = built;
      await built.start();
      await app.register(built.plugin);
      for (const key of ['call.hangup', 'call.queue_caller_abandon']) {
        subscriptions.push(
          app.bus.subscribe(key, (message) => built.handleCallEvent(message.data as CallEvent)),
        );
      }
      app.addHook('onClose', async () => {
        try {
          await Promise.all(subscriptions.splice(0).map((s) => s.close()));
          await built.stop();
        } catch (error) {
          logger.error({ err: error, module: 'push' }, 'module stop failed');
        }
      });
    },
    { name: 'push', dependencies: ['switchboard-store', 'switchboard-bus'], fastify: '5.x' },
  );
  return withHandles(plugin, {
    /** The module built at registration (undefined before, or when disabled). */
    get instance(): PushModule | undefined {
      return module;
    },
  });
}

/** The push feature in the feature list (src/serve/modules.ts): its plugin. */
export const pushFeature: Feature = { name: 'push', plugin: () => pushServiceModule() };
