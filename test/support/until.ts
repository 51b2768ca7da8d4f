/** Waiting for a condition in tests: the one polling helper (no fixed sleeps, no timed asserts). */

/** What `check` returns once the condition holds: a truthy value. */
type Done<T> = Exclude<Awaited<T>, undefined | null | false | 0 | ''>;

/**
 * Polls `check` until it returns a truthy value (or a promise of one), and returns that
 * value: `until(() => seen.includes('up'), 'the up event')`, or
 * `const row = await until(async () => (await find()) ?? undefined, 'the row')`.
 * Polls quickly at first (5 ms), then less often (up to every 25 ms).
 * @param what what is waited for, named in the error; a number is taken as `timeoutMs`
 *   (the older `until(check, timeoutMs)` form).
 * @param timeoutMs how long before giving up. Default 10,000 ms: a limit against hanging,
 *   never a measured duration.
 * @throws Error `timed out waiting for <what>` after `timeoutMs`; whatever `check` throws.
 */
export async function until<T>(
  check: () => T,
  what: string | number = 'a condition',
  timeoutMs?: number,
): Promise<Done<T>> {
  const label = typeof what === 'string' ? what : 'a condition';
  const limitMs = timeoutMs ?? (typeof what === 'number' ? what : 10_000);
  const deadline = Date.now() + limitMs;
  let intervalMs = 5;
  for (;;) {
    const value = await check();
    if (value) return value as Done<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${label} (${limitMs} ms)`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
    intervalMs = Math.min(25, Math.ceil(intervalMs * 1.5));
  }
}
