/**
 * The interface a feature module (callout, announce, push, jenkins, ...) implements to plug
 * into `switchboard serve`. A module is a plain object; the service calls it in a fixed
 * order, so a module never has to know about the others:
 *
 * 1. **migrations**: applied with every other module's at start, before anything else runs
 *    (`src/store/db.ts`, `defineMigrations`); a module's tables carry its name as prefix.
 * 2. **register(app, ctx)**: add routes, schemas, hooks (access rule, error shape) as a
 *    Fastify plugin, e.g. `await app.register(calloutRoutes, { ctx })`. Called before the
 *    HTTP server listens. Subscribe to the bus here or in `start`.
 * 3. **start(ctx)**: start timers, watchers, schedulers: after the HTTP server listens and
 *    `service.registered.switchboard` is published, while AMI may still be connecting
 *    (check `ctx.ami.clients[i].connected`, or retry: AMI actions reject while
 *    disconnected). Must not block for long: long work runs in the background.
 * 4. **stop()**: at shutdown, in reverse registration order, after the HTTP server stopped
 *    accepting and finished its in-flight requests, but BEFORE AMI, the bus and the
 *    database close, so a module can still finish its work, publish and write. Bounded by
 *    the module itself (the service waits).
 *
 * ```ts
 * export const calloutModule: ServiceModule = {
 *   name: 'callout',
 *   migrations: [calloutMigrations],
 *   async register(app, ctx) { await app.register(calloutRoutes, { ctx }); },
 *   async start(ctx) { scheduler = startEscalations(ctx); },
 *   async stop() { await scheduler?.stop(); },
 * };
 * await createService({ config, modules: [calloutModule] }).start();
 * ```
 */
import type { Logger } from 'pino';
import type { Bus } from '../bus/bus.ts';
import type { XivoPublisher } from '../bus/xivo.ts';
import type { AmiRunner } from '../calls/live.ts';
import type { Config } from '../config/schema.ts';
import type { App, Readiness } from '../http/server.ts';
import type { Metrics } from '../metrics.ts';
import type { Database, MigrationSet } from '../store/db.ts';

/** What every module receives: the shared, already-open resources of the service. */
export interface ServiceContext {
  /** The validated configuration (each module reads its own section). */
  config: Config;
  /** The process logger (pino); use `logger.child({ module: name })`. Never log secrets. */
  logger: Logger;
  /** The metrics registry (`metrics.registry`) served at `/metrics`. */
  metrics: Metrics;
  /** The database, migrated. */
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
  /** Readiness checks shown at `/readyz`: `readiness.add('callout', () => ...)`. */
  readiness: Readiness;
}

/** A feature module of the service. Every member but `name` is optional. */
export interface ServiceModule {
  /** Module name: lowercase (`callout`), used in logs and as access-rule module name. */
  readonly name: string;
  /** The module's migrations, applied at start. */
  readonly migrations?: readonly MigrationSet[];
  /** Adds the module's HTTP routes (as a Fastify plugin) before the server listens. */
  register?(app: App, ctx: ServiceContext): void | Promise<void>;
  /** Starts background work once the service is up. */
  start?(ctx: ServiceContext): void | Promise<void>;
  /** Stops background work; called at shutdown before AMI, bus and database close. */
  stop?(): void | Promise<void>;
}
