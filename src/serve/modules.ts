/**
 * The one list of features: what `serve` registers (in this order: a plugin's
 * `dependencies` come before it, jenkins after announce), and what `config check` and
 * `switchboard doctor` ask for the features' own checks. Each feature decides from its own
 * config section whether it is enabled (an `enabled: false` feature mounts nothing). To
 * remove a feature, delete its folder and its entry here; to add one, see
 * docs/architecture.md.
 */
import { announceFeature } from '../announce/index.ts';
import { calloutFeature } from '../callout/index.ts';
import { consoleFeature } from '../console/index.ts';
import { jenkinsFeature } from '../jenkins/index.ts';
import { pushFeature } from '../push/index.ts';
import type { Feature, FeaturePlugin } from './module.ts';
import { retentionFeature } from './retention.ts';

/**
 * Every feature: alert calls, announcements, the Jenkins watcher, mobile wake-up, the
 * retention of their history and files, and the live console.
 */
export const FEATURES: readonly Feature[] = [
  calloutFeature,
  announceFeature,
  jenkinsFeature,
  pushFeature,
  retentionFeature,
  consoleFeature,
];

/** A new plugin of every feature of `features` (default {@link FEATURES}), in order. */
export function featureModules(features: readonly Feature[] = FEATURES): FeaturePlugin[] {
  return features.map((feature) => feature.plugin());
}
