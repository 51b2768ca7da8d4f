/**
 * The jenkins module (issue 5): the failed-job watcher of `watcher.ts`, run inside `serve`
 * when `jenkins.enabled` (announcing through the announce module's service), or standalone
 * with `switchboard jenkins-watch` (announcing through Gong's HTTP API). See docs/jenkins.md.
 *
 * @module
 */
import fp from 'fastify-plugin';
import type { AnnounceService } from '../announce/index.ts';
import { fetchErrorReason } from '../http/fetch-error.ts';
import type { App } from '../http/server.ts';
import { type Feature, type FeaturePlugin, withHandles } from '../serve/module.ts';
import { jenkinsMetrics } from './metrics.ts';
import { type Announcer, JenkinsWatcher, jenkinsMigrations } from './watcher.ts';

export {
  type Announcer,
  fetchJobs,
  flattenJobs,
  inWindow,
  JenkinsError,
  type JenkinsJob,
  JenkinsWatcher,
  JOBS_TREE,
  jenkinsMigrations,
  type PollResult,
  sentence,
  spokenName,
  type WatcherOptions,
} from './watcher.ts';

import { redactUrl } from '../util/redact.ts';

/**
 * An {@link Announcer} posting to Gong's API (`POST <base>/messages/tts/add`, form-encoded
 * `text`, `extension`, `language`), as `xgong-jenkins` did.
 * @throws Error (from the announcer) when the API answers non-2xx or is unreachable.
 */
export function httpAnnouncer(
  base: string,
  options: { extension?: string; language?: string; authorization?: string } = {},
): Announcer {
  return async (text) => {
    const body = new URLSearchParams({ text });
    if (options.extension) body.set('extension', options.extension);
    if (options.language) body.set('language', options.language);
    const response = await fetch(`${base.replace(/\/+$/, '')}/messages/tts/add`, {
      method: 'POST',
      body,
      headers: options.authorization ? { authorization: options.authorization } : {},
      signal: AbortSignal.timeout(30_000),
    }).catch((error: unknown) => {
      throw new Error(`Gong API at ${redactUrl(base)} unreachable: ${fetchErrorReason(error)}`, {
        cause: error,
      });
    });
    if (!response.ok) {
      throw new Error(
        `Gong API answered ${response.status}: ${(await response.text()).slice(0, 200)}`,
      );
    }
  };
}

/** An {@link Announcer} calling the announce module's service in-process. */
export function serviceAnnouncer(
  service: () => AnnounceService | undefined,
  options: { extension?: string; language?: string },
): Announcer {
  return async (text) => {
    const announce = service();
    if (!announce) throw new Error('the announce module is not enabled');
    await announce.addText({
      text,
      description: 'jenkins',
      ...(options.extension ? { extension: options.extension } : {}),
      ...(options.language ? { language: options.language } : {}),
    });
  };
}

/**
 * The watcher as a Fastify plugin (name `jenkins`; needs `switchboard-store` and `announce`,
 * whose exported service `app.announce` it announces through): polls from `onReady` when
 * `jenkins.enabled`, stops in `onClose`. Readiness is not affected by Jenkins.
 */
export function jenkinsServiceModule(
  extra: Partial<
    Pick<ConstructorParameters<typeof JenkinsWatcher>[0], 'attempts' | 'retryDelayMs' | 'timeoutMs'>
  > = {},
): FeaturePlugin & { readonly watcher: JenkinsWatcher | undefined } {
  let watcher: JenkinsWatcher | undefined;
  const plugin = fp(
    async (app: App) => {
      app.store.addMigrations(jenkinsMigrations);
      const { config: all, logger } = app.switchboard;
      const config = all.jenkins;
      const announce = app.announce;
      app.addHook('onReady', async () => {
        if (!config.enabled) return;
        if (config.url === '') {
          logger.error(
            { module: 'jenkins' },
            'jenkins.enabled but jenkins.url is empty: watcher not started',
          );
          return;
        }
        watcher = new JenkinsWatcher({
          ...extra,
          config,
          database: app.db,
          logger: logger.child({ module: 'jenkins' }),
          metrics: jenkinsMetrics(app.switchboard.metrics.registry),
          announce: serviceAnnouncer(() => announce.service, {
            extension: config.extension,
            language: config.language,
          }),
        });
        watcher.start();
      });
      app.addHook('onClose', async () => {
        await watcher?.stop().catch((error: unknown) => {
          logger.error({ err: error, module: 'jenkins' }, 'module stop failed');
        });
      });
    },
    { name: 'jenkins', dependencies: ['switchboard-store', 'announce'], fastify: '5.x' },
  );
  return withHandles(plugin, {
    get watcher(): JenkinsWatcher | undefined {
      return watcher;
    },
  });
}

/**
 * The jenkins feature in the feature list (src/serve/modules.ts, after announce): its plugin
 * and its language.
 */
export const jenkinsFeature: Feature = {
  name: 'jenkins',
  plugin: () => jenkinsServiceModule(),
  speechLanguages: (config) => [config.jenkins.language],
};
