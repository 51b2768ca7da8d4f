/**
 * The AMI wire stream of the benchmarks: the recordings, identifiers remapped per pass,
 * serialized as Asterisk frames them (`Key: Value\r\n`, blank line), in ~64 KiB buffers.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AmiEvent } from '../src/ami/message.ts';
import { serializeMessage } from '../src/ami/protocol.ts';
import { ENGINE_EVENTS } from '../src/calls/engine.ts';
import { streamEvents } from './corpus.ts';

/** The kinds of benchmark stream. */
export type StreamKind = 'corpus' | 'asterisk';

const ASTERISK22 = join(import.meta.dirname, '..', 'test', 'fixtures', 'asterisk22', 'recordings');

/**
 * The events of the real Asterisk 22 recordings that the engine does not use (`VarSet`,
 * `Newexten`, `DeviceStateChange`, `HangupRequest`, ...), in recording order.
 */
export function ignoredAsteriskEvents(): AmiEvent[] {
  const out: AmiEvent[] = [];
  for (const file of readdirSync(ASTERISK22).sort()) {
    if (!file.endsWith('.json')) continue;
    const events = JSON.parse(readFileSync(join(ASTERISK22, file), 'utf8')) as AmiEvent[];
    for (const event of events) if (!ENGINE_EVENTS.has(event.Event)) out.push(event);
  }
  return out;
}

/**
 * `corpus`: the conformance recordings ({@link streamEvents}); `asterisk`: the same, with two
 * events the engine ignores (taken in turn from the real Asterisk 22 recordings) after each
 * one, so that two thirds of the events are noise, as a real Asterisk 22 sends.
 */
export function* benchEvents(kind: StreamKind, repeat: number): Generator<AmiEvent> {
  if (kind === 'corpus') {
    yield* streamEvents(repeat);
    return;
  }
  const noise = ignoredAsteriskEvents();
  let next = 0;
  for (const event of streamEvents(repeat)) {
    yield event;
    for (let i = 0; i < 2; i++) {
      yield noise[next] as AmiEvent;
      next = (next + 1) % noise.length;
    }
  }
}

/** Pre-serialized AMI frames of `repeat` passes over the recordings. */
export function amiStream(
  repeat: number,
  kind: StreamKind = 'corpus',
): { chunks: Buffer[]; events: number; bytes: number } {
  const chunks: Buffer[] = [];
  let pending: string[] = [];
  let size = 0;
  let events = 0;
  let bytes = 0;
  for (const event of benchEvents(kind, repeat)) {
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
