/**
 * Writing recorded AMI sessions as JSON Lines (`switchboard record`); the format and the
 * reader are in recording.ts, which re-exports this module.
 *
 * @module
 */
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import type { AmiMessage } from './message.ts';

/** Writes events as JSON Lines; see {@link createRecordingWriter}. */
export interface RecordingWriter {
  /** Appends one event as one line (buffered). */
  write(event: AmiMessage): void;
  /** Writes the buffered lines; resolves once handed to the OS. @throws the stream's error. */
  flush(): Promise<void>;
  /** Flushes and, for a path, closes the file. @throws the stream's error. */
  close(): Promise<void>;
  /** Events written so far. */
  readonly count: number;
}

/** Options of {@link createRecordingWriter}. */
export interface RecordingWriterOptions {
  /** Buffered characters before a write to the stream. Default 64 KiB. */
  bufferBytes?: number;
}

/**
 * A JSON Lines writer for `switchboard record`: one `JSON.stringify(event)` per line, buffered
 * and written in blocks. A path is created (truncated) and closed by `close()`; a given
 * Writable (e.g. stdout) is flushed but left open.
 */
export function createRecordingWriter(
  target: string | Writable,
  options: RecordingWriterOptions = {},
): RecordingWriter {
  const owned = typeof target === 'string';
  const stream: Writable = owned ? createWriteStream(target) : target;
  const limit = options.bufferBytes ?? 64 * 1024;
  let buffer = '';
  let count = 0;
  let failure: Error | undefined;
  stream.on('error', (error) => {
    failure = error;
  });
  const writeOut = (): Promise<void> =>
    new Promise((resolve, reject) => {
      if (failure !== undefined) {
        reject(failure);
        return;
      }
      const text = buffer;
      buffer = '';
      stream.write(text, (error) => (error ? reject(error) : resolve()));
    });
  return {
    get count() {
      return count;
    },
    write(event) {
      buffer += `${JSON.stringify(event)}\n`;
      count++;
      if (buffer.length >= limit) {
        const text = buffer;
        buffer = '';
        if (failure === undefined) stream.write(text);
      }
    },
    flush: writeOut,
    async close() {
      await writeOut();
      if (owned) {
        await new Promise<void>((resolve, reject) => {
          stream.end((error?: Error | null) => (error ? reject(error) : resolve()));
        });
      }
    },
  };
}
