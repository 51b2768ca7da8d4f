/**
 * The message bus interface shared by the in-process bus (`memory.ts`) and the AMQP bus
 * (`amqp.ts`), the XiVO envelope type, AMQP topic routing-key matching, and the small
 * helpers (bounded FIFO, metrics, logger) both implementations use.
 *
 * Envelope and routing keys follow the XiVO bus document (`shared/seeds/003_*.txt`,
 * "Events"); matching follows the AMQP 0-9-1 topic exchange semantics as implemented by
 * RabbitMQ (https://www.rabbitmq.com/tutorials/amqp-concepts#exchange-topic).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../util/log.ts';
import { reuseMetric } from '../util/metrics.ts';

export { Fifo } from './fifo.ts';

/**
 * One bus message: the XiVO envelope `{name, origin_uuid, data}` (seed, "Events").
 * `name` is the event type, `origin_uuid` the UUID of the producer, `data` the event
 * specific part (`null` when an event has none). Messages travel as JSON, so `data` must be
 * JSON-serialisable; received messages are the parsed JSON and should be treated as
 * read-only (the in-process bus hands the same object to every subscriber).
 */
export interface BusMessage<D = unknown> {
  name: string;
  origin_uuid: string;
  data: D;
}

/**
 * Called for every message whose routing key matches the subscription's binding key, in
 * publish order. A returned promise is awaited by the in-process bus before the next
 * message goes to the same subscriber; the AMQP bus does not wait. Exceptions and rejections
 * are logged and otherwise ignored.
 */
export type BusHandler = (message: BusMessage, routingKey: string) => void | Promise<void>;

/** A live subscription, returned by {@link Bus.subscribe}. */
export interface Subscription {
  /** The validated binding key. */
  readonly bindingKey: string;
  /**
   * Resolves once the subscription receives messages (immediately for the in-process bus;
   * for AMQP when its queue is declared and bound, which waits for the broker). Never
   * rejects; a subscription closed before it was ready resolves too.
   */
  readonly ready: Promise<void>;
  /** Stops delivery (idempotent). For AMQP, also deletes the subscription's queue. */
  close(): Promise<void>;
}

/** A snapshot of a bus's state, for `/readyz`, `/metrics` and logs. */
export interface BusStatus {
  /** `'memory'` or `'amqp'`. */
  kind: 'memory' | 'amqp';
  /** True while messages can be delivered (AMQP: connection and confirm channel open). */
  connected: boolean;
  /** True once {@link Bus.close} was called. */
  closed: boolean;
  /** Messages accepted but not yet confirmed (AMQP: queued + in flight; memory: 0). */
  buffered: number;
  /** Messages counted as published (AMQP: confirmed by the broker). */
  published: number;
  /** Messages dropped, all reasons together (see the `..._dropped_total` metric). */
  dropped: number;
  /** Active subscriptions. */
  subscriptions: number;
}

/**
 * The bus. Both implementations have the same semantics except where noted:
 *
 * - {@link Bus.publish} never blocks and never throws for a valid routing key: the message
 *   is accepted (returns true) or dropped and counted (returns false).
 * - Subscribers see the messages of one publisher in publish order.
 * - {@link Bus.close} flushes what is buffered, bounded by a timeout.
 */
export interface Bus {
  /**
   * Publishes `message` with `routingKey` (dot-separated words, no wildcards; at most 255
   * bytes). Returns true when the message was accepted (in-process: queued to every
   * matching subscriber that had room; AMQP: queued for sending, counted as published once
   * the broker confirms it), false when it was dropped (bus closed, or AMQP buffer full).
   * @throws TypeError when `routingKey` is not a valid routing key ({@link validateRoutingKey}).
   */
  publish(routingKey: string, message: BusMessage): boolean;
  /**
   * Subscribes `handler` to every message whose routing key matches `bindingKey`
   * ({@link matchesBindingKey}).
   * @throws TypeError when `bindingKey` is malformed ({@link validateBindingKey}).
   */
  subscribe(bindingKey: string, handler: BusHandler): Subscription;
  /**
   * Resolves true once every message accepted so far is delivered (AMQP: confirmed), or
   * false when `timeoutMs` elapses first.
   */
  flush(timeoutMs?: number): Promise<boolean>;
  /**
   * Stops accepting messages, flushes (up to `timeoutMs`, default 5000), then releases the
   * connection. Messages still buffered at the deadline are counted as dropped
   * (reason `closed`) and logged. Idempotent.
   */
  close(timeoutMs?: number): Promise<void>;
  /** True while the bus can deliver messages (see {@link BusStatus.connected}). */
  isConnected(): boolean;
  /** A snapshot of the bus's state. */
  status(): BusStatus;
}

