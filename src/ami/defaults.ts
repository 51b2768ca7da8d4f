/**
 * The AMI client's defaults, defined once: {@link AmiClient} falls back to them and the
 * configuration (`ami.servers[]`, ./config.ts) takes its defaults from them, so the
 * library and `serve` behave the same when nothing is set.
 */
export const AMI_CLIENT_DEFAULTS = {
  /** TCP port of the manager interface (`manager.conf` `port`). */
  port: 5038,
  /** Login method. */
  auth: 'plain',
  /** `Events` parameter of `Login`. */
  events: 'on',
  /** Timeout of an action's answer (and its whole event list), ms. */
  actionTimeoutMs: 10_000,
  /** TCP (and TLS) connect timeout, ms. */
  connectTimeoutMs: 5_000,
  /** Keep-alive `Ping` interval, ms; 0 = never. */
  pingIntervalMs: 20_000,
  /** A `Ping` unanswered this long declares the connection dead, ms. */
  pongTimeoutMs: 5_000,
  /** First reconnect delay's upper bound, ms (doubles on each failure, full jitter). */
  reconnectInitialDelayMs: 500,
  /** Longest reconnect delay, ms. */
  reconnectMaxDelayMs: 30_000,
  /** Growth factor of the reconnect delay per failed attempt. */
  reconnectFactor: 2,
} as const;
