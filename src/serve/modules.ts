/**
 * The feature modules `serve` runs, in registration order. Each decides from its own config
 * section whether it is enabled (an `enabled: false` module registers nothing).
 */
import { announceServiceModule } from '../announce/index.ts';
import { calloutServiceModule } from '../callout/index.ts';
import { consoleServiceModule } from '../console/index.ts';
import { jenkinsServiceModule } from '../jenkins/index.ts';
import { pushServiceModule } from '../push/index.ts';
import type { ServiceModule } from './module.ts';
import { retentionServiceModule } from './retention.ts';

/**
 * Every feature module: alert calls, announcements, the Jenkins watcher, mobile wake-up, the
 * retention of their history and files, and the live console.
 */
export function featureModules(): ServiceModule[] {
  const announce = announceServiceModule();
  const jenkins = jenkinsServiceModule(() => announce.instance?.service);
  return [
    calloutServiceModule(),
    announce,
    jenkins,
    pushServiceModule(),
    retentionServiceModule(),
    consoleServiceModule(),
  ];
}
