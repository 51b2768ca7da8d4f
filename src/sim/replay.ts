/**
 * Replay of a recorded AMI session by the simulator: paced, optionally looping, identifiers
 * made unique per loop with {@link remapIdentifiers} (`-r1`, `-r2`, ...; the first pass is
 * unchanged).
 *
 * @module
 */
import type { AmiEvent } from '../ami/message.ts';
import { readRecordingBatches } from '../ami/recording.ts';
import { remapIdentifiers } from '../ami/remap.ts';

/** How fast a recording is replayed. */
export interface SimPace {
  /**
   * Events per second, evenly spaced; 0 = as fast as the clients read. Default: the
   * recording's own timing when its events carry `Timestamp` (AMI `timestampevents`), else
   * a demo pace spreading one pass over {@link demoLoopMs}.
   */
  eventsPerSecond?: number;
  /** Use the events' `Timestamp`s (seconds) when present. Default true. */
  useTimestamps?: boolean;
  /** Speed factor applied to `Timestamp` gaps (2 = twice as fast). Default 1. */
  speed?: number;
  /** Longest pause between two events with timestamps, in ms. Default 5000. */
  maxGapMs?: number;
  /** Demo pace: one pass of a recording without timestamps lasts this long, in ms (at least 10 events/s). Default 5000. */
  demoLoopMs?: number;
}

/** Options of a replay. */
export interface SimReplayOptions {
  /** A recording file (JSON array or JSON Lines, see src/ami/recording.ts) or the events themselves. */
  recording: string | readonly AmiEvent[];
  /** Replay forever. Default false (one pass). */
  loop?: boolean;
  /** Stop after this many passes even when looping (tests). Default unlimited. */
  maxLoops?: number;
  /** Pause between two passes, in ms. Default 1000. */
  loopGapMs?: number;
  /** Pace. */
  pace?: SimPace;
  /** Start when the first client logs in (true, default) or at once (false). */
  startOnLogin?: boolean;
}

/**
 * Loads a recording for replay: `FullyBooted` events are dropped (the simulator sends its
 * own after each login, a real Asterisk sends none mid-session) and an empty `content` key
 * of the conformance format is removed.
 *
 * @throws {RecordingError} unreadable or malformed recording.
 */
export async function loadReplayEvents(
  recording: string | readonly AmiEvent[],
): Promise<AmiEvent[]> {
  const source: AmiEvent[] = [];
  if (typeof recording === 'string') {
    for await (const batch of readRecordingBatches(recording)) source.push(...batch);
  } else {
    source.push(...recording);
  }
  const out: AmiEvent[] = [];
  for (const event of source) {
    if (event.Event === 'FullyBooted') continue;
    if (event.content === '' || event.content === undefined) {
      const { content: _content, ...rest } = event;
      out.push(rest as AmiEvent);
    } else out.push(event);
  }
  return out;
}

/**
 * Offsets (ms from the start of a pass) at which each event is sent, from `pace`.
 * Exported for tests.
 */
export function replayOffsets(events: readonly AmiEvent[], pace: SimPace = {}): number[] {
  const stamps = events.map((event) => Number(event.Timestamp));
  const timed =
    (pace.useTimestamps ?? true) &&
    pace.eventsPerSecond === undefined &&
    events.length > 0 &&
    stamps.every((stamp) => Number.isFinite(stamp) && stamp > 0);
  if (timed) {
    const speed = pace.speed && pace.speed > 0 ? pace.speed : 1;
    const maxGapMs = pace.maxGapMs ?? 5000;
    const offsets: number[] = [];
    let at = 0;
    for (let i = 0; i < stamps.length; i++) {
      if (i > 0) {
        const gapMs = (((stamps[i] as number) - (stamps[i - 1] as number)) * 1000) / speed;
        at += Math.min(Math.max(gapMs, 0), maxGapMs);
      }
      offsets.push(at);
    }
    return offsets;
  }
  const rate =
    pace.eventsPerSecond ?? Math.max(10, (events.length * 1000) / (pace.demoLoopMs ?? 5000));
  if (rate <= 0) return events.map(() => 0);
  return events.map((_event, i) => (i * 1000) / rate);
}

/** The suffix of pass `n` (0-based): none for the first, `-r<n>` after. */
export function loopSuffix(n: number): string {
  return n === 0 ? '' : `-r${n}`;
}

/** Applies {@link loopSuffix} to one event of pass `n`. */
export function eventForLoop(event: AmiEvent, n: number): AmiEvent {
  return remapIdentifiers(event, loopSuffix(n));
}
