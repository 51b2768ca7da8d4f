/**
 * Why this file is long: {@link AmqpBus} is one class whose buffer, publisher confirms and
 * reconnect share one state (the channel generation, the unconfirmed sequence numbers, the
 * replay order); the at-least-once guarantee below lives in how they interlock, so they are
 * kept together. The generic parts (Fifo, DropLog, metrics, routing keys) are in bus.ts.
 *
 * The AMQP 0-9-1 bus (RabbitMQ) via amqplib: a durable topic exchange (default `xivo`, as in
 * the XiVO bus document), JSON bodies, publisher confirms, a bounded buffer replayed in
 * order after reconnecting, and exclusive auto-delete queues for subscriptions.
 *
 * Delivery guarantee (publishing): **at-least-once within the buffer bound.** A message
 * counts as published only when the broker confirms it (RabbitMQ publisher confirms,
 * https://www.rabbitmq.com/docs/confirms#publisher-confirms). Until then it stays in the
 * buffer. When the connection drops, every message sent but not yet confirmed is sent again,
 * before the messages queued after it, once the connection is back: consumers may therefore
 * see a message twice (the broker may have routed it before the confirm was lost), but see
 * no gap and see first occurrences in publish order.
 *
 * The buffer (queued + unconfirmed) has two budgets: raw AMI events (`ami.*`, the firehose:
 * thousands per second on a busy PBX) at most `amiBufferSize`, every other message (call
 * events, alert calls, announcements, service and status events) at most `bufferSize`. When
 * a message's budget is full, that message is dropped, counted in
 * `switchboard_bus_messages_dropped_total{bus="amqp",reason="buffer_full",family}` and
 * logged once per episode, with a summary when the bus caught up ({@link DropLog}). So an
 * outage that overflows the raw AMI budget costs raw AMI events only: call events keep their
 * order and their own room.
 *
 * Subscriptions get a server-named exclusive, auto-delete queue bound with their binding
 * key and are re-created after a reconnect; messages routed while a subscriber is
 * disconnected are not kept for it (as in XiVO). Within one bus instance, subscriptions
 * are re-established before buffered messages are replayed.
 */
import { type Channel, type ChannelModel, type ConfirmChannel, connect } from 'amqplib';
import type { Registry } from 'prom-client';
import { backoffMs as backoff } from '../util/backoff.ts';
import {
  type Bus,
  type BusHandler,
  type BusMessage,
  type BusMetrics,
  type BusStatus,
  busMetrics,
  checkRoutingKey,
  DropLog,
  Fifo,
  isRawAmi,
  type Logger,
  type Subscription,
  silentLogger,
  validateBindingKey,
} from './bus.ts';
import { AMQP_BUS_DEFAULTS } from './defaults.ts';

/** Options of {@link AmqpBus}. */
export interface AmqpBusOptions {
  /** Broker URL, e.g. `amqp://guest:guest@127.0.0.1:5672/` (vhost after the slash). */
  url: string;
  /** Topic exchange name, declared durable. Default `xivo` (seed, "Usage"). Defaults: {@link AMQP_BUS_DEFAULTS}. */
  exchange?: string;
  /** Publish with delivery mode 2 (persistent). Default true (the `amqp.persistent` default). */
  persistent?: boolean;
  /**
   * Messages other than raw AMI events (`call.*`, `callout.*`, `service.*`, ...) queued or
   * awaiting confirm before new ones are dropped. Default 10000.
   */
  bufferSize?: number;
  /** Raw AMI events (`ami.*`) queued or awaiting confirm before new ones are dropped. Default 10000. */
  amiBufferSize?: number;
  /** Messages sent but not yet confirmed at most (the confirm window). Default 1000. */
  confirmWindow?: number;
  /** First reconnect delay after a failed attempt. Default 500 ms. */
  reconnectInitialDelayMs?: number;
  /** Largest reconnect delay (exponential backoff, factor 2, ±20% jitter). Default 30000 ms. */
  reconnectMaxDelayMs?: number;
  /** AMQP heartbeat requested when the URL has none. Default 30 s. */
  heartbeatS?: number;
  /** TCP connect + AMQP handshake timeout. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** `connection_name` client property shown by `rabbitmqctl list_connections`. */
  connectionName?: string;
  /** Registry for the bus metrics (see `busMetrics`). */
  registry?: Registry;
  /** pino-compatible logger. Default: silent. */
  logger?: Logger;
}

