/**
 * The feature plugins `serve` runs, in registration order (a plugin's `dependencies` come
 * before it: jenkins after announce). Each decides from its own config section whether it
 * is enabled (an `enabled: false` feature mounts nothing). To remove a feature, delete its
 * folder and its line here; to add one, see docs/architecture.md.
 */
import { announceServiceModule } from '../announce/index.ts';
import { calloutServiceModule } from '../callout/index.ts';
import { consoleServiceModule } from '../console/index.ts';
import { jenkinsServiceModule } from '../jenkins/index.ts';
import { pushServiceModule } from '../push/index.ts';
import type { FeaturePlugin } from './module.ts';
import { retentionServiceModule } from './retention.ts';

/**
 * Every feature: alert calls, announcements, the Jenkins watcher, mobile wake-up, the
 * retention of their history and files, and the live console.
 */
export function featureModules(): FeaturePlugin[] {
  return [
    calloutServiceModule(),
    announceServiceModule(),
    jenkinsServiceModule(),
    pushServiceModule(),
    retentionServiceModule(),
    consoleServiceModule(),
  ];
}
