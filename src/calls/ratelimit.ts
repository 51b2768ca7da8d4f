/**
 * Rate-limited notices: a condition a hostile or broken PBX can trigger thousands of times a
 * second (a message skipped, a channel forgotten) is logged once at once, then at most once
 * per interval with the count of what happened meanwhile, so the log stays readable and
 * small whatever the PBX sends.
 */

/** A rate-limited notice; call {@link RateLimitedNotice.hit} for every occurrence. */
export interface RateLimitedNotice {
  /** One occurrence: reported at once when quiet, otherwise counted for the next report. */
  hit(): void;
  /** Reports what is still counted and stops the timer. */
  flush(): void;
}

/**
 * Creates a notice that calls `report(count)` for the first occurrence at once, then at most
 * once every `intervalMs` with the number of occurrences since the previous report. Its timer
 * is unref'd (it never keeps the process alive).
 */
export function rateLimitedNotice(
  intervalMs: number,
  report: (count: number) => void,
): RateLimitedNotice {
  let pending = 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    timer = setTimeout(tick, intervalMs);
    timer.unref?.();
  };
  const tick = (): void => {
    timer = undefined;
    if (pending === 0) return;
    const count = pending;
    pending = 0;
    report(count);
    arm();
  };
  return {
    hit() {
      if (timer === undefined) {
        report(1);
        arm();
      } else {
        pending++;
      }
    },
    flush() {
      clearTimeout(timer);
      timer = undefined;
      if (pending > 0) {
        const count = pending;
        pending = 0;
        report(count);
      }
    },
  };
}