/** Largest routing or binding key AMQP accepts (a `shortstr`): 255 bytes of UTF-8. */
export const MAX_KEY_BYTES = 255;

/**
 * The characters allowed in one word of a routing or binding key: ASCII letters, digits,
 * `_`, `-`, `:`, `@`, `+`, `=`, `/` and `~`. AMQP itself allows any byte but `.`; Switchboard
 * is stricter so that keys stay printable, shell-safe and unambiguous in URLs
 * (`/api/events?bind=...`). XiVO's keys (`ami.QueueMemberStatus`, `status.agent`,
 * `chat.message.<uuid>.<id>`, `service.registered.xivo-ctid`) all fit.
 */
const WORD = /^[A-Za-z0-9_\-:@+=/~]+$/;

function keyProblems(key: string, kind: 'binding' | 'routing'): string | undefined {
  if (typeof key !== 'string') return `${kind} key must be a string`;
  if (key.length === 0) return `${kind} key is empty`;
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) {
    return `${kind} key is longer than ${MAX_KEY_BYTES} bytes`;
  }
  const words = key.split('.');
  for (let i = 0; i < words.length; i++) {
    const word = words[i] as string;
    if (word === '') {
      return `${kind} key ${JSON.stringify(key)} has an empty word at position ${i + 1} (leading, trailing or doubled '.')`;
    }
    if (word === '*' || word === '#') {
      if (kind === 'routing') {
        return `routing key ${JSON.stringify(key)} contains the wildcard '${word}' (wildcards belong in binding keys only)`;
      }
      continue;
    }
    if (!WORD.test(word)) {
      const hint =
        word.includes('*') || word.includes('#')
          ? " ('*' and '#' must be whole words, e.g. 'call.*' not 'call*')"
          : ' (allowed: letters, digits and _ - : @ + = / ~)';
      return `${kind} key ${JSON.stringify(key)} has an invalid word ${JSON.stringify(word)}${hint}`;
    }
  }
  return undefined;
}

/**
 * Checks a binding key: non-empty dot-separated words, each either `*` (exactly one word),
 * `#` (zero or more words) or made of the characters letters, digits and `_-:@+=/~`; at most
 * 255 bytes. Empty words (`a..b`, `.a`, `a.`) and wildcards glued to text (`call*`,
 * `a#`) are rejected, although RabbitMQ would accept the latter as literal text, because
 * they are almost always a mistake.
 * @returns `undefined` when valid, else a one-line human-readable reason.
 */
export function bindingKeyProblem(bindingKey: string): string | undefined {
  return keyProblems(bindingKey, 'binding');
}

/**
 * Like {@link bindingKeyProblem} but throws.
 * @returns the binding key unchanged.
 * @throws TypeError with the reason when the key is malformed.
 */
export function validateBindingKey(bindingKey: string): string {
  const problem = keyProblems(bindingKey, 'binding');
  if (problem !== undefined) throw new TypeError(problem);
  return bindingKey;
}

/**
 * Checks a routing key: the same rules as a binding key, without wildcards.
 * @returns the routing key unchanged.
 * @throws TypeError with the reason when the key is malformed.
 */
export function validateRoutingKey(routingKey: string): string {
  const problem = keyProblems(routingKey, 'routing');
  if (problem !== undefined) throw new TypeError(problem);
  return routingKey;
}

const checkedRoutingKeys = new Set<string>();

/**
 * {@link validateRoutingKey} with a cache of keys already found valid (up to 10,000), for
 * the publish hot path where the same few keys recur.
 * @throws TypeError with the reason when the key is malformed.
 */
export function checkRoutingKey(routingKey: string): void {
  if (checkedRoutingKeys.has(routingKey)) return;
  validateRoutingKey(routingKey);
  if (checkedRoutingKeys.size >= 10_000) checkedRoutingKeys.clear();
  checkedRoutingKeys.add(routingKey);
}

/**
 * AMQP topic-exchange matching: both keys are split on `.`; in the binding key `*` matches
 * exactly one word and `#` matches zero or more words; any other word matches only itself
 * (case-sensitive). `#` alone matches everything; `a.#` matches `a`, `a.b` and `a.b.c`;
 * `#.a.#` matches any key containing the word `a`. Pure; does not validate its arguments
 * (callers validate once with {@link validateBindingKey}).
 */
export function matchesBindingKey(bindingKey: string, routingKey: string): boolean {
  if (bindingKey === '#') return true;
  if (bindingKey.indexOf('*') === -1 && bindingKey.indexOf('#') === -1) {
    return bindingKey === routingKey;
  }
  return matchWords(bindingKey.split('.'), 0, routingKey.split('.'), 0);
}

