/**
 * How a feature (callout, announce, jenkins, push, cti, console, ...) plugs into
 * `switchboard serve`: as a Fastify plugin, nothing of our own (docs/architecture.md, "Adding
 * a feature").
 *
 * The service registers the spine first, as shared plugins (`fastify-plugin`: they decorate
 * the root instance), then every feature:
 *
 * | plugin | decorates | closes (`onClose`) |
 * |---|---|---|
 * | `switchboard-store` (`src/store/plugin.ts`) | `app.db`, `app.store.addMigrations()` | the database |
 * | `switchboard-bus` (`src/bus/plugin.ts`) | `app.bus`, `app.publisher` | deregisters, flushes, closes |
 * | `switchboard-ami` (`./ami.ts`) | `app.ami` (the `AmiRunner`), `app.amiNeeds.add()` | AMI, the simulator, webhooks |
 *
 * plus `app.switchboard` (config, logger, metrics, readiness), decorated by the service.
 *
 * A feature is one `fastify-plugin` with `name` and `dependencies` (Fastify refuses to start
 * when a dependency is missing or registered after it). At registration it declares its
 * tables (`app.store.addMigrations(set)`: every set is applied together, before any
 * `onReady` hook of a feature runs), adds its routes in an encapsulated child plugin (its
 * access rule, error shape and validator stay its own), and subscribes to the bus; it starts
 * its worker in `onReady` and stops it in `onClose`. Fastify runs `onClose` hooks in reverse
 * registration order, after the HTTP server stopped accepting and finished its in-flight
 * requests: features stop before AMI, the bus and the database close.
 *
 * ```ts
 * export const greeterPlugin = fp(
 *   async (app) => {
 *     const ctx = contextOf(app);
 *     app.store.addMigrations(greeterMigrations);
 *     await app.register(async (scope: App) => greeterRoutes(scope, ctx));
 *     let worker: Worker | undefined;
 *     app.addHook('onReady', async () => { worker = startGreeter(ctx); });
 *     app.addHook('onClose', async () => { await worker?.stop(); });
 *   },
 *   { name: 'greeter', dependencies: [...SPINE_PLUGINS], fastify: '5.x' },
 * );
 * ```
 */

import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync, RawServerDefault } from 'fastify';
import type { Logger } from 'pino';
import type { AmiFeature } from '../ami/permissions.ts';
import type { Bus } from '../bus/bus.ts';
import type { XivoPublisher } from '../bus/xivo.ts';
import type { AmiRunner } from '../calls/live.ts';
import type { ConfigProblem } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import type { DoctorResult } from '../doctor/result.ts';
import type { Readiness } from '../http/server.ts';
import type { Metrics } from '../metrics.ts';
import type { Database, MigrationSet } from '../store/db.ts';
import type { RetentionRule } from '../store/retention.ts';

/** The core of the service, decorated on the root instance as `app.switchboard`. */
export interface SwitchboardCore {
  /** The validated configuration (each feature reads its own section). */
  config: Config;
  /** The process logger (pino); use `logger.child({ module: name })`. Never log secrets. */
  logger: Logger;
  /** The metrics registry (`metrics.registry`) served at `/metrics`. */
  metrics: Metrics;
  /** Readiness checks shown at `/readyz`: `readiness.add('callout', () => ...)`. */
  readiness: Readiness;
}

/** What `app.store` offers a feature. */
export interface StoreRegistry {
  /** Declares a feature's tables; every set is migrated together when the service is ready. */
  addMigrations(...sets: readonly MigrationSet[]): void;
  /** Declares a feature's retention rule (src/store/retention.ts), run by `retention`. */
  addRetention(rule: RetentionRule): void;
  /** The rules declared so far, in registration order. */
  retentionRules(): readonly RetentionRule[];
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The service's core (config, logger, metrics, readiness). */
    switchboard: SwitchboardCore;
    /** The database (`switchboard-store`), migrated once the service is ready. */
    db: Database;
    /** Migrations registry of `switchboard-store`. */
    store: StoreRegistry;
    /** The bus, AMQP or in-process (`switchboard-bus`). */
    bus: Bus;
    /** Publishes with the XiVO envelopes and routing keys (`switchboard-bus`). */
    publisher: XivoPublisher;
    /** The AMI runner: clients and call engines, one per server (`switchboard-ami`). */
    ami: AmiRunner;
    /**
     * What a feature needs of the manager user (`switchboard-ami`): add it while registering,
     * e.g. `app.amiNeeds.add('callout')`; checked at each login, shown at `/readyz`.
     */
    amiNeeds: { add(feature: AmiFeature): void };
  }
}

/** Names of the spine plugins, in registration order (a feature's usual `dependencies`). */
export const SPINE_PLUGINS = ['switchboard-store', 'switchboard-bus', 'switchboard-ami'] as const;

