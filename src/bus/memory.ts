/**
 * The in-process bus: the default when no broker is configured. Same interface and same
 * routing-key matching as the AMQP bus (`amqp.ts`).
 *
 * Delivery is asynchronous (never inside `publish`) and in publish order per subscriber.
 * Every subscriber has its own bounded queue; a subscriber whose handler is slow (or
 * returns a slow promise) fills its own queue, after which messages for it are dropped and
 * counted (`switchboard_bus_messages_dropped_total{bus="memory",reason="subscriber_queue_full",family}`),
 * so publishers and the other subscribers are never held up. As on the AMQP bus, raw AMI
 * events (`ami.*`) have their own budget in each queue (`amiQueueSize`), so a subscriber
 * bound to `#` that falls behind the AMI firehose still gets every call event; drops are
 * logged once per episode with a summary when the subscriber caught up.
 */
import type { Registry } from 'prom-client';
import {
  type Bus,
  type BusHandler,
  type BusMessage,
  type BusMetrics,
  type BusStatus,
  busMetrics,
  checkRoutingKey,
  compileBindingKey,
  DropLog,
  Fifo,
  isRawAmi,
  type Logger,
  type Subscription,
  silentLogger,
} from './bus.ts';

/** Options of {@link MemoryBus}. */
export interface MemoryBusOptions {
  /**
   * Messages other than raw AMI events queued per subscriber before new ones are dropped for
   * it. Default 10000.
   */
  subscriberQueueSize?: number;
  /** Raw AMI events (`ami.*`) queued per subscriber before new ones are dropped for it. Default: `subscriberQueueSize`. */
  amiQueueSize?: number;
  /** Registry for the bus metrics (see `busMetrics`). */
  registry?: Registry;
  /** pino-compatible logger. Default: silent. */
  logger?: Logger;
}

interface Entry {
  routingKey: string;
  message: BusMessage;
  ami: boolean;
}

class MemorySubscription implements Subscription {
  readonly bindingKey: string;
  readonly ready: Promise<void> = Promise.resolve();
  readonly matches: (routingKey: string) => boolean;
  readonly queue = new Fifo<Entry>();
  readonly handler: BusHandler;
  dropped = 0;
  /** Raw AMI entries in `queue`. */
  amiQueued = 0;
  running = false;
  closed = false;
  readonly #onClose: (sub: MemorySubscription) => void;

  constructor(bindingKey: string, handler: BusHandler, onClose: (sub: MemorySubscription) => void) {
    this.matches = compileBindingKey(bindingKey);
    this.bindingKey = bindingKey;
    this.handler = handler;
    this.#onClose = onClose;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.drain();
    this.#onClose(this);
  }
}

/**
 * The in-process {@link Bus}. Messages are serialised to JSON and parsed back once per
 * publish, so subscribers see exactly what an AMQP subscriber would (no `Date`s, no
 * `undefined` values) and never the publisher's mutable object.
 */
export class MemoryBus implements Bus {
  readonly #subs = new Set<MemorySubscription>();
  readonly #queueSize: number;
  readonly #amiQueueSize: number;
  readonly #metrics: BusMetrics;
  readonly #logger: Logger;
  readonly #drops: DropLog;
  #closed = false;
  #published = 0;
  #dropped = 0;
  #idleWaiters: (() => void)[] = [];

