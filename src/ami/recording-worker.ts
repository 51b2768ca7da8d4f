/**
 * Worker thread of the parallel recording reader (recording-parallel.ts): reads the file,
 * decodes UTF-8 and scans it with {@link RecordingScan}, posting `{text, offsets}` batches.
 * At most `window` batches are in flight; the main thread acknowledges each one.
 */
import { createReadStream } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { parentPort, workerData } from 'node:worker_threads';
import { RecordingScan } from './recording-scan.ts';

interface WorkerInput {
  path: string;
  keys: string[];
  chunkBytes: number;
  window: number;
}

const port = parentPort;
if (port === null) throw new Error('recording-worker.ts must run in a worker thread');
const { path, keys, chunkBytes, window } = workerData as WorkerInput;

let inFlight = 0;
let wake: (() => void) | undefined;
port.on('message', (message: string) => {
  if (message === 'ack') {
    inFlight--;
    wake?.();
  }
});

function post(result: { text: string; offsets: Int32Array } | undefined): void {
  if (result === undefined) return;
  inFlight++;
  port?.postMessage({ type: 'batch', text: result.text, offsets: result.offsets }, [
    result.offsets.buffer as ArrayBuffer,
  ]);
}

async function run(): Promise<void> {
  const scan = new RecordingScan(keys);
  const decoder = new StringDecoder('utf8');
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: chunkBytes })) {
      post(scan.feed(decoder.write(chunk as Buffer)));
      if (scan.problem !== undefined) break;
      while (inFlight >= window) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    }
    if (scan.problem === undefined) {
      const rest = decoder.end();
      if (rest.length > 0) post(scan.feed(rest));
      post(scan.finish());
    }
    if (scan.problem !== undefined) port?.postMessage({ type: 'problem', ...scan.problem });
    port?.postMessage({ type: 'end' });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    port?.postMessage({ type: 'error', code, message: (error as Error).message });
  }
}

await run();
