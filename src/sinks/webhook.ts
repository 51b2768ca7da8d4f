/**
 * Why this file is long: one sink, a queue and worker per target with retries, backoff,
 * signing and throttled logs, whose contract for receivers (headers, signature, retry rules)
 * is written out below and in the TSDoc; splitting it would scatter one delivery's life.
 *
 * Webhooks: call events POSTed as JSON to configured URLs, signed with HMAC-SHA256,
 * retried with exponential backoff, never blocking the caller.
 *
 * Per target URL there is one bounded in-memory queue and one worker that delivers in
 * order, one request at a time. `send()` only enqueues; when a target's queue is full the
 * event is dropped for that target and counted
 * (`switchboard_webhook_deliveries_total{result="dropped"}`).
 *
 * Request: `POST <url>` with the call event as the JSON body and the headers
 * - `Content-Type: application/json`
 * - `X-Switchboard-Event: <event kind>` (e.g. `hangup`)
 * - `X-Switchboard-Delivery: <uuid>` (the same on every attempt of one delivery: use it to
 *   discard duplicates)
 * - `X-Switchboard-Attempt: <1..>`
 * - when the target has a secret: `X-Switchboard-Timestamp: <unix seconds>` and
 *   `X-Switchboard-Signature: sha256=<hex>` where hex is HMAC-SHA256(secret,
 *   `<timestamp>.<raw body>`) (see {@link signPayload}, {@link verifySignature}). The
 *   timestamp is part of the signed text so a captured request cannot be replayed later
 *   than the receiver's tolerance (default 300 s); it is fresh on every attempt.
 *
 * A 2xx response is success. Network errors, timeouts, 408, 429 and 5xx are retried after
 * `initialBackoffMs * 2^(retry-1)` (capped at `maxBackoffMs`; a `Retry-After` in seconds
 * is honoured within the cap) up to `maxRetries` times; other statuses (4xx) fail at once.
 *
 * Logs: each failed attempt that will be retried at `warn`, with its cause (`HTTP 503`,
 * `connect ECONNREFUSED 10.0.0.5:443`, `timed out after 5000 ms`); a delivery given up (or
 * refused with a 4xx, or cut at close) at `error`. Per target at most one line of each kind
 * per `logIntervalMs`; the lines held back are counted in the next one (`suppressed`).
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { compileBindingKey, Fifo, type Logger, silentLogger } from '../bus/bus.ts';
import { CALL_EVENT_NAMES } from '../calls/events.ts';
import { fetchErrorReason } from '../http/fetch-error.ts';
import { backoffMs } from '../util/backoff.ts';
import { reuseMetric } from '../util/metrics.ts';

/**
 * The filter of a webhook endpoint's `events` (`webhooks.endpoints[].events`), on the call
 * event's routing key (`call.<kind>`). Each entry is a call event kind (`hangup`: routing key
 * `call.hangup`) or a routing-key pattern (`*` one word, `#` zero or more: `call.*`, `#`);
 * an empty list accepts every call event.
 * @returns a predicate on routing keys such as `call.hangup`.
 * @throws TypeError naming the entry when it is neither a call event kind nor a valid pattern.
 */
export function webhookEventFilter(events: readonly string[]): (routingKey: string) => boolean {
  if (events.length === 0) return () => true;
  const matchers = events.map((entry) => {
    if ((CALL_EVENT_NAMES as readonly string[]).includes(entry)) {
      return compileBindingKey(`call.${entry}`);
    }
    if (!/[.*#]/.test(entry)) {
      throw new TypeError(
        `${JSON.stringify(entry)} is not a call event kind (${CALL_EVENT_NAMES.join(', ')}) nor a routing-key pattern (call.*, #)`,
      );
    }
    return compileBindingKey(entry);
  });
  return (routingKey) => matchers.some((match) => match(routingKey));
}

/** One webhook destination. */
export interface WebhookTarget {
  /** `http:` or `https:` URL to POST to. */
  url: string;
  /** HMAC-SHA256 key; without it requests are not signed. Never logged. */
  secret?: string;
  /** Call event kinds to send (e.g. `['hangup', 'up']`); absent or empty: all. */
  events?: string[];
  /**
   * Name used in metrics (`target` label) and logs. Default: the URL's host (`host:port`):
   * never its path, query string or credentials, which may hold a token.
   */
  name?: string;
}

/** Options of {@link WebhookSink}. */
export interface WebhookSinkOptions {
  targets: WebhookTarget[];
  /** Retries after the first attempt before giving up. Default 5. */
  maxRetries?: number;
  /** Delay before the first retry; doubles on each further retry. Default 1000 ms. */
  initialBackoffMs?: number;
  /** Longest delay between attempts. Default 60000 ms. */
  maxBackoffMs?: number;
  /** Timeout of one request (connect to end of response). Default 10000 ms. */
  timeoutMs?: number;
  /** Events queued per target before new ones are dropped. Default 1000. */
  queueSize?: number;
  /** Registry for the webhook metrics. */
  registry?: Registry;
  /** pino-compatible logger. Default: silent. */
  logger?: Logger;
  /** `fetch` implementation. Default: the global `fetch`. */
  fetch?: typeof fetch;
  /** `User-Agent` header. Default `switchboard-webhook`. */
  userAgent?: string;
  /**
   * Shortest interval between two log lines of the same kind (failed attempt, dropped
   * delivery) per target; lines in between are counted and the count is added to the next
   * one (`suppressed`). Default 1000 ms.
   */
  logIntervalMs?: number;
}

/** A call event (conformance schema line shape); only `event` is relied upon. */
export type WebhookEvent = { event: string } & Record<string, unknown>;

/**
 * The signature header value for `body` sent at `timestampS` (unix seconds):
 * `sha256=` + hex HMAC-SHA256(secret, `${timestampS}.${body}`).
 */
export function signPayload(secret: string, timestampS: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestampS}.${body}`).digest('hex')}`;
}

