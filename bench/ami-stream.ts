/**
 * The AMI wire stream of the benchmarks: the recordings, identifiers remapped per pass,
 * serialized as Asterisk frames them (`Key: Value\r\n`, blank line), in ~64 KiB buffers.
 */
import type { AmiEvent } from '../src/ami/message.ts';
import { serializeMessage } from '../src/ami/protocol.ts';
import { streamEvents } from './corpus.ts';

/** Pre-serialized AMI frames of `repeat` passes over the recordings. */
export function amiStream(repeat: number): { chunks: Buffer[]; events: number; bytes: number } {
  const chunks: Buffer[] = [];
  let pending: string[] = [];
  let size = 0;
  let events = 0;
  let bytes = 0;
  for (const event of streamEvents(repeat)) {
    const { content: _content, ...wire } = event as AmiEvent & { content?: string };
    const text = serializeMessage(wire);
    pending.push(text);
    size += text.length;
    events++;
    if (size >= 65536) {
      const chunk = Buffer.from(pending.join(''));
      bytes += chunk.length;
      chunks.push(chunk);
      pending = [];
      size = 0;
    }
  }
  if (pending.length > 0) {
    const chunk = Buffer.from(pending.join(''));
    bytes += chunk.length;
    chunks.push(chunk);
  }
  return { chunks, events, bytes };
}
