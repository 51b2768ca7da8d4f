// Small hooks: data loaded from an API and reloaded when the bus says it changed, with the
// reloads coalesced (at most one in flight, at most one per `minIntervalMs`), and a clock.
import { useEffect, useRef, useState } from 'preact/hooks';
import { AuthRequired } from './api.ts';
import { type BusEvent, onBusEvent, onReset } from './events.ts';

export interface Live<T> {
  data: T | undefined;
  error: string | undefined;
  reload: () => void;
}

export function useLive<T>(
  load: () => Promise<T>,
  matches: (event: BusEvent) => boolean,
  deps: readonly unknown[] = [],
  minIntervalMs = 300,
  pollMs = 0,
): Live<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const state = useRef({ inFlight: false, again: false, lastMs: 0, timer: 0, alive: true });
  const reloadRef = useRef<() => void>(() => {});
  useEffect(() => {
    const s = state.current;
    s.alive = true;
    const run = async () => {
      if (s.inFlight) {
        s.again = true;
        return;
      }
      s.inFlight = true;
      s.lastMs = Date.now();
      try {
        const value = await load();
        if (s.alive) {
          setData(value);
          setError(undefined);
        }
      } catch (e) {
        if (s.alive && !(e instanceof AuthRequired)) setError((e as Error).message);
      } finally {
        s.inFlight = false;
        if (s.again && s.alive) {
          s.again = false;
          schedule();
        }
      }
    };
    const schedule = () => {
      if (s.timer !== 0) return;
      const wait = Math.max(0, s.lastMs + minIntervalMs - Date.now());
      s.timer = window.setTimeout(() => {
        s.timer = 0;
        void run();
      }, wait);
    };
    reloadRef.current = schedule;
    void run();
    const offEvent = onBusEvent((event) => {
      if (matches(event)) schedule();
    });
    const offReset = onReset(schedule);
    const poll = pollMs > 0 ? window.setInterval(schedule, pollMs) : 0;
    return () => {
      s.alive = false;
      offEvent();
      offReset();
      if (poll !== 0) clearInterval(poll);
      if (s.timer !== 0) clearTimeout(s.timer);
      s.timer = 0;
    };
  }, deps);
  return { data, error, reload: () => reloadRef.current() };
}

/** The current time, updated every `everyMs` (for ticking durations). */
export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

/** A time in the browser's time zone: `HH:MM:SS`, with the date when not today. */
export function time(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  const date = new Date(ms);
  const today = new Date().toDateString() === date.toDateString();
  return today
    ? date.toLocaleTimeString(undefined, { hour12: false })
    : date.toLocaleString(undefined, { hour12: false });
}

/** A time in the server's zone (for a tooltip). */
export function serverTime(ms: number, timeZone: string | undefined): string {
  try {
    return new Date(ms).toLocaleString(undefined, { timeZone: timeZone ?? 'UTC', hour12: false });
  } catch {
    return new Date(ms).toISOString();
  }
}

/** A duration `M:SS` or `H:MM:SS`. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export function offsetText(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  const m = abs % 60;
  return `UTC${sign}${Math.floor(abs / 60)}${m === 0 ? '' : `:${String(m).padStart(2, '0')}`}`;
}

export { browserZone };
