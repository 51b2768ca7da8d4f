/**
 * Prometheus series of the Jenkins watcher (issue 14 §5), on the service's registry:
 *
 * - `switchboard_jenkins_polls_total{result}`: polls of Jenkins' JSON API, `ok` or
 *   `jenkins_error` (every attempt failed: nothing announced, state kept).
 * - `switchboard_jenkins_poll_failures_total`: failed requests to Jenkins (each attempt of a
 *   poll: unreachable, HTTP error, not JSON).
 * - `switchboard_jenkins_jobs_failed_total`: jobs found newly failed (announced, or retried at
 *   the next poll when the announcement failed).
 * - `switchboard_jenkins_announcements_failed_total`: announcements the watcher could not make.
 *
 * Reused when already registered.
 */
import { Counter, type Registry } from 'prom-client';

/** The watcher's series. */
export interface JenkinsMetrics {
  polls: Counter<'result'>;
  pollFailures: Counter<never>;
  jobsFailed: Counter<never>;
  announcementsFailed: Counter<never>;
}

/** Creates (or reuses) the series on `registry` (none: unregistered, for tests). */
export function jenkinsMetrics(registry?: Registry): JenkinsMetrics {
  const registers = registry === undefined ? [] : [registry];
  const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
    (registry?.getSingleMetric(name) as Counter<L> | undefined) ??
    new Counter<L>({ name, help, labelNames, registers });
  return {
    polls: counter(
      'switchboard_jenkins_polls_total',
      'Polls of Jenkins, by result (ok, jenkins_error)',
      ['result'],
    ),
    pollFailures: counter(
      'switchboard_jenkins_poll_failures_total',
      'Failed requests to Jenkins (each attempt of a poll)',
      [],
    ),
    jobsFailed: counter(
      'switchboard_jenkins_jobs_failed_total',
      'Jobs found newly failed by the watcher',
      [],
    ),
    announcementsFailed: counter(
      'switchboard_jenkins_announcements_failed_total',
      'Announcements of failed jobs the watcher could not make (retried at the next poll)',
      [],
    ),
  };
}
