/**
 * Prometheus metrics of the process: one prom-client registry per application (not the global
 * default registry, so several servers can live in one test process), served at `/metrics`.
 *
 * Every metric name starts with `switchboard_`, including the process metrics
 * (`switchboard_process_cpu_seconds_total`, `switchboard_nodejs_heap_size_used_bytes`, ...).
 * Feature modules register their own metrics on {@link Metrics.registry}.
 */
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** Prefix of every Switchboard metric. */
export const METRIC_PREFIX = 'switchboard_';

/** The application's registry and the built-in metrics. */
export interface Metrics {
  /** Registry served at `/metrics`; modules add their counters/gauges/histograms here. */
  registry: Registry;
  /**
   * `switchboard_http_request_duration_seconds{route,method,status_code}`: time from request
   * start to response sent, seconds. `route` is the route pattern (`/api/v1/call`,
   * `/messages/:id`), or `unmatched` for 404s, so ids never become labels.
   */
  httpRequestDuration: Histogram<'route' | 'method' | 'status_code'>;
}

/** Options of {@link createMetrics}. */
export interface CreateMetricsOptions {
  /** Collect process and Node.js metrics (default true). */
  processMetrics?: boolean;
}

/**
 * Creates the application's metrics registry with process metrics and the HTTP histogram.
 * Call once per application; pass the result to `createServer` and to the feature modules.
 */
export function createMetrics(options: CreateMetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.processMetrics ?? true)
    collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  const httpRequestDuration = new Histogram({
    name: `${METRIC_PREFIX}http_request_duration_seconds`,
    help: 'HTTP request duration in seconds, by route pattern, method and status code',
    labelNames: ['route', 'method', 'status_code'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  return { registry, httpRequestDuration };
}
