/**
 * The AMQP bus's defaults, defined once: {@link AmqpBus} falls back to them and the
 * configuration (`amqp`, ./config.ts) takes its defaults from them, so the library and
 * `serve` behave the same when nothing is set.
 */
export const AMQP_BUS_DEFAULTS = {
  /** Topic exchange name (seed, "Usage"). */
  exchange: 'xivo',
  /** Publish with delivery mode 2, so a durable queue keeps messages across a broker restart. */
  persistent: true,
  /** Messages other than raw AMI events kept (queued or unconfirmed) while the broker is away. */
  bufferSize: 10_000,
  /** Raw AMI events (`ami.*`) kept, a budget of their own. */
  amiBufferSize: 10_000,
  /** Messages sent and not yet confirmed at most. */
  confirmWindow: 1_000,
  /** AMQP heartbeat requested when the URL has none, s. */
  heartbeatS: 30,
  /** First reconnect delay, ms (doubles on each failure, ±20% jitter). */
  reconnectInitialDelayMs: 500,
  /** Longest reconnect delay, ms. */
  reconnectMaxDelayMs: 30_000,
  /** TCP connect + AMQP handshake timeout, ms. */
  connectTimeoutMs: 5_000,
} as const;
