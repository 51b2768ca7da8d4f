/**
 * The live console (docs/console.md): a web page at `/` showing the calls in progress, the
 * escalations, the announcements, the push wake-ups and the health of the service, live.
 * One `serve` feature plugin (name `console`, needs the spine; docs/architecture.md):
 *
 * - at registration: the read APIs of `./routes.ts` (access rule, module name `console`) and the
 *   page of `./static.ts`; follows the AMI clients (`./tracker.ts`) and the bus
 *   (`call.attended_transfer`, `call.blind_transfer`, `call.blonde_transfer`,
 *   `push.wake.answered`); publishes `switchboard.health` (name
 *   `ami_server_status`, data `{server, connected}`) when an AMI server connects or
 *   disconnects, so that the page's health view updates at once.
 * - `onReady`: the Redis connection of the health view (when `redis.url` is set).
 * - `onClose`: unsubscribes, closes Redis.
 */
import fp from 'fastify-plugin';
import { Redis } from 'ioredis';
import type { Subscription } from '../bus/bus.ts';
import { envelope } from '../bus/xivo.ts';
import type { CallEvent } from '../calls/events.ts';
import type { App } from '../http/server.ts';
import type { WakeRecord } from '../push/wake.ts';
import { contextOf, type Feature, type FeaturePlugin, SPINE_PLUGINS } from '../serve/module.ts';
import { consoleRoutes } from './routes.ts';
import { loadStaticFiles, registerStatic } from './static.ts';
import { ConsoleTracker } from './tracker.ts';

/** Routing key of the console's health notices on the bus. */
export const HEALTH_ROUTING_KEY = 'switchboard.health';

/** The console as a `serve` feature plugin (always on; the page at `/`). */
export function consoleServiceModule(): FeaturePlugin {
  const tracker = new ConsoleTracker();
  const subscriptions: Subscription[] = [];
  let redis: Redis | undefined;
  return fp(
    async (app: App) => {
      const ctx = contextOf(app);
      tracker.attach(ctx.ami.clients);
      for (const client of ctx.ami.clients) {
        const notice = (connected: boolean) => () =>
          void ctx.bus.publish(
            HEALTH_ROUTING_KEY,
            envelope('ami_server_status', ctx.config.instance.uuid, {
              server: client.name,
              connected,
            }),
          );
        client.on('connect', notice(true));
        client.on('disconnect', notice(false));
      }
      const onTransfer = (message: { data: unknown }) => {
        const event = message.data as CallEvent & Record<string, unknown>;
        const ids: string[] = [];
        const collect = (value: unknown): void => {
          if (value === null || typeof value !== 'object') return;
          if (Array.isArray(value)) {
            for (const item of value) collect(item);
            return;
          }
          const record = value as Record<string, unknown>;
          if (typeof record.uniqueid === 'string') ids.push(record.uniqueid);
          for (const v of Object.values(record)) if (typeof v === 'object') collect(v);
        };
        collect(event);
        const server =
          typeof event.server === 'string' ? event.server : (ctx.ami.clients[0]?.name ?? '');
        tracker.markTransferred(server, ids);
      };
      subscriptions.push(
        ...['attended_transfer', 'blind_transfer', 'blonde_transfer'].map((name) =>
          ctx.bus.subscribe(`call.${name}`, onTransfer),
        ),
        ctx.bus.subscribe('push.wake.answered', (message) => {
          tracker.addWakeup(message.data as WakeRecord);
        }),
      );
      const files = loadStaticFiles();
      if (files.size === 0) {
        ctx.logger.warn('console: the page is not built (dist/web/ missing); run `npm run build`');
      }
      await app.register(async (scope: App) => {
        registerStatic(scope, files);
      });
      await app.register(async (api: App) => {
        await consoleRoutes(api, {
          ctx,
          tracker,
          redis: () => redis,
          pushEnabled: ctx.config.push.enabled,
        });
      });
      app.addHook('onReady', async () => {
        if (ctx.config.redis.url === '') return;
        redis = new Redis(ctx.config.redis.url, {
          lazyConnect: true,
          enableOfflineQueue: false,
          maxRetriesPerRequest: 1,
          connectionName: 'switchboard-console',
        });
        // ioredis reconnects by itself; the health view shows the state. One line per outage.
        const log = ctx.logger.child({ module: 'console' });
        let down = false;
        redis.on('error', (error: Error) => {
          if (!down) log.warn({ err: error.message }, 'console: Redis unreachable (health view)');
          down = true;
        });
        redis.on('ready', () => {
          down = false;
        });
        redis.connect().catch(() => {
          // Reported by the 'error' listener above; ioredis keeps retrying.
        });
      });
      app.addHook('onClose', async () => {
        tracker.detach();
        await Promise.all(subscriptions.splice(0).map((s) => s.close()));
        redis?.disconnect();
      });
    },
    { name: 'console', dependencies: [...SPINE_PLUGINS], fastify: '5.x' },
  );
}

/** The console in the feature list (src/serve/modules.ts, last): its plugin. */
export const consoleFeature: Feature = { name: 'console', plugin: () => consoleServiceModule() };
