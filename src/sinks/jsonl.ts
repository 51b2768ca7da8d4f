/**
 * Call events as JSON Lines: one `JSON.stringify(event)` plus `\n` per event, in call
 * order, on any writable stream (stdout, a file). The line format is that of the
 * conformance schema (`test/fixtures/conformance/SCHEMA.md`), so the output can be compared
 * with the goldens.
 *
 * Writing never blocks the caller. When the stream does not keep up and more than
 * `maxBufferedBytes` are waiting in it, further events are dropped and counted
 * ({@link JsonlSink.dropped}, logged) until it drains.
 */
import type { Writable } from 'node:stream';
import { type Logger, silentLogger } from '../bus/bus.ts';

/** Options of {@link JsonlSink}. */
export interface JsonlSinkOptions {
  /** Bytes buffered in the stream before events are dropped. Default 16 MiB. */
  maxBufferedBytes?: number;
  /** pino-compatible logger. Default: silent. */
  logger?: Logger;
}

/** Writes call events (or any JSON values) as JSON lines to a stream. */
export class JsonlSink {
  readonly #stream: Writable;
  readonly #maxBufferedBytes: number;
  readonly #logger: Logger;
  #dropped = 0;
  #written = 0;

  /** @param stream destination; not ended by {@link JsonlSink.close} unless asked. */
  constructor(stream: Writable, options: JsonlSinkOptions = {}) {
    this.#stream = stream;
    this.#maxBufferedBytes = options.maxBufferedBytes ?? 16 * 1024 * 1024;
    this.#logger = options.logger ?? silentLogger;
  }

  /** Events written so far. */
  get written(): number {
    return this.#written;
  }

  /** Events dropped because the stream was too far behind (or closed, or not JSON). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Writes one line. Returns false when the event was dropped. Never throws. */
  write(event: unknown): boolean {
    const stream = this.#stream;
    if (stream.destroyed || stream.writableEnded) return this.#drop('stream closed');
    if (stream.writableLength > this.#maxBufferedBytes) return this.#drop('stream behind');
    let line: string;
    try {
      line = `${JSON.stringify(event)}\n`;
    } catch {
      return this.#drop('not serialisable');
    }
    stream.write(line);
    this.#written++;
    return true;
  }

  /** Waits until the stream has flushed what was written; ends it when `end` is true. */
  async close(options: { end?: boolean } = {}): Promise<void> {
    const stream = this.#stream;
    if (stream.destroyed || stream.writableEnded) return;
    if (options.end) {
      await new Promise<void>((resolve) => stream.end(resolve));
      return;
    }
    if (stream.writableLength > 0) {
      await new Promise<void>((resolve) => {
        stream.once('drain', resolve);
        stream.once('close', resolve);
      });
    }
  }

  #drop(reason: string): false {
    this.#dropped++;
    if (this.#dropped === 1 || this.#dropped % 1000 === 0) {
      this.#logger.warn(
        { reason, droppedTotal: this.#dropped },
        'JSON lines sink dropped an event',
      );
    }
    return false;
  }
}