interface Outgoing {
  seq: number;
  routingKey: string;
  body: Buffer;
  sends: number;
  /** Raw AMI (`ami.*`): counted in the `amiBufferSize` budget. */
  ami: boolean;
}

/** A named, durable queue for {@link AmqpBus.subscribeQueue}. */
export interface DurableQueueOptions {
  /** Queue name (declared durable, not exclusive, not auto-deleted). */
  queue: string;
  /**
   * The queue is deleted by RabbitMQ after this long without a consumer (`x-expires`), so a
   * forgotten queue does not collect messages forever. Default 600000 (10 minutes).
   */
  expiresMs?: number;
  /**
   * Most messages delivered and not yet acknowledged (AMQP `basic.qos` prefetch count).
   * Each message is acknowledged once its handler returned (or its promise resolved): a
   * consumer that dies before that gets it again, redelivered by RabbitMQ. Default 100.
   */
  prefetch?: number;
}

class AmqpSubscription implements Subscription {
  readonly bindingKey: string;
  /** Every binding key of the subscription (the first is `bindingKey`). */
  readonly bindingKeys: readonly string[];
  /** Set for a named durable queue: it survives reconnects and broker restarts. */
  readonly durable: DurableQueueOptions | undefined;
  readonly handler: BusHandler;
  readonly ready: Promise<void>;
  resolveReady: () => void = () => {};
  queue: string | undefined;
  /** Consumer tag on the current channel (to cancel a durable queue's consumer). */
  consumerTag: string | undefined;
  closed = false;
  readonly #onClose: (sub: AmqpSubscription) => Promise<void>;

  constructor(
    bindingKeys: readonly string[],
    handler: BusHandler,
    onClose: (sub: AmqpSubscription) => Promise<void>,
    durable?: DurableQueueOptions,
  ) {
    this.bindingKey = bindingKeys[0] as string;
    this.bindingKeys = bindingKeys;
    this.durable = durable;
    this.handler = handler;
    this.#onClose = onClose;
    this.ready = new Promise<void>((resolve) => {
      this.resolveReady = resolve;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.resolveReady();
    await this.#onClose(this);
  }
}

const JSON_PROPS = { contentType: 'application/json', contentEncoding: 'utf-8' } as const;

/**
 * The AMQP {@link Bus}. Connects in the background as soon as it is constructed and keeps
 * reconnecting (exponential backoff) until closed; `publish` works from the start and
 * buffers while disconnected. See the module comment for the delivery guarantee.
 */
export class AmqpBus implements Bus {
  readonly #url: string;
  readonly #exchange: string;
  readonly #publishOptions: {
    contentType: string;
    contentEncoding: string;
    persistent: boolean;
  };
  readonly #bufferSize: number;
  readonly #amiBufferSize: number;
  /** Buffered (queued + unconfirmed) raw AMI messages; the others are the rest. */
  #amiBuffered = 0;
  readonly #drops: DropLog;
  readonly #window: number;
  readonly #initialDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #connectTimeoutMs: number;
  readonly #connectionName: string;
  readonly #logger: Logger;
  readonly #metrics: BusMetrics;
  readonly #m: {
    published: { inc(n?: number): void };
    buffered: { set(n: number): void };
    resent: { inc(n?: number): void };
    connected: { set(n: number): void };
    reconnects: { inc(n?: number): void };
    received: { inc(n?: number): void };
  };

  readonly #pending = new Fifo<Outgoing>();
  readonly #inflight = new Map<number, Outgoing>();
  readonly #subs = new Set<AmqpSubscription>();
  #seq = 0;
  #gen = 0;
  #conn: ChannelModel | undefined;
  #pub: ConfirmChannel | undefined;
  #subCh: Channel | undefined;
  #writable = true;
  #closing = false;
  #closed = false;
  #connecting = false;
  #everConnected = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryWake: (() => void) | undefined;
  #published = 0;
  #dropped = 0;
  #flushWaiters: (() => void)[] = [];
  #connectWaiters: (() => void)[] = [];

