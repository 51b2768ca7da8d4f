/**
 * Prometheus series of the alert calls (issue 4), on the service's registry (`/metrics`):
 *
 * - `switchboard_callout_escalations_created_total{type}`: events accepted by
 *   `POST /api/v1/call`, `type` `sequential` (calltype 1) or `parallel` (calltype 2), and
 *   `testflg` `0` / `1` (dry run).
 * - `switchboard_callout_attempts_total{outcome}`: finished call attempts by outcome
 *   (`answered`, `busy`, `noanswer`, `congestion`, `failed`, `unknown` = lease expired) and
 *   `answer` (`1`, `2`, or `none`: no valid key).
 * - `switchboard_callout_due_to_placed_seconds`: delay between the moment a call was due
 *   (the person's minimum interval passed, or the event was created) and the moment the
 *   worker placed it (the target: p99 < 1 s).
 * - `switchboard_callout_results_pending`: call results (keys, outcomes, provider call ids)
 *   received and not yet written, e.g. kept while the database is unreachable (bounded by
 *   `callout.pendingResultsMax`).
 * - `switchboard_callout_results_dropped_total{reason}`: results never written: `rejected`
 *   (the database refused the write itself, e.g. a constraint violation: retrying cannot
 *   help) or `queue_full` (more than `callout.pendingResultsMax` waiting).
 * - `switchboard_callout_results_routed_total{event}`: AMI events of calls this process does
 *   not follow (placed before an AMI reconnect, or by another process) routed to their stored
 *   attempt by call id or channel: `digit`, `hangup`, `originate_response`.
 *
 * Reused when already registered (several modules or services on one registry).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { reuseMetric } from '../util/metrics.ts';

/** The callout series. */
export interface CalloutMetrics {
  escalations: Counter<'type' | 'testflg'>;
  attempts: Counter<'outcome' | 'answer'>;
  dueToPlaced: Histogram<never>;
  resultsPending: Gauge<never>;
  resultsDropped: Counter<'reason'>;
  resultsRouted: Counter<'event'>;
}

/** Creates (or reuses) the series on `registry` (none: unregistered, for tests). */
export function calloutMetrics(registry?: Registry): CalloutMetrics {
  const registers = registry === undefined ? [] : [registry];
  const reuse = <T>(name: string, make: () => T): T => reuseMetric(registry, name, make);
  return {
    escalations: reuse(
      'switchboard_callout_escalations_created_total',
      () =>
        new Counter({
          name: 'switchboard_callout_escalations_created_total',
          help: 'Alert-call escalations created, by type (sequential, parallel) and testflg',
          labelNames: ['type', 'testflg'],
          registers,
        }),
    ),
    attempts: reuse(
      'switchboard_callout_attempts_total',
      () =>
        new Counter({
          name: 'switchboard_callout_attempts_total',
          help: 'Finished alert-call attempts by outcome (answered, busy, noanswer, congestion, failed, unknown) and answer (1, 2, none)',
          labelNames: ['outcome', 'answer'],
          registers,
        }),
    ),
    dueToPlaced: reuse(
      'switchboard_callout_due_to_placed_seconds',
      () =>
        new Histogram({
          name: 'switchboard_callout_due_to_placed_seconds',
          help: 'Delay between an alert call being due and being placed',
          buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
          registers,
        }),
    ),
    resultsPending: reuse(
      'switchboard_callout_results_pending',
      () =>
        new Gauge({
          name: 'switchboard_callout_results_pending',
          help: 'Alert-call results (keys, outcomes) received and not yet written to the database',
          registers,
        }),
    ),
    resultsDropped: reuse(
      'switchboard_callout_results_dropped_total',
      () =>
        new Counter({
          name: 'switchboard_callout_results_dropped_total',
          help: 'Alert-call results never written, by reason (rejected by the database, queue_full)',
          labelNames: ['reason'],
          registers,
        }),
    ),
    resultsRouted: reuse(
      'switchboard_callout_results_routed_total',
      () =>
        new Counter({
          name: 'switchboard_callout_results_routed_total',
          help: 'AMI events of alert calls not followed by this process, routed to their stored attempt (digit, hangup, originate_response)',
          labelNames: ['event'],
          registers,
        }),
    ),
  };
}