function matchWords(pattern: string[], p: number, words: string[], w: number): boolean {
  while (p < pattern.length) {
    const word = pattern[p];
    if (word === '#') {
      // Collapse consecutive '#'; then try every split point.
      while (p + 1 < pattern.length && pattern[p + 1] === '#') p++;
      if (p === pattern.length - 1) return true;
      for (let skip = w; skip <= words.length; skip++) {
        if (matchWords(pattern, p + 1, words, skip)) return true;
      }
      return false;
    }
    if (w >= words.length) return false;
    if (word !== '*' && word !== words[w]) return false;
    p++;
    w++;
  }
  return w === words.length;
}

/**
 * A compiled binding key for repeated matching: validates once, then
 * `matcher(routingKey)` is {@link matchesBindingKey}. Exact keys compare as strings.
 * @throws TypeError when `bindingKey` is malformed.
 */
export function compileBindingKey(bindingKey: string): (routingKey: string) => boolean {
  validateBindingKey(bindingKey);
  if (bindingKey === '#') return () => true;
  if (!bindingKey.includes('*') && !bindingKey.includes('#')) {
    return (routingKey) => routingKey === bindingKey;
  }
  const pattern = bindingKey.split('.');
  return (routingKey) => matchWords(pattern, 0, routingKey.split('.'), 0);
}

/** The logger type of the bus and the sinks (defined in util/log.ts). */
export { type Logger, silentLogger } from '../util/log.ts';

/**
 * The bus metrics, shared by both implementations (label `bus`: `memory` | `amqp`):
 *
 * - `switchboard_bus_messages_published_total{bus}`: counter, messages published (AMQP:
 *   confirmed by the broker).
 * - `switchboard_bus_messages_buffered{bus}`: gauge, accepted but not yet confirmed.
 * - `switchboard_bus_messages_dropped_total{bus,reason,family}`: counter; reasons
 *   `buffer_full` (AMQP buffer bound of the message's class reached), `subscriber_queue_full`
 *   (in-process slow subscriber), `closed` (published after close, or still buffered when
 *   close timed out), `unserializable` (not JSON; the in-process bus only serialises for a
 *   matching subscriber); `family` the routing key's first word ({@link routingKeyFamily}).
 * - `switchboard_bus_messages_resent_total{bus}`: counter, AMQP messages sent again after a
 *   connection loss before their confirm arrived (possible duplicates).
 * - `switchboard_bus_connected{bus}`: gauge, 1 when connected.
 * - `switchboard_bus_reconnects_total{bus}`: counter, successful AMQP reconnections.
 * - `switchboard_bus_messages_received_total{bus}`: counter, messages handed to subscribers.
 *
 * Registering twice on the same registry reuses the existing metrics.
 */
export interface BusMetrics {
  published: Counter<'bus'>;
  buffered: Gauge<'bus'>;
  dropped: Counter<'bus' | 'reason' | 'family'>;
  resent: Counter<'bus'>;
  connected: Gauge<'bus'>;
  reconnects: Counter<'bus'>;
  received: Counter<'bus'>;
}

/**
 * Creates (or reuses) the bus metrics on `registry`. Without a registry, the metrics exist
 * but are registered nowhere (useful in tests).
 */
export function busMetrics(registry?: Registry): BusMetrics {
  const registers = registry === undefined ? [] : [registry];
  const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
    reuseMetric(registry, name, () => new Counter<L>({ name, help, labelNames, registers }));
  const gauge = <L extends string>(name: string, help: string, labelNames: L[]) =>
    reuseMetric(registry, name, () => new Gauge<L>({ name, help, labelNames, registers }));
  return {
    published: counter(
      'switchboard_bus_messages_published_total',
      'Bus messages published (AMQP: confirmed by the broker)',
      ['bus'],
    ),
    buffered: gauge(
      'switchboard_bus_messages_buffered',
      'Bus messages accepted but not yet confirmed',
      ['bus'],
    ),
    dropped: counter(
      'switchboard_bus_messages_dropped_total',
      'Bus messages dropped, by reason and routing-key family (first word)',
      ['bus', 'reason', 'family'],
    ),
    resent: counter(
      'switchboard_bus_messages_resent_total',
      'AMQP messages sent again after a connection loss (possible duplicates)',
      ['bus'],
    ),
    connected: gauge('switchboard_bus_connected', '1 when the bus is connected', ['bus']),
    reconnects: counter('switchboard_bus_reconnects_total', 'Successful AMQP reconnections', [
      'bus',
    ]),
    received: counter(
      'switchboard_bus_messages_received_total',
      'Bus messages handed to subscribers',
      ['bus'],
    ),
  };
}

