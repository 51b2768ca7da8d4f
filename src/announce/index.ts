import path from 'node:path';
import fp from 'fastify-plugin';
import type { AnnounceConfig, Config } from '../config/schema.ts';
import type { DoctorResult } from '../doctor/result.ts';
import type { App } from '../http/server.ts';
import {
  checkAmiServerRefs,
  contextOf,
  type Feature,
  type FeaturePlugin,
  SPINE_PLUGINS,
  withHandles,
} from '../serve/module.ts';
import { connectedInOrder } from '../telephony/placed-calls.ts';
import { checkAnnounceConfig, checkSpoolDir } from './checks.ts';
import { provideConsoleSource } from './console.ts';
import { type GongListener, startGongListener } from './listener.ts';
import {
  type AnnounceModule,
  type AnnounceModuleOptions,
  type AnnounceService,
  createAnnounceModule,
} from './module.ts';
import { announceMigrations } from './repository.ts';
import { announceRetention } from './retention.ts';

export { checkAnnounceConfig, checkSpoolDir } from './checks.ts';
export { type GongListener, startGongListener } from './listener.ts';
export {
  type AnnounceModule,
  type AnnounceModuleOptions,
  type AnnounceService,
  createAnnounceModule,
  type MessageView,
} from './module.ts';
export { callFilePlayer, originatePlayer, type PlayResult, playbackTarget } from './playback.ts';
export {
  AnnounceInputError,
  AnnounceQueueFullError,
  AnnounceUnavailableError,
  announceMigrations,
  MessageRepository,
  type MessageRow,
} from './repository.ts';
export { formatLocal, gongErrorFormatter, parseStart } from './routes.ts';
export { AnnounceScheduler, computeSchedule, type ScheduleItem } from './scheduler.ts';

/**
 * Announcements go through AMI (and need its permissions): enabled, playing by `Originate`
 * (`amiServers`: how many AMI clients the service has, the simulator's included).
 */
export function announceNeedsAmi(
  config: { announce: Pick<AnnounceConfig, 'enabled' | 'playback'> },
  amiServers: number,
): boolean {
  return (
    config.announce.enabled && resolvePlayback(config.announce.playback, amiServers) === 'originate'
  );
}

/** `auto` → `originate` when the service has an AMI client, else `callfile`. */
export function resolvePlayback(
  playback: AnnounceConfig['playback'],
  amiClients: number,
): 'originate' | 'callfile' {
  if (playback === 'originate' || playback === 'callfile') return playback;
  return amiClients > 0 ? 'originate' : 'callfile';
}

/** What the announce feature exports to the others (`app.announce`, e.g. for jenkins). */
export interface AnnounceExport {
  /** The service (undefined when `announce.enabled` is false). */
  readonly service: AnnounceService | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The announce feature's service (plugin `announce`). */
    announce: AnnounceExport;
  }
}

/** The announce feature plugin, plus its instance once registered. */
export type AnnounceServiceModule = FeaturePlugin & {
  /** The module built at registration (undefined before, or when `announce.enabled` is false). */
  readonly instance: AnnounceModule | undefined;
  /** The Gong listener on `announce.listen`, once started (undefined when off). */
  readonly listener: GongListener | undefined;
};

/**
 * The announce feature as a Fastify plugin (name `announce`, needs the spine; decorates
 * `app.announce` with its service): builds {@link createAnnounceModule} from the spine (first
 * AMI client for Originate; events on the bus as `announce.<kind>`), mounts Gong's API on
 * the main server; in `onReady` opens the Gong listener on `announce.listen` (unless '') and
 * starts the worker; in `onClose` closes both. Does nothing else when `announce.enabled` is
 * false.
 *
 * Call-file playback and the spool directory: with `announce.playback: callfile` a missing
 * or unwritable `announce.spoolDir` refuses the start (one line naming the key). With
 * `auto` and no AMI server (call files by default, e.g. the embedded default on a machine
 * without Asterisk) the service starts anyway: one warning line naming the keys, `/readyz`
 * reports `announce` not ready, adds answer 503 `playback_unavailable` naming the problem,
 * and the worker leaves queued messages alone, until the directory exists.
 */