/** Everything shared, as one object (what a feature passes to its own functions). */
export interface ServiceContext extends SwitchboardCore {
  /** The database (migrated once the service is ready: use it from `onReady` on). */
  db: Database;
  /** The bus (AMQP or in-process); publish with `publisher` for the XiVO conventions. */
  bus: Bus;
  /** Publishes with the XiVO envelopes and routing keys (`origin_uuid` = the instance). */
  publisher: XivoPublisher;
  /**
   * The AMI runner: `ami.clients` (one `AmiClient` per configured server, in config order;
   * use them to send actions such as `Originate`), `ami.engines` (call state per server).
   */
  ami: AmiRunner;
}

/** The shared resources from the spine's decorations (after the spine plugins loaded). */
export function contextOf(app: {
  switchboard: SwitchboardCore;
  db: Database;
  bus: Bus;
  publisher: XivoPublisher;
  ami: AmiRunner;
}): ServiceContext {
  return { ...app.switchboard, db: app.db, bus: app.bus, publisher: app.publisher, ami: app.ami };
}

/** A feature: a Fastify plugin wrapped with `fastify-plugin` (`name`, `dependencies`). */
export type FeaturePlugin = FastifyPluginAsync<
  Record<never, never>,
  RawServerDefault,
  TypeBoxTypeProvider
>;

/** @deprecated the old name of {@link FeaturePlugin}. */
export type ServiceModule = FeaturePlugin;

const PLUGIN_META = Symbol.for('plugin-meta');

/** The `name` a feature declared through `fastify-plugin` (else the function's name). */
export function featureName(feature: FeaturePlugin): string {
  const meta = (feature as unknown as Record<symbol, { name?: string } | undefined>)[PLUGIN_META];
  return meta?.name ?? feature.name;
}

/**
 * `plugin` with `handles`' properties (getters kept as getters): how a feature factory hands
 * its parts to tests and benches (`callout.instance`, `announce.listener`).
 */
export function withHandles<T extends object>(
  plugin: FeaturePlugin,
  handles: T,
): FeaturePlugin & T {
  Object.defineProperties(plugin, Object.getOwnPropertyDescriptors(handles));
  return plugin as FeaturePlugin & T;
}

/**
 * One entry of the feature list (`FEATURES`, src/serve/modules.ts): the plugin and what the
 * feature contributes to the checks made without starting it. `serve`, `config check` and
 * `switchboard doctor` all read that one list, so that removing a feature is deleting its
 * folder and its entry there (docs/architecture.md, "Removing a feature").
 */
export interface Feature {
  /** The plugin's `name` (as in its `fastify-plugin` metadata), e.g. `announce`. */
  readonly name: string;
  /** A new instance of the plugin (each `serve` registers its own). */
  plugin(): FeaturePlugin;
  /**
   * What the configuration schema cannot check in the feature's section (run by `config
   * check`, at start and at reload, when the feature is in the service).
   * @returns the problems, each naming its key (empty when fine).
   */
  checkConfig?(config: Config): ConfigProblem[];
  /**
   * The feature's own lines of `switchboard doctor` (resolving to undefined: nothing to
   * say for this configuration). Each bounded by the doctor's `timeoutMs` where it waits.
   */
  doctorChecks?(config: Config, timeoutMs: number): Promise<DoctorResult | undefined>[];
  /**
   * The AMI permissions the feature needs with `config` (what its plugin declares with
   * `app.amiNeeds.add`), for `doctor`, which does not start it. `amiServers`: how many AMI
   * clients the service would have.
   */
  amiFeature?(config: Config, amiServers: number): AmiFeature | undefined;
  /** Why the feature needs sox and the speech engine with `config` (a phrase for log lines), if it does. */
  toolUse?(config: Config): string | undefined;
  /** The languages the feature speaks with `config` (the doctor checks espeak-ng has voices). */
  speechLanguages?(config: Config): string[];
}

/**
 * Checks a feature's `amiServers` list (`<section>.amiServers`): each entry names a
 * configured AMI server (or `simulator` when the embedded simulator runs).
 * @returns one problem per unknown name, keyed `<section>.amiServers[i]`.
 */
export function checkAmiServerRefs(
  config: Config,
  section: string,
  amiServers: readonly string[],
): ConfigProblem[] {
  const known = new Set(config.ami.servers.map((server) => server.name));
  if (config.simulator.enabled) known.add('simulator');
  const problems: ConfigProblem[] = [];
  amiServers.forEach((name, i) => {
    if (!known.has(name)) {
      problems.push({
        key: `${section}.amiServers[${i}]`,
        reason: `no AMI server is named ${JSON.stringify(name)} (names: ${[...known].join(', ') || 'none'})`,
      });
    }
  });
  return problems;
}