  /**
   * @param options see {@link AmqpBusOptions}.
   * @throws RangeError on a non-positive `bufferSize` or `confirmWindow`.
   */
  constructor(options: AmqpBusOptions) {
    this.#exchange = options.exchange ?? AMQP_BUS_DEFAULTS.exchange;
    this.#publishOptions = {
      ...JSON_PROPS,
      persistent: options.persistent ?? AMQP_BUS_DEFAULTS.persistent,
    };
    this.#bufferSize = options.bufferSize ?? AMQP_BUS_DEFAULTS.bufferSize;
    this.#amiBufferSize = options.amiBufferSize ?? AMQP_BUS_DEFAULTS.amiBufferSize;
    this.#window = options.confirmWindow ?? AMQP_BUS_DEFAULTS.confirmWindow;
    if (!(this.#bufferSize >= 1)) throw new RangeError('bufferSize must be >= 1');
    if (!(this.#amiBufferSize >= 1)) throw new RangeError('amiBufferSize must be >= 1');
    if (!(this.#window >= 1)) throw new RangeError('confirmWindow must be >= 1');
    this.#initialDelayMs =
      options.reconnectInitialDelayMs ?? AMQP_BUS_DEFAULTS.reconnectInitialDelayMs;
    this.#maxDelayMs = options.reconnectMaxDelayMs ?? AMQP_BUS_DEFAULTS.reconnectMaxDelayMs;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? AMQP_BUS_DEFAULTS.connectTimeoutMs;
    this.#connectionName = options.connectionName ?? 'switchboard';
    this.#logger = options.logger ?? silentLogger;
    this.#url = withHeartbeat(options.url, options.heartbeatS ?? AMQP_BUS_DEFAULTS.heartbeatS);
    this.#metrics = busMetrics(options.registry);
    this.#drops = new DropLog('amqp', this.#metrics.dropped, this.#logger, 'error');
    const l = { bus: 'amqp' };
    this.#m = {
      published: this.#metrics.published.labels(l),
      buffered: this.#metrics.buffered.labels(l),
      resent: this.#metrics.resent.labels(l),
      connected: this.#metrics.connected.labels(l),
      reconnects: this.#metrics.reconnects.labels(l),
      received: this.#metrics.received.labels(l),
    };
    this.#m.connected.set(0);
    void this.#connectLoop();
  }

  /** The exchange this bus publishes to. */
  get exchange(): string {
    return this.#exchange;
  }

  publish(routingKey: string, message: BusMessage): boolean {
    checkRoutingKey(routingKey);
    if (this.#closing) {
      this.#drop('closed', routingKey);
      return false;
    }
    const ami = isRawAmi(routingKey);
    const buffered = this.#pending.length + this.#inflight.size;
    if (
      ami
        ? this.#amiBuffered >= this.#amiBufferSize
        : buffered - this.#amiBuffered >= this.#bufferSize
    ) {
      this.#drop('buffer_full', routingKey);
      return false;
    }
    let body: Buffer;
    try {
      body = Buffer.from(JSON.stringify(message));
    } catch (err) {
      this.#drop('unserializable', routingKey, err);
      return false;
    }
    if (ami) this.#amiBuffered++;
    this.#pending.push({ seq: ++this.#seq, routingKey, body, sends: 0, ami });
    this.#pump();
    this.#m.buffered.set(this.#pending.length + this.#inflight.size);
    return true;
  }

  subscribe(bindingKey: string, handler: BusHandler): Subscription {
    return this.#subscribe([bindingKey], handler, undefined);
  }

  /**
   * Subscribes through a named, durable queue bound with every key of `bindingKeys`: unlike
   * {@link subscribe}'s exclusive auto-delete queue, it keeps existing while the connection
   * is down and across a broker restart, so (with persistent messages) a consumer loses
   * nothing the publisher re-sends after the outage. Each message is acknowledged after
   * `handler` returned or its promise resolved, so a consumer that crashes first gets it
   * again (at least once; a handler that throws or rejects has it requeued once). Closing the
   * subscription keeps the queue; RabbitMQ deletes it after `expiresMs` without a consumer.
   * @throws TypeError when a binding key is malformed; Error when the bus is closed.
   */
  subscribeQueue(
    bindingKeys: readonly string[],
    handler: BusHandler,
    options: DurableQueueOptions,
  ): Subscription {
    if (bindingKeys.length === 0) throw new TypeError('at least one binding key is needed');
    return this.#subscribe(bindingKeys, handler, options);
  }

  #subscribe(
    bindingKeys: readonly string[],
    handler: BusHandler,
    durable: DurableQueueOptions | undefined,
  ): Subscription {
    for (const key of bindingKeys) validateBindingKey(key);
    if (this.#closing) throw new Error('bus is closed');
    const sub = new AmqpSubscription(bindingKeys, handler, (s) => this.#unsubscribe(s), durable);
    this.#subs.add(sub);
    const ch = this.#subCh;
    if (ch !== undefined && this.#pub !== undefined) {
      const gen = this.#gen;
      this.#bind(ch, sub).catch((err: unknown) => {
        if (gen === this.#gen) this.#fail(gen, err);
      });
    }
    return sub;
  }

  flush(timeoutMs = 5000): Promise<boolean> {
    if (this.#pending.length + this.#inflight.size === 0) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.#flushWaiters = this.#flushWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      this.#flushWaiters.push(done);
    });
  }

  /**
   * Resolves true once connected (immediately if connected now), false after `timeoutMs`.
   */
  waitConnected(timeoutMs = 5000): Promise<boolean> {
    if (this.isConnected()) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.#connectWaiters = this.#connectWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      this.#connectWaiters.push(done);
    });
  }

  async close(timeoutMs = 5000): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const flushed = await this.flush(timeoutMs);
    this.#closed = true;
    if (!flushed) {
      const left = [...this.#inflight.values(), ...this.#pending.drain()];
      this.#dropped += left.length;
      const byKey = new Map<string, number>();
      for (const out of left) byKey.set(out.routingKey, (byKey.get(out.routingKey) ?? 0) + 1);
      for (const [routingKey, n] of byKey) this.#drops.drop('closed', routingKey, {}, n);
      this.#logger.error(
        { dropped: left.length, timeoutMs, connected: this.isConnected() },
        'AMQP bus closed before every message was confirmed; unconfirmed messages dropped',
      );
      this.#inflight.clear();
      this.#amiBuffered = 0;
      this.#m.buffered.set(0);
    }
    this.#drops.end();
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#retryWake?.();
    for (const sub of this.#subs) {
      sub.closed = true;
      sub.resolveReady();
    }
    this.#subs.clear();
    const conn = this.#conn;
    this.#gen++;
    this.#conn = undefined;
    this.#pub = undefined;
    this.#subCh = undefined;
    this.#m.connected.set(0);
    if (conn !== undefined) await conn.close().catch(() => {});
  }

