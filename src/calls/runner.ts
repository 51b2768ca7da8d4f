/**
 * Runners: feed AMI events from a source to a {@link CallEngine} and its reporter
 * (cacofonisk's `FileRunner`; the live runner for AMI servers is in live.ts).
 */
import type { AmiEvent } from '../ami/message.ts';
import { CallEngine } from './engine.ts';
import {
  amiEventHandler,
  dispatchCallEvent,
  type EventContext,
  type Reporter,
  type ReporterErrorHandler,
} from './reporter.ts';

/** Options of {@link runRecording}. */
export interface RunRecordingOptions {
  /** Server name given to the reporter (default `recording`). */
  server?: string;
  /** Called when a reporter method throws or rejects (default: rethrow at the end). */
  onReporterError?: ReporterErrorHandler;
  /** Awaited after each item (event or batch) of the source: lets an output apply backpressure. */
  afterBatch?: () => Promise<void> | void;
}

/** Counts of a finished run. */
export interface RunSummary {
  /** AMI events read. */
  amiEvents: number;
  /** Call events reported. */
  callEvents: number;
}

/**
 * Replays recorded AMI events through a fresh engine into `reporter`, then calls its
 * `close()`. `events` yields events one by one or in batches (arrays), e.g. from
 * `readRecordingBatches()`; batches avoid a promise per event on large files.
 *
 * @throws whatever the source throws (e.g. a `RecordingError` for malformed JSON), after
 * the events before it were reported; the first reporter error if no `onReporterError`.
 */
export async function runRecording(
  events: AsyncIterable<AmiEvent | readonly AmiEvent[]> | Iterable<AmiEvent | readonly AmiEvent[]>,
  reporter: Reporter,
  options: RunRecordingOptions = {},
): Promise<RunSummary> {
  const context: EventContext = { server: options.server ?? 'recording' };
  let firstError: unknown;
  const onError: ReporterErrorHandler =
    options.onReporterError ??
    ((error) => {
      firstError ??= error;
    });
  const summary: RunSummary = { amiEvents: 0, callEvents: 0 };
  const engine = new CallEngine({
    onCallEvent: (event) => {
      summary.callEvents++;
      dispatchCallEvent(reporter, event, context, onError);
    },
  });
  const onAmiEvent = amiEventHandler(reporter, context, onError);
  const feed = (event: AmiEvent): void => {
    summary.amiEvents++;
    onAmiEvent?.(event);
    engine.handle(event);
  };
  try {
    for await (const item of events) {
      if (Array.isArray(item)) {
        for (const event of item as readonly AmiEvent[]) feed(event);
      } else {
        feed(item as AmiEvent);
      }
      if (options.afterBatch !== undefined) await options.afterBatch();
    }
  } finally {
    await reporter.close?.();
  }
  if (firstError !== undefined) throw firstError;
  return summary;
}
