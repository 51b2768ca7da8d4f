/**
 * Prometheus metrics of the process: one prom-client registry per application (not the global
 * default registry, so several servers can live in one test process), served at `/metrics`.
 *
 * The process and Node.js metrics carry prom-client's standard names, without a prefix
 * (`process_cpu_seconds_total`, `process_resident_memory_bytes`, `nodejs_heap_size_used_bytes`,
 * `nodejs_eventloop_lag_p99_seconds`, ...), so stock Node.js dashboards work unchanged.
 * Switchboard's own metrics start with `switchboard_`, including
 * `switchboard_build_info{version,node}` (always 1). Feature modules register their own
 * metrics on {@link Metrics.registry}.
 */
import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { VERSION } from './version.ts';

/** Prefix of every Switchboard metric (the process and Node.js metrics have none). */
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
 * Creates the application's metrics registry with the process metrics, the build information
 * and the HTTP histogram. Call once per application; pass the result to `createServer` and
 * to the feature modules.
 */
export function createMetrics(options: CreateMetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const buildInfo = new Gauge({
    name: `${METRIC_PREFIX}build_info`,
    help: 'Always 1: the running version of Switchboard and of Node.js, as labels',
    labelNames: ['version', 'node'] as const,
    registers: [registry],
  });
  buildInfo.set({ version: VERSION, node: process.versions.node }, 1);
  const httpRequestDuration = new Histogram({
    name: `${METRIC_PREFIX}http_request_duration_seconds`,
    help: 'HTTP request duration in seconds, by route pattern, method and status code',
    labelNames: ['route', 'method', 'status_code'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  return { registry, httpRequestDuration };
}