/**
 * Receiver-side check of a webhook request: true when `signature` (the
 * `X-Switchboard-Signature` header) is {@link signPayload} of the raw `body` and
 * `timestamp` (the `X-Switchboard-Timestamp` header), and the timestamp is within
 * `toleranceS` (default 300) of `nowS` (default: now). Constant-time comparison.
 */
export function verifySignature(options: {
  secret: string;
  body: string | Buffer;
  signature: string | undefined;
  timestamp: string | undefined;
  toleranceS?: number;
  nowS?: number;
}): boolean {
  const { secret, signature, timestamp } = options;
  if (signature === undefined || timestamp === undefined || !/^\d{1,12}$/.test(timestamp)) {
    return false;
  }
  const ts = Number(timestamp);
  const now = options.nowS ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - ts) > (options.toleranceS ?? 300)) return false;
  const body = typeof options.body === 'string' ? options.body : options.body.toString('utf8');
  const expected = Buffer.from(signPayload(secret, ts, body));
  const given = Buffer.from(signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

interface Job {
  id: string;
  event: string;
  body: string;
}

interface TargetState {
  target: WebhookTarget;
  label: string;
  filter: Set<string> | undefined;
  queue: Fifo<Job>;
  running: boolean;
  abort: AbortController | undefined;
  wake: (() => void) | undefined;
  attemptLog: RateLimitedLog;
  dropLog: RateLimitedLog;
}

interface WebhookMetrics {
  deliveries: Counter<'target' | 'result'>;
  attempts: Counter<'target' | 'outcome'>;
  duration: Histogram<'target'>;
  queued: Gauge<'target'>;
}

function webhookMetrics(registry?: Registry): WebhookMetrics {
  const registers = registry === undefined ? [] : [registry];
  const reuse = <T>(name: string, make: () => T): T => reuseMetric(registry, name, make);
  return {
    deliveries: reuse(
      'switchboard_webhook_deliveries_total',
      () =>
        new Counter({
          name: 'switchboard_webhook_deliveries_total',
          help: 'Webhook deliveries by final result (delivered, failed, rejected, dropped, closed)',
          labelNames: ['target', 'result'],
          registers,
        }),
    ),
    attempts: reuse(
      'switchboard_webhook_attempts_total',
      () =>
        new Counter({
          name: 'switchboard_webhook_attempts_total',
          help: 'Webhook HTTP attempts by outcome (2xx, 3xx, 4xx, 5xx, timeout, network)',
          labelNames: ['target', 'outcome'],
          registers,
        }),
    ),
    duration: reuse(
      'switchboard_webhook_attempt_duration_seconds',
      () =>
        new Histogram({
          name: 'switchboard_webhook_attempt_duration_seconds',
          help: 'Duration of one webhook HTTP attempt',
          labelNames: ['target'],
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
          registers,
        }),
    ),
    queued: reuse(
      'switchboard_webhook_queued',
      () =>
        new Gauge({
          name: 'switchboard_webhook_queued',
          help: 'Webhook deliveries waiting (queued or being retried)',
          labelNames: ['target'],
          registers,
        }),
    ),
  };
}

function targetLabel(target: WebhookTarget): string {
  if (target.name !== undefined && target.name !== '') return target.name;
  try {
    return new URL(target.url).host;
  } catch {
    return 'invalid-url';
  }
}

/**
 * At most one log line per `intervalMs`: {@link RateLimitedLog.allow} says whether to write
 * now, and how many were held back since the last line written.
 */
class RateLimitedLog {
  readonly #intervalMs: number;
  #last = Number.NEGATIVE_INFINITY;
  #held = 0;
  constructor(intervalMs: number) {
    this.#intervalMs = intervalMs;
  }
  /** `undefined`: skip this line (counted); a number: write it, with that many skipped before. */
  allow(): number | undefined {
    const now = Date.now();
    if (now - this.#last < this.#intervalMs) {
      this.#held++;
      return undefined;
    }
    this.#last = now;
    const held = this.#held;
    this.#held = 0;
    return held;
  }
}

/** Final result of one delivery. */
type Result = 'delivered' | 'failed' | 'rejected' | 'closed';

/**
 * The webhook sink. Construct once with the targets; call {@link WebhookSink.send} for
 * every call event; {@link WebhookSink.close} on shutdown.
 */
export class WebhookSink {
  readonly #targets: TargetState[];
  readonly #maxRetries: number;
  readonly #initialBackoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #timeoutMs: number;
  readonly #queueSize: number;
  readonly #metrics: WebhookMetrics;
  readonly #logger: Logger;
  readonly #fetch: typeof fetch;
  readonly #userAgent: string;
  #closing = false;
  #hardClosed = false;
  #idleWaiters: (() => void)[] = [];

  /**
   * @param options see {@link WebhookSinkOptions}.
   * @throws TypeError when a target URL is not an http(s) URL.
   */
  constructor(options: WebhookSinkOptions) {
    this.#maxRetries = options.maxRetries ?? 5;
    this.#initialBackoffMs = options.initialBackoffMs ?? 1000;
    this.#maxBackoffMs = options.maxBackoffMs ?? 60_000;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#queueSize = options.queueSize ?? 1000;
    this.#metrics = webhookMetrics(options.registry);
    this.#logger = options.logger ?? silentLogger;
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#userAgent = options.userAgent ?? 'switchboard-webhook';
    const logIntervalMs = options.logIntervalMs ?? 1000;
    this.#targets = options.targets.map((target) => {
      let protocol = '';
      try {
        protocol = new URL(target.url).protocol;
      } catch {}
      if (protocol !== 'http:' && protocol !== 'https:') {
        throw new TypeError(`webhook target ${targetLabel(target)} is not an http(s) URL`);
      }
      return {
        target,
        label: targetLabel(target),
        filter: target.events?.length ? new Set(target.events) : undefined,
        queue: new Fifo<Job>(),
        running: false,
        abort: undefined,
        wake: undefined,
        attemptLog: new RateLimitedLog(logIntervalMs),
        dropLog: new RateLimitedLog(logIntervalMs),
      };
    });
  }

  /**
   * Queues `event` for every target whose filter accepts `event.event`. Never blocks,
   * never throws. Returns the number of targets it was queued for.
   */
  send(event: WebhookEvent): number {
    if (this.#closing) return 0;
    let body: string | undefined;
    let queued = 0;
    for (const state of this.#targets) {
      if (state.filter !== undefined && !state.filter.has(event.event)) continue;
      if (state.queue.length >= this.#queueSize) {
        this.#metrics.deliveries.inc({ target: state.label, result: 'dropped' });
        this.#logger.warn(
          { target: state.label, event: event.event, queueSize: this.#queueSize },
          'webhook queue full; event dropped',
        );
        continue;
      }
      if (body === undefined) {
        try {
          body = JSON.stringify(event);
        } catch (err) {
          this.#logger.error({ err, event: event.event }, 'webhook event is not serialisable');
          return 0;
        }
      }
      state.queue.push({ id: randomUUID(), event: event.event, body });
      this.#metrics.queued.inc({ target: state.label });
      queued++;
      if (!state.running) {
        state.running = true;
        void this.#run(state);
      }
    }
    return queued;
  }

  /** Events waiting per target label (queued, including the one being delivered). */
  pending(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.#targets) out[s.label] = (out[s.label] ?? 0) + s.queue.length;
    return out;
  }

  /** Resolves true when every queue is empty, false after `timeoutMs`. */
  flush(timeoutMs = 10_000): Promise<boolean> {
    if (this.#idle()) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.#idleWaiters = this.#idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      this.#idleWaiters.push(done);
    });
  }

  /**
   * Stops accepting events, waits up to `timeoutMs` (default 5000) for the queues to
   * drain, then aborts what is left (counted as `result="closed"` and logged).
   */
  async close(timeoutMs = 5000): Promise<void> {
    this.#closing = true;
    if (await this.flush(timeoutMs)) return;
    this.#hardClosed = true;
    for (const state of this.#targets) {
      const left = state.queue.length;
      if (left > 0) {
        this.#logger.warn(
          { target: state.label, left },
          'webhook sink closed with undelivered events',
        );
      }
      state.abort?.abort(new Error('closed'));
      state.wake?.();
    }
    await this.flush(1000);
  }

  #idle(): boolean {
    return this.#targets.every((s) => !s.running);
  }

  async #run(state: TargetState): Promise<void> {
    for (;;) {
      const job = state.queue.peek();
      if (job === undefined) break;
      const { result, attempts, reason } = this.#hardClosed
        ? { result: 'closed' as const, attempts: 0, reason: 'sink closed' }
        : await this.#deliver(state, job);
      state.queue.shift();
      this.#metrics.queued.dec({ target: state.label });
      this.#metrics.deliveries.inc({ target: state.label, result });
      if (result !== 'delivered') {
        const suppressed = state.dropLog.allow();
        if (suppressed !== undefined) {
          this.#logger.error(
            {
              target: state.label,
              event: job.event,
              delivery: job.id,
              result,
              attempts,
              reason,
              ...(suppressed > 0 ? { suppressed } : {}),
            },
            `webhook ${state.label}: ${job.event} event dropped after ${attempts} attempt${attempts === 1 ? '' : 's'} (${result}: ${reason})`,
          );
        }
      }
    }
    state.running = false;
    if (this.#idle()) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  async #deliver(
    state: TargetState,
    job: Job,
  ): Promise<{ result: Result; attempts: number; reason: string }> {
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#attempt(state, job, attempt);
      const reason = outcome.reason;
      if (outcome.ok) return { result: 'delivered', attempts: attempt, reason };
      if (this.#hardClosed) return { result: 'closed', attempts: attempt, reason };
      if (!outcome.retryable) return { result: 'rejected', attempts: attempt, reason };
      if (attempt > this.#maxRetries) return { result: 'failed', attempts: attempt, reason };
      let delayMs = backoffMs(attempt - 1, {
        initialMs: this.#initialBackoffMs,
        maxMs: this.#maxBackoffMs,
        jitter: 0,
      });
      if (outcome.retryAfterS !== undefined) {
        delayMs = Math.min(this.#maxBackoffMs, Math.max(delayMs, outcome.retryAfterS * 1000));
      }
      const suppressed = state.attemptLog.allow();
      if (suppressed !== undefined) {
        this.#logger.warn(
          {
            target: state.label,
            event: job.event,
            delivery: job.id,
            attempt,
            delayMs,
            reason,
            ...(suppressed > 0 ? { suppressed } : {}),
          },
          `webhook ${state.label}: attempt ${attempt} failed (${reason}); retrying in ${delayMs} ms`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, delayMs);
        function done() {
          clearTimeout(timer);
          state.wake = undefined;
          resolve();
        }
        state.wake = done;
      });
      if (this.#hardClosed) return { result: 'closed', attempts: attempt, reason };
    }
  }

  async #attempt(
    state: TargetState,
    job: Job,
    attempt: number,
  ): Promise<{ ok: boolean; retryable: boolean; reason: string; retryAfterS?: number }> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': this.#userAgent,
      'x-switchboard-event': job.event,
      'x-switchboard-delivery': job.id,
      'x-switchboard-attempt': String(attempt),
    };
    const secret = state.target.secret;
    if (secret !== undefined && secret !== '') {
      const ts = Math.floor(Date.now() / 1000);
      headers['x-switchboard-timestamp'] = String(ts);
      headers['x-switchboard-signature'] = signPayload(secret, ts, job.body);
    }
    const abort = new AbortController();
    state.abort = abort;
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const stop = this.#metrics.duration.startTimer({ target: state.label });
    try {
      const res = await this.#fetch(state.target.url, {
        method: 'POST',
        headers,
        body: job.body,
        signal: AbortSignal.any([abort.signal, timeout]),
        redirect: 'manual',
      });
      // Drain the body so the connection can be reused.
      await res.arrayBuffer().catch(() => {});
      const status = res.status;
      this.#metrics.attempts.inc({ target: state.label, outcome: `${Math.floor(status / 100)}xx` });
      if (status >= 200 && status < 300)
        return { ok: true, retryable: false, reason: String(status) };
      const retryable = status >= 500 || status === 408 || status === 429;
      const ra = res.headers.get('retry-after');
      const retryAfterS = ra !== null && /^\d+$/.test(ra) ? Number(ra) : undefined;
      return { ok: false, retryable, reason: `HTTP ${status}`, retryAfterS };
    } catch (err) {
      const timedOut = timeout.aborted && !abort.signal.aborted;
      this.#metrics.attempts.inc({
        target: state.label,
        outcome: timedOut ? 'timeout' : 'network',
      });
      const reason = timedOut ? `timed out after ${this.#timeoutMs} ms` : fetchErrorReason(err);
      return { ok: false, retryable: true, reason };
    } finally {
      stop();
      if (state.abort === abort) state.abort = undefined;
    }
  }
}