  isConnected(): boolean {
    return this.#pub !== undefined;
  }

  status(): BusStatus {
    return {
      kind: 'amqp',
      connected: this.isConnected(),
      closed: this.#closing,
      buffered: this.#pending.length + this.#inflight.size,
      published: this.#published,
      dropped: this.#dropped,
      subscriptions: this.#subs.size,
    };
  }

  // Sends queued messages while the confirm window and the socket allow.
  #pump(): void {
    const ch = this.#pub;
    if (ch === undefined || !this.#writable) return;
    const gen = this.#gen;
    while (this.#inflight.size < this.#window) {
      const out = this.#pending.shift();
      if (out === undefined) break;
      this.#inflight.set(out.seq, out);
      if (out.sends++ > 0) this.#m.resent.inc();
      const seq = out.seq;
      let ok: boolean;
      try {
        ok = ch.publish(this.#exchange, out.routingKey, out.body, this.#publishOptions, (err) =>
          this.#onConfirm(gen, seq, err),
        );
      } catch (err) {
        this.#fail(gen, err);
        return;
      }
      if (!ok) {
        this.#writable = false;
        break;
      }
    }
  }

  #onConfirm(gen: number, seq: number, err: unknown): void {
    if (gen !== this.#gen) return; // the connection it was sent on is gone; it was requeued
    if (err !== null && err !== undefined) {
      // A nack, or the channel closing with this message unconfirmed: reconnect, which
      // re-sends every unconfirmed message in order.
      this.#fail(gen, err instanceof Error ? err : new Error('message nacked by the broker'));
      return;
    }
    const out = this.#inflight.get(seq);
    if (out === undefined) return;
    this.#inflight.delete(seq);
    if (out.ami) this.#amiBuffered--;
    this.#published++;
    this.#m.published.inc();
    const left = this.#pending.length + this.#inflight.size;
    this.#m.buffered.set(left);
    if (left === 0) {
      // caught up: the summary of the drops of the outage (if any)
      this.#drops.end();
      if (this.#flushWaiters.length > 0) {
        const waiters = this.#flushWaiters;
        this.#flushWaiters = [];
        for (const w of waiters) w();
      }
      return;
    }
    this.#pump();
  }

