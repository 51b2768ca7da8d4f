/**
 * Prometheus series of the announcements (Gong, issue 14 §5), on the service's registry
 * (`/metrics`):
 *
 * - `switchboard_announce_scheduled_total{kind}`: messages accepted (`audio` upload or `tts`).
 * - `switchboard_announce_played_total`: messages played to the end (answered), or handed to
 *   Asterisk as call files (`switchboard_announce_spooled_total`).
 * - `switchboard_announce_failed_total{outcome}`: messages given up (`busy`, `noanswer`,
 *   `congestion`, `failed`, `error`, `interrupted` by a restart, ...).
 * - `switchboard_announce_duration_seconds`: audio duration of the played messages (leading
 *   silence included), seconds.
 *
 * Reused when already registered (several services on one registry).
 */
import { Counter, Histogram, type Registry } from 'prom-client';

/** The announce series. */
export interface AnnounceMetrics {
  scheduled: Counter<'kind'>;
  played: Counter<never>;
  spooled: Counter<never>;
  failed: Counter<'outcome'>;
  duration: Histogram<never>;
}

/** Creates (or reuses) the series on `registry` (none: unregistered, for tests). */
export function announceMetrics(registry?: Registry): AnnounceMetrics {
  const registers = registry === undefined ? [] : [registry];
  const reuse = <T>(name: string, make: () => T): T =>
    (registry?.getSingleMetric(name) as T | undefined) ?? make();
  const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
    reuse(name, () => new Counter<L>({ name, help, labelNames, registers }));
  return {
    scheduled: counter(
      'switchboard_announce_scheduled_total',
      'Announcements accepted, by kind (audio, tts)',
      ['kind'],
    ),
    played: counter('switchboard_announce_played_total', 'Announcements played (answered)', []),
    spooled: counter(
      'switchboard_announce_spooled_total',
      'Announcements handed to Asterisk as call files',
      [],
    ),
    failed: counter(
      'switchboard_announce_failed_total',
      'Announcements given up, by outcome (busy, noanswer, congestion, failed, error, interrupted)',
      ['outcome'],
    ),
    duration: reuse(
      'switchboard_announce_duration_seconds',
      () =>
        new Histogram({
          name: 'switchboard_announce_duration_seconds',
          help: 'Audio duration of the played announcements (leading silence included), seconds',
          buckets: [2, 5, 10, 20, 30, 60, 120, 300],
          registers,
        }),
    ),
  };
}