  /** @param options see {@link MemoryBusOptions}. */
  constructor(options: MemoryBusOptions = {}) {
    this.#queueSize = options.subscriberQueueSize ?? 10_000;
    if (!(this.#queueSize >= 1)) throw new RangeError('subscriberQueueSize must be >= 1');
    this.#amiQueueSize = options.amiQueueSize ?? this.#queueSize;
    if (!(this.#amiQueueSize >= 1)) throw new RangeError('amiQueueSize must be >= 1');
    this.#metrics = busMetrics(options.registry);
    this.#logger = options.logger ?? silentLogger;
    this.#drops = new DropLog('memory', this.#metrics.dropped, this.#logger);
    this.#metrics.connected.set({ bus: 'memory' }, 1);
  }

  publish(routingKey: string, message: BusMessage): boolean {
    checkRoutingKey(routingKey);
    if (this.#closed) {
      this.#drop('closed', routingKey);
      return false;
    }
    const targets: MemorySubscription[] = [];
    for (const sub of this.#subs) if (sub.matches(routingKey)) targets.push(sub);
    // Nobody bound: nothing to copy (the AMI firehose with no subscriber costs no JSON work).
    let copy: BusMessage | undefined;
    if (targets.length > 0) {
      try {
        copy = JSON.parse(JSON.stringify(message)) as BusMessage;
      } catch (err) {
        this.#drop('unserializable', routingKey, err);
        return false;
      }
    }
    let accepted = true;
    const ami = isRawAmi(routingKey);
    for (const sub of targets) {
      const full = ami
        ? sub.amiQueued >= this.#amiQueueSize
        : sub.queue.length - sub.amiQueued >= this.#queueSize;
      if (full) {
        sub.dropped++;
        accepted = false;
        this.#drop('subscriber_queue_full', routingKey, undefined, sub.bindingKey);
        continue;
      }
      if (ami) sub.amiQueued++;
      sub.queue.push({ routingKey, message: copy as BusMessage, ami });
      if (!sub.running) {
        sub.running = true;
        setImmediate(() => void this.#run(sub));
      }
    }
    this.#published++;
    this.#metrics.published.inc({ bus: 'memory' });
    return accepted;
  }

  subscribe(bindingKey: string, handler: BusHandler): Subscription {
    if (this.#closed) throw new Error('bus is closed');
    const sub = new MemorySubscription(bindingKey, handler, (s) => {
      this.#subs.delete(s);
      this.#notifyIdle();
    });
    this.#subs.add(sub);
    return sub;
  }

  async flush(timeoutMs = 5000): Promise<boolean> {
    if (this.#idle()) return true;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.#idleWaiters = this.#idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#idleWaiters.push(done);
    });
  }

  async close(timeoutMs = 5000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const flushed = await this.flush(timeoutMs);
    if (!flushed) {
      let left = 0;
      for (const sub of this.#subs) {
        left += sub.queue.length;
        for (const entry of sub.queue.drain()) this.#drops.drop('closed', entry.routingKey);
      }
      if (left > 0) {
        this.#dropped += left;
        this.#logger.warn(
          { dropped: left, timeoutMs },
          'in-process bus closed with undelivered messages',
        );
      }
    }
    for (const sub of [...this.#subs]) await sub.close();
    this.#drops.end();
    this.#metrics.connected.set({ bus: 'memory' }, 0);
  }

  isConnected(): boolean {
    return !this.#closed;
  }

  status(): BusStatus {
    let buffered = 0;
    for (const sub of this.#subs) buffered += sub.queue.length;
    return {
      kind: 'memory',
      connected: !this.#closed,
      closed: this.#closed,
      buffered,
      published: this.#published,
      dropped: this.#dropped,
      subscriptions: this.#subs.size,
    };
  }

  async #run(sub: MemorySubscription): Promise<void> {
    // Deliver a batch synchronously, yielding to the event loop between batches so that
    // one busy subscriber cannot starve I/O; await promises returned by the handler.
    let delivered = 0;
    for (;;) {
      if (sub.closed) break;
      const entry = sub.queue.shift();
      if (entry === undefined) break;
      if (entry.ami) sub.amiQueued--;
      this.#metrics.received.inc({ bus: 'memory' });
      try {
        const result = sub.handler(entry.message, entry.routingKey);
        if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
          await result;
        }
      } catch (err) {
        this.#logger.error(
          { err, bindingKey: sub.bindingKey, routingKey: entry.routingKey },
          'bus subscriber failed',
        );
      }
      if (++delivered >= 256) {
        delivered = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    sub.running = false;
    // this subscriber caught up: the summary of the drops (if any)
    if (this.#drops.open) this.#drops.end();
    this.#notifyIdle();
  }

  #idle(): boolean {
    for (const sub of this.#subs) if (sub.running || sub.queue.length > 0) return false;
    return true;
  }

  #notifyIdle(): void {
    if (this.#idleWaiters.length === 0 || !this.#idle()) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  #drop(reason: string, routingKey: string, err?: unknown, bindingKey?: string): void {
    this.#dropped++;
    // Every drop is counted; the log gets the first of an episode and a summary at its end.
    this.#drops.drop(reason, routingKey, { bindingKey, ...(err === undefined ? {} : { err }) });
  }
}