  // Connection lost (or a channel failed): requeue the unconfirmed messages in front of the
  // queued ones, forget the connection and start reconnecting.
  #fail(gen: number, err: unknown): void {
    if (gen !== this.#gen) return;
    this.#gen++;
    const conn = this.#conn;
    this.#conn = undefined;
    this.#pub = undefined;
    this.#subCh = undefined;
    this.#writable = true;
    this.#m.connected.set(0);
    const unconfirmed = [...this.#inflight.values()].sort((a, b) => a.seq - b.seq);
    this.#inflight.clear();
    this.#pending.unshiftAll(unconfirmed);
    for (const sub of this.#subs) sub.queue = undefined;
    if (this.#closed) return;
    this.#logger.warn(
      {
        err: errorSummary(err),
        unconfirmed: unconfirmed.length,
        buffered: this.#pending.length,
      },
      'AMQP connection lost; buffering and reconnecting',
    );
    if (conn !== undefined) conn.close().catch(() => {});
    void this.#connectLoop();
  }

  async #connectLoop(): Promise<void> {
    if (this.#connecting) return;
    this.#connecting = true;
    try {
      let attempt = 0;
      while (!this.#closed) {
        try {
          await this.#connectOnce();
          break;
        } catch (err) {
          if (this.#closed) return;
          const delayMs = backoffMs(attempt++, this.#initialDelayMs, this.#maxDelayMs);
          const log = attempt === 1 || attempt % 10 === 0 ? 'warn' : 'debug';
          this.#logger[log](
            { err: errorSummary(err), attempt, delayMs, buffered: this.status().buffered },
            'AMQP connection attempt failed; retrying',
          );
          await new Promise<void>((resolve) => {
            this.#retryWake = resolve;
            this.#retryTimer = setTimeout(resolve, delayMs);
          });
          this.#retryTimer = undefined;
          this.#retryWake = undefined;
        }
      }
    } finally {
      this.#connecting = false;
    }
    this.#pump();
  }

  async #connectOnce(): Promise<void> {
    const conn = await connect(this.#url, {
      timeout: this.#connectTimeoutMs,
      clientProperties: { connection_name: this.#connectionName },
    });
    const gen = this.#gen;
    conn.on('error', (err: Error) => {
      this.#logger.debug({ err: errorSummary(err) }, 'AMQP connection error');
    });
    conn.on('close', (err?: Error) => this.#fail(gen, err ?? new Error('connection closed')));
    conn.on('blocked', (reason: string) =>
      this.#logger.warn({ reason }, 'AMQP connection blocked by the broker'),
    );
    conn.on('unblocked', () => this.#logger.info({}, 'AMQP connection unblocked'));
    this.#conn = conn;
    try {
      if (this.#closed) throw new Error('bus closed while connecting');
      const pub = await conn.createConfirmChannel();
      pub.on('error', (err: Error) =>
        this.#logger.debug({ err: errorSummary(err) }, 'AMQP publish channel error'),
      );
      pub.on('close', () => this.#fail(gen, new Error('publish channel closed')));
      pub.on('drain', () => {
        if (gen !== this.#gen) return;
        this.#writable = true;
        this.#pump();
      });
      await pub.assertExchange(this.#exchange, 'topic', { durable: true });
      const subCh = await conn.createChannel();
      subCh.on('error', (err: Error) =>
        this.#logger.debug({ err: errorSummary(err) }, 'AMQP consumer channel error'),
      );
      subCh.on('close', () => this.#fail(gen, new Error('consumer channel closed')));
      for (const sub of this.#subs) await this.#bind(subCh, sub);
      if (gen !== this.#gen) throw new Error('connection lost while setting up');
      this.#pub = pub;
      this.#subCh = subCh;
      this.#writable = true;
    } catch (err) {
      if (gen === this.#gen) {
        this.#gen++;
        this.#conn = undefined;
      }
      await conn.close().catch(() => {});
      throw err;
    }
    this.#m.connected.set(1);
    if (this.#everConnected) this.#m.reconnects.inc();
    this.#everConnected = true;
    this.#logger.info(
      { exchange: this.#exchange, buffered: this.#pending.length },
      'AMQP bus connected',
    );
    const waiters = this.#connectWaiters;
    this.#connectWaiters = [];
    for (const w of waiters) w();
  }

  async #bind(ch: Channel, sub: AmqpSubscription): Promise<void> {
    if (sub.closed) return;
    const durable = sub.durable;
    const { queue } =
      durable === undefined
        ? await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false })
        : await ch.assertQueue(durable.queue, {
            exclusive: false,
            autoDelete: false,
            durable: true,
            arguments: { 'x-expires': durable.expiresMs ?? 600_000 },
          });
    for (const key of sub.bindingKeys) await ch.bindQueue(queue, this.#exchange, key);
    // A durable queue is consumed with acknowledgements (at least once); the exclusive
    // queue of `subscribe` dies with the connection anyway, so it is consumed without.
    if (durable !== undefined) await ch.prefetch(durable.prefetch ?? 100);
    const { consumerTag } = await ch.consume(
      queue,
      (msg) => {
        if (msg === null || sub.closed) return;
        /** Acknowledges (or rejects) a durable queue's message; no-op for `subscribe`. */
        const settle = (handled: boolean) => {
          if (durable === undefined) return;
          try {
            // A failed message is requeued once; failing again, it is dropped (logged).
            if (handled) ch.ack(msg);
            else ch.nack(msg, false, !msg.fields.redelivered);
          } catch (err) {
            // The channel closed meanwhile: RabbitMQ redelivers the message.
            this.#logger.debug({ err: errorSummary(err), queue }, 'AMQP ack not sent');
          }
        };
        const failed = (err: unknown) => {
          this.#logger.error(
            {
              err,
              bindingKey: sub.bindingKey,
              routingKey: msg.fields.routingKey,
              ...(durable === undefined ? {} : { requeued: !msg.fields.redelivered }),
            },
            'bus subscriber failed',
          );
          settle(false);
        };
        let message: BusMessage;
        try {
          message = JSON.parse(msg.content.toString('utf8')) as BusMessage;
        } catch (err) {
          this.#logger.warn(
            { err: errorSummary(err), routingKey: msg.fields.routingKey },
            'AMQP message is not JSON; skipped',
          );
          settle(true);
          return;
        }
        this.#m.received.inc();
        try {
          const result = sub.handler(message, msg.fields.routingKey);
          if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
            (result as Promise<void>).then(() => settle(true), failed);
          } else {
            settle(true);
          }
        } catch (err) {
          failed(err);
        }
      },
      { noAck: durable === undefined, exclusive: durable === undefined },
    );
    sub.queue = queue;
    sub.consumerTag = consumerTag;
    if (sub.closed) {
      if (durable === undefined) await ch.deleteQueue(queue).catch(() => {});
      else await ch.cancel(consumerTag).catch(() => {});
      return;
    }
    sub.resolveReady();
  }

  async #unsubscribe(sub: AmqpSubscription): Promise<void> {
    this.#subs.delete(sub);
    const ch = this.#subCh;
    const queue = sub.queue;
    const consumerTag = sub.consumerTag;
    sub.queue = undefined;
    sub.consumerTag = undefined;
    if (ch === undefined || queue === undefined) return;
    // A durable queue outlives its subscription (RabbitMQ expires it when unused).
    if (sub.durable === undefined) await ch.deleteQueue(queue).catch(() => {});
    else if (consumerTag !== undefined) await ch.cancel(consumerTag).catch(() => {});
  }

  #drop(reason: string, routingKey: string, err?: unknown): void {
    this.#dropped++;
    // Every drop is counted; the log gets the first of an episode and a summary at its end.
    this.#drops.drop(reason, routingKey, {
      bufferSize: this.#bufferSize,
      amiBufferSize: this.#amiBufferSize,
      connected: this.isConnected(),
      ...(err === undefined ? {} : { err: errorSummary(err) }),
    });
  }
}

/**
 * Reconnect delay for attempt `attempt` (0-based): `initialMs * 2^attempt`, capped at
 * `maxMs`, with ±20% jitter (util/backoff.ts). Exported for tests.
 */
export function backoffMs(attempt: number, initialMs: number, maxMs: number): number {
  return backoff(attempt, { initialMs, maxMs, jitter: 0.2 });
}

function withHeartbeat(url: string, heartbeatS: number): string {
  try {
    const parsed = new URL(url);
    if (!parsed.searchParams.has('heartbeat')) {
      parsed.searchParams.set('heartbeat', String(heartbeatS));
    }
    return parsed.toString();
  } catch {
    return url;
  }
}

// Error text without the URL (which may hold credentials) or stack noise.
function errorSummary(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`.replace(/\/\/[^@/]*@/g, '//***@');
  return String(err);
}
