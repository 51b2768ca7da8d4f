/**
 * Exponential backoff, one definition for every retry loop (AMI reconnect, AMQP reconnect,
 * webhook retries): the ceiling of attempt `n` (0-based) is
 * `min(maxMs, initialMs * factor^n)`, then jitter spreads the delays of many clients so that
 * they do not retry in step.
 */

/** Parameters of {@link backoffMs}. */
export interface BackoffOptions {
  /** Ceiling of the first delay (attempt 0), ms. */
  initialMs: number;
  /** Largest delay, ms. */
  maxMs: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /**
   * `full`: uniform in [0, ceiling) ("full jitter", AWS Architecture Blog, 2015);
   * a number `f` in [0, 1]: uniform in ceiling × [1 − f, 1 + f), capped at `maxMs`;
   * `0`: exactly the ceiling. Default `full`.
   */
  jitter?: 'full' | number;
  /** Random source in [0, 1) (tests). Default `Math.random`. */
  random?: () => number;
}

/**
 * The delay before retry attempt `attempt` (0-based), in whole ms.
 * @throws RangeError when `attempt` is negative or not an integer.
 */
export function backoffMs(attempt: number, options: BackoffOptions): number {
  if (!Number.isInteger(attempt) || attempt < 0) {
    throw new RangeError(`attempt must be a non-negative integer, got ${attempt}`);
  }
  const { initialMs, maxMs, factor = 2, jitter = 'full', random = Math.random } = options;
  const ceiling = Math.min(maxMs, initialMs * factor ** Math.min(attempt, 64));
  if (jitter === 'full') return Math.floor(random() * ceiling);
  if (jitter === 0) return Math.floor(ceiling);
  const spread = 1 - jitter + 2 * jitter * random();
  return Math.floor(Math.min(maxMs, ceiling * spread));
}
