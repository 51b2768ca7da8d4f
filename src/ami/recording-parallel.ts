/**
 * The parallel recording reader: a worker thread reads and scans the file
 * (recording-worker.ts, recording-scan.ts) while the calling thread only builds the events
 * from offsets, so on a machine with two cores parsing and the call engine run side by side.
 *
 * It reads only the keys asked for (a projection): the events it yields carry `Event` and
 * those keys, which is all the call engine needs (elements with escaped characters are
 * parsed whole and carry every key). Events whose type is listed in
 * `fullEvents` (e.g. `UserEvent`, echoed whole in `user_event`) are parsed completely.
 * Same input formats and errors as {@link readRecordingBatches}.
 */
import { Worker } from 'node:worker_threads';
import type { AmiEvent } from './message.ts';
import { RecordingError } from './recording.ts';
import { COMPLEX } from './recording-scan.ts';

/** Options of {@link readRecordingParallel}. */
export interface ReadRecordingParallelOptions {
  /** Event types read with every key (default `['UserEvent']`). */
  fullEvents?: readonly string[];
  /** Read size, in bytes. Default 1 MiB. */
  chunkBytes?: number;
  /** Batches the worker may have in flight. Default 4. */
  window?: number;
}

type WorkerMessage =
  | { type: 'batch'; text: string; offsets: Int32Array }
  | { type: 'problem'; line: number; message: string }
  | { type: 'error'; code?: string; message: string }
  | { type: 'end' };

const WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './recording-worker.ts' : './recording-worker.js',
  import.meta.url,
);

/** Line offset of a JSON.parse error inside `text` (V8 says "line N column M" or "position N"). */
function errorLineOffset(text: string, error: unknown): number {
  const message = String((error as Error).message);
  const line = /\(line (\d+) column/.exec(message);
  if (line !== null) return Number(line[1]) - 1;
  const position = /position (\d+)/.exec(message);
  if (position === null) return 0;
  let count = 0;
  const end = Number(position[1]);
  for (let i = text.indexOf('\n'); i !== -1 && i < end; i = text.indexOf('\n', i + 1)) count++;
  return count;
}

/**
 * Reads the recording at `path` in a worker thread and yields batches of events that carry
 * `Event` plus the requested `keys` (full events for `fullEvents` types).
 *
 * @throws {RecordingError} unreadable file, malformed JSON (with the line), an element that
 *   is not an event object, truncated input.
 */
export async function* readRecordingParallel(
  path: string,
  keys: readonly string[],
  options: ReadRecordingParallelOptions = {},
): AsyncGenerator<AmiEvent[], void, undefined> {
  const wanted = ['Event', ...keys.filter((key) => key !== 'Event')];
  const full = new Set(options.fullEvents ?? ['UserEvent']);
  const worker = new Worker(WORKER_URL, {
    workerData: {
      path,
      keys: wanted,
      chunkBytes: options.chunkBytes ?? 1 << 20,
      window: options.window ?? 4,
    },
  });
  const queue: WorkerMessage[] = [];
  let notify: (() => void) | undefined;
  let failure: Error | undefined;
  worker.on('message', (message: WorkerMessage) => {
    queue.push(message);
    notify?.();
  });
  worker.on('error', (error) => {
    failure = error;
    notify?.();
  });
  try {
    for (;;) {
      if (queue.length === 0) {
        if (failure !== undefined) throw failure;
        await new Promise<void>((resolve) => {
          notify = resolve;
        });
        notify = undefined;
        continue;
      }
      const message = queue.shift() as WorkerMessage;
      if (message.type === 'end') return;
      if (message.type === 'error') {
        throw new RecordingError(
          path,
          undefined,
          `cannot read recording${message.code === undefined ? '' : ` (${message.code})`}: ${message.message}`,
        );
      }
      if (message.type === 'problem') throw new RecordingError(path, message.line, message.message);
      worker.postMessage('ack');
      yield buildEvents(path, message.text, message.offsets, wanted, full);
    }
  } finally {
    await worker.terminate();
  }
}

function buildEvents(
  file: string,
  text: string,
  offsets: Int32Array,
  keys: readonly string[],
  full: ReadonlySet<string>,
): AmiEvent[] {
  const events: AmiEvent[] = [];
  let o = 0;
  while (o < offsets.length) {
    const kind = offsets[o] as number;
    const line = offsets[o + 1] as number;
    const start = offsets[o + 2] as number;
    const end = offsets[o + 3] as number;
    const count = offsets[o + 4] as number;
    o += 5;
    let event: Record<string, string> | undefined;
    if (kind !== COMPLEX) {
      event = {};
      for (let f = 0; f < count; f++, o += 3) {
        event[keys[offsets[o] as number] as string] = text.slice(
          offsets[o + 1] as number,
          offsets[o + 2] as number,
        );
      }
      const type = event.Event;
      if (type !== undefined && full.has(type)) event = undefined;
    } else {
      o += 3 * count;
    }
    let parsed: unknown = event;
    if (event === undefined) {
      const element = text.slice(start, end);
      try {
        parsed = JSON.parse(element);
      } catch (error) {
        const message = String((error as Error).message).replace(/\s+/g, ' ');
        throw new RecordingError(
          file,
          line + errorLineOffset(element, error),
          `malformed JSON (${message.length > 200 ? `${message.slice(0, 200)}...` : message})`,
          { cause: error },
        );
      }
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new RecordingError(file, line, 'expected an AMI event object');
    }
    if (typeof (parsed as AmiEvent).Event !== 'string') {
      throw new RecordingError(file, line, 'event without an "Event" string');
    }
    events.push(parsed as AmiEvent);
  }
  return events;
}