export function announceServiceModule(
  extra: Partial<Pick<AnnounceModuleOptions, 'speech' | 'play' | 'callFileTmpDir' | 'pollMs'>> = {},
): AnnounceServiceModule {
  let module: AnnounceModule | undefined;
  let listener: GongListener | undefined;
  const plugin = fp(
    async (app: App) => {
      app.store.addMigrations(announceMigrations);
      app.store.addRetention(announceRetention);
      app.decorate('announce', {
        get service() {
          return module?.service;
        },
      });
      const ctx = contextOf(app);
      // What the live console shows of announce (its table exists even when disabled).
      provideConsoleSource(app, ctx.db);
      const config = ctx.config.announce;
      if (!config.enabled) return;
      const playback = resolvePlayback(config.playback, ctx.ami.clients.length);
      // Playing by AMI Originate needs its permissions (docs/ami.md).
      if (announceNeedsAmi(ctx.config, ctx.ami.clients.length)) app.amiNeeds.add('announce');
      let unavailable: (() => Promise<string | undefined>) | undefined;
      if (playback === 'callfile') {
        const spool = {
          spoolDir: config.spoolDir,
          ...(extra.callFileTmpDir ? { tmpDir: extra.callFileTmpDir } : {}),
        };
        const why =
          config.playback === 'auto'
            ? 'announce.playback is auto and no AMI server is configured (ami.servers), so messages are call files'
            : 'announce.playback is callfile';
        const problem = await checkSpoolDir(spool);
        if (problem !== undefined && config.playback === 'callfile') {
          // Asked for call files explicitly: accepting messages that can never be placed is
          // worse than not starting.
          throw new Error(
            `announce.spoolDir: ${problem} (${why}; create it, or set announce.enabled: false)`,
          );
        }
        if (problem !== undefined) {
          ctx.logger.warn(
            { module: 'announce' },
            `announce: announce.spoolDir: ${problem} (${why}); the Gong API answers 503 until it exists or ami.servers is set`,
          );
        }
        unavailable = async () => {
          const now = await checkSpoolDir(spool);
          return now === undefined ? undefined : `announce.spoolDir: ${now} (${why})`;
        };
        const check = unavailable;
        ctx.readiness.add('announce', async () => {
          const now = await check();
          return now === undefined ? { ok: true } : { ok: false, detail: now };
        });
      }
      const built = createAnnounceModule({
        ...extra,
        config,
        tts: ctx.config.tts,
        auth: ctx.config.auth,
        database: ctx.db,
        logger: ctx.logger,
        playback,
        ami: () => connectedInOrder(ctx.ami.clients, config.amiServers),
        publish: (key, message) => void ctx.bus.publish(key, message),
        originUuid: ctx.config.instance.uuid,
        metricsRegistry: ctx.metrics.registry,
        ...(unavailable ? { unavailable } : {}),
      });
      module = built;
      await app.register(built.plugin);
      ctx.logger.info({ module: 'announce', playback }, 'announce: Gong API mounted');
      app.addHook('onReady', async () => {
        if (config.listen !== '') {
          listener = await startGongListener({
            listen: config.listen,
            plugin: built.plugin,
            http: ctx.config.http,
            logger: ctx.logger.child({ module: 'announce', listener: 'gong' }),
            metrics: ctx.metrics,
          });
          ctx.logger.info(
            { module: 'announce', url: listener.url },
            'announce: Gong API also listening on announce.listen',
          );
        }
        try {
          await built.start();
        } catch (error) {
          await listener?.close().catch(() => undefined);
          throw error;
        }
      });
      app.addHook('onClose', async () => {
        try {
          await listener?.close();
          await built.stop();
        } catch (error) {
          ctx.logger.error({ err: error, module: 'announce' }, 'module stop failed');
        }
      });
    },
    { name: 'announce', dependencies: [...SPINE_PLUGINS], fastify: '5.x' },
  );
  return withHandles(plugin, {
    get instance(): AnnounceModule | undefined {
      return module;
    },
    get listener(): GongListener | undefined {
      return listener;
    },
  });
}

/**
 * The announce feature in the feature list (src/serve/modules.ts): its plugin, its config
 * checks (`announce.amiServers`, {@link checkAnnounceConfig}), the doctor's `spool` line
 * (the call-file spool directory, when announcements are placed as call files), its AMI
 * permissions ({@link announceNeedsAmi}), its use of sox and the speech engine, its language.
 */
export const announceFeature: Feature = {
  name: 'announce',
  plugin: () => announceServiceModule(),
  checkConfig: (config) => [
    ...checkAmiServerRefs(config, 'announce', config.announce.amiServers),
    ...checkAnnounceConfig(config),
  ],
  doctorChecks: (config) => [checkSpool(config)],
  amiFeature: (config, amiServers) =>
    announceNeedsAmi(config, amiServers) ? 'announce' : undefined,
  toolUse: (config) => (config.announce.enabled ? 'announcements' : undefined),
  speechLanguages: (config) => [config.announce.language],
};

/**
 * The doctor's `spool` line: the call-file spool directory can be written, when
 * announcements are placed as call files (else undefined).
 */
export async function checkSpool(config: Config): Promise<DoctorResult | undefined> {
  if (!config.announce.enabled) return undefined;
  const clients = config.ami.servers.length + (config.simulator.enabled ? 1 : 0);
  if (resolvePlayback(config.announce.playback, clients) !== 'callfile') return undefined;
  const problem = await checkSpoolDir({ spoolDir: config.announce.spoolDir });
  return problem === undefined
    ? { name: 'spool', ok: true, detail: `${path.resolve(config.announce.spoolDir)} writable` }
    : { name: 'spool', ok: false, detail: `announce.spoolDir: ${problem}` };
}
