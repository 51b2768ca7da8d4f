/**
 * Time limits on work that takes no `AbortSignal` (a driver's `connect()`, a `close()`).
 * Work that does take one (fetch, http2, child processes) uses the platform's
 * `AbortSignal.timeout(ms)` directly, with `AbortSignal.any` to combine it with a caller's.
 */

/** The error {@link withTimeout} rejects with; its message names what did not finish. */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
  /** The limit that was reached, in ms. */
  readonly timeoutMs: number;
  constructor(what: string, timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms (${what})`);
    this.timeoutMs = timeoutMs;
  }
}

/**
 * Settles as `promise` does, or rejects with a {@link TimeoutError} after `timeoutMs`
 * (`promise` itself goes on: abort it separately when it can be). The timer never outlives
 * the call.
 * @param what what is waited for, in the error message (e.g. `login`).
 * @throws TimeoutError after `timeoutMs`; whatever `promise` rejects with before.
 */
export async function withTimeout<T>(
  promise: Promise<T>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TimeoutError(what, timeoutMs)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
