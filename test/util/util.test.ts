import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Counter, Registry } from 'prom-client';
import { backoffMs } from '../../src/util/backoff.ts';
import { reuseMetric } from '../../src/util/metrics.ts';
import { TimeoutError, withTimeout } from '../../src/util/timeout.ts';

describe('backoffMs', () => {
  test('full jitter: uniform below the ceiling, which doubles up to maxMs', () => {
    const top = { initialMs: 100, maxMs: 1000, random: () => 0.999999 };
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map((n) => backoffMs(n, top)),
      [99, 199, 399, 799, 999, 999],
    );
    assert.equal(backoffMs(3, { initialMs: 100, maxMs: 1000, random: () => 0 }), 0);
  });

  test('±f jitter stays within [1-f, 1+f) of the ceiling and never above maxMs', () => {
    const options = { initialMs: 100, maxMs: 1000, jitter: 0.2 };
    assert.equal(backoffMs(0, { ...options, random: () => 0 }), 80);
    assert.equal(backoffMs(0, { ...options, random: () => 0.999999 }), 119);
    assert.equal(backoffMs(10, { ...options, random: () => 0.999999 }), 1000);
  });

  test('no jitter: exactly the ceiling; a bad attempt number throws', () => {
    assert.deepEqual(
      [0, 1, 2, 10].map((n) => backoffMs(n, { initialMs: 1000, maxMs: 60_000, jitter: 0 })),
      [1000, 2000, 4000, 60_000],
    );
    assert.throws(() => backoffMs(-1, { initialMs: 1, maxMs: 1 }), RangeError);
  });
});

describe('withTimeout', () => {
  test('settles as the promise does', async () => {
    assert.equal(await withTimeout(Promise.resolve(7), 1000, 'seven'), 7);
    await assert.rejects(withTimeout(Promise.reject(new Error('no')), 1000, 'x'), /no/);
  });

  test('a promise that never settles: TimeoutError naming what was waited for', async () => {
    await assert.rejects(
      withTimeout(new Promise(() => {}), 10, 'login'),
      (error: unknown) =>
        error instanceof TimeoutError &&
        error.timeoutMs === 10 &&
        error.message === 'no answer within 10 ms (login)',
    );
  });
});

describe('reuseMetric', () => {
  test('the second build on one registry gets the first metric; without a registry, a new one', () => {
    const registry = new Registry();
    const make = () => new Counter({ name: 'x_total', help: 'x', registers: [registry] });
    const first = reuseMetric(registry, 'x_total', make);
    assert.equal(
      reuseMetric(registry, 'x_total', make),
      first,
      'no "already registered" error, the same counter',
    );
    const loose = () => new Counter({ name: 'y_total', help: 'y', registers: [] });
    assert.notEqual(
      reuseMetric(undefined, 'y_total', loose),
      reuseMetric(undefined, 'y_total', loose),
    );
  });
});
