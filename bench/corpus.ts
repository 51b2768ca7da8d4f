/**
 * Benchmark input built from the conformance recordings: the 30 shared fixtures,
 * concatenated and repeated with identifiers remapped (`-r<n>` suffixes, the corpus'
 * `--repeat` rule) so every repetition is a distinct set of calls.
 */
import type { AmiEvent } from '../src/ami/message.ts';
import { remapIdentifiers } from '../src/ami/remap.ts';
import { conformanceEvents } from '../test/support/conformance.ts';

/** One pass over every shared recording, without the `FullyBooted` resets. */
export function baseEvents(): AmiEvent[] {
  return conformanceEvents();
}

/** `repeat` remapped copies of {@link baseEvents}, as one array. */
export function repeatedEvents(repeat: number): AmiEvent[] {
  const base = baseEvents();
  const out: AmiEvent[] = [];
  for (let r = 0; r < repeat; r++) {
    const suffix = r === 0 ? '' : `-r${r}`;
    for (const event of base) out.push(remapIdentifiers(event, suffix));
  }
  return out;
}

/** Yields remapped copies of the base events lazily, `repeat` times (for big files/streams). */
export function* streamEvents(repeat: number): Generator<AmiEvent> {
  const base = baseEvents();
  for (let r = 0; r < repeat; r++) {
    const suffix = r === 0 ? '' : `-r${r}`;
    for (const event of base) yield remapIdentifiers(event, suffix);
  }
}
