/**
 * The HTTP client of the callout benchmark in a worker thread (the monitoring system calling
 * the API is another process in practice): `workerData` = `{ url, body, requests,
 * concurrency }`; posts `requests` form bodies to `url` with `concurrency` requests in flight
 * and answers `{ latenciesMs, elapsedMs, failures }`.
 */
import { parentPort, workerData } from 'node:worker_threads';

const { url, body, requests, concurrency } = workerData as {
  url: string;
  body: string;
  requests: number;
  concurrency: number;
};
const latenciesMs: number[] = [];
let failures = 0;
let next = 0;
const started = performance.now();
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < requests) {
      next += 1;
      const t = performance.now();
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
      await response.arrayBuffer();
      if (response.status !== 200) failures += 1;
      latenciesMs.push(performance.now() - t);
    }
  }),
);
parentPort?.postMessage({ latenciesMs, elapsedMs: performance.now() - started, failures });
