/**
 * Metric get-or-create: a module's metrics are created once per registry and reused when the
 * module is built again on the same registry (a second service in one process, a reload, a
 * test), instead of prom-client's "metric already registered" error.
 */
import type { Registry } from 'prom-client';

/**
 * The metric named `name` on `registry`, or `make()` when there is none (or no registry:
 * `make` then builds an unregistered metric, e.g. for tests).
 * @param make builds the metric, registering it on `registry` itself (`registers`).
 */
export function reuseMetric<T>(registry: Registry | undefined, name: string, make: () => T): T {
  return (registry?.getSingleMetric(name) as T | undefined) ?? make();
}