// ---------------------------------------------------------------------------------------------
// Priorities and drops
// ---------------------------------------------------------------------------------------------

/**
 * Routing-key families Switchboard publishes (the first word of the key): raw AMI events
 * (`ami.<Event>`), call events, alert calls, announcements, mobile wake-up, the Jenkins
 * watcher, service registration, XiVO status and CTI events.
 */
const FAMILIES = new Set([
  'ami',
  'call',
  'callout',
  'announce',
  'push',
  'jenkins',
  'service',
  'status',
  'chat',
  'call_form_result',
]);

/**
 * The family of a routing key for metrics and logs: its first word when it is one of
 * Switchboard's (`ami`, `call`, `callout`, `announce`, `push`, `jenkins`, `service`, `status`,
 * `chat`, `call_form_result`), else `other` (so label values stay few whatever is published).
 */
export function routingKeyFamily(routingKey: string): string {
  const dot = routingKey.indexOf('.');
  const first = dot === -1 ? routingKey : routingKey.slice(0, dot);
  return FAMILIES.has(first) ? first : 'other';
}

/**
 * Whether a message is raw AMI traffic (`ami.*`), the bus's low-priority class: it has its own
 * buffer budget (AMQP `amiBufferSize`, in-process `amiQueueSize`), so that a flood of raw
 * events during an outage never pushes out call events, alert-call and service events.
 */
export function isRawAmi(routingKey: string): boolean {
  return routingKey.startsWith('ami.') || routingKey === 'ami';
}

/**
 * Counts dropped messages (metric `switchboard_bus_messages_dropped_total{bus,reason,family}`)
 * and logs them without flooding: the first drop of an episode (one warning naming the
 * family and reason), a summary with the counts per family and reason when the episode
 * ends ({@link DropLog.end}: the bus caught up) and at most every `summaryIntervalMs` while
 * it lasts. Exported for the bus implementations; not a bus API.
 */
export class DropLog {
  readonly #bus: 'amqp' | 'memory';
  readonly #metric: BusMetrics['dropped'];
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #level: 'warn' | 'error';
  #counts = new Map<string, number>();
  #open = false;
  #startedMs = 0;
  #summaryMs = 0;
  #total = 0;

  /**
   * @param level of the log lines (the AMQP bus: `error`, a message lost on its way to the
   *   broker; the in-process bus: `warn`, one slow subscriber).
   */
  constructor(
    bus: 'amqp' | 'memory',
    metric: BusMetrics['dropped'],
    logger: Logger,
    level: 'warn' | 'error' = 'warn',
    summaryIntervalMs = 60_000,
  ) {
    this.#bus = bus;
    this.#metric = metric;
    this.#logger = logger;
    this.#level = level;
    this.#intervalMs = summaryIntervalMs;
  }

  /** Messages dropped since the bus was created. */
  get total(): number {
    return this.#total;
  }

  /** True while an episode of drops is open (from its first drop to {@link DropLog.end}). */
  get open(): boolean {
    return this.#open;
  }

  /** Counts `count` dropped messages of `routingKey`; `detail` goes into the first log line. */
  drop(reason: string, routingKey: string, detail: object = {}, count = 1): void {
    const family = routingKeyFamily(routingKey);
    this.#total += count;
    this.#metric.inc({ bus: this.#bus, reason, family }, count);
    const key = `${family}/${reason}`;
    const now = Date.now();
    if (!this.#open) {
      this.#open = true;
      this.#startedMs = now;
      this.#summaryMs = now;
      this.#logger[this.#level](
        { bus: this.#bus, reason, family, routingKey, ...detail },
        `${this.#bus} bus dropping messages (${family}: ${reason}); a summary follows when it catches up`,
      );
    }
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + count);
    if (now - this.#summaryMs >= this.#intervalMs) this.#summarise('still dropping');
  }

  /** Ends the episode: logs its summary (nothing when there were no drops). */
  end(): void {
    if (!this.#open) return;
    this.#summarise('caught up');
    this.#open = false;
  }

  #summarise(state: 'still dropping' | 'caught up'): void {
    if (this.#counts.size === 0) return;
    const dropped: Record<string, Record<string, number>> = {};
    let n = 0;
    for (const [key, count] of this.#counts) {
      const [family, reason] = key.split('/') as [string, string];
      dropped[family] = { ...dropped[family], [reason]: count };
      n += count;
    }
    const now = Date.now();
    this.#logger[this.#level](
      { bus: this.#bus, dropped, episodeMs: now - this.#startedMs, droppedTotal: this.#total },
      `${this.#bus} bus dropped ${n} messages (${state})`,
    );
    this.#summaryMs = now;
    this.#counts.clear();
  }
}
