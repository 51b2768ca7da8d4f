/**
 * Engine benchmark: events/s of CallEngine.handle over the recordings replayed many times
 * (identifiers remapped so the calls stay distinct), events already parsed in memory.
 */
import { CallEngine } from '../src/calls/engine.ts';
import { repeatedEvents } from './corpus.ts';
import type { BenchResult } from './table.ts';

export async function benchEngine(): Promise<BenchResult[]> {
  const events = repeatedEvents(400);
  let callEvents = 0;
  let best = 0;
  // Warm up once, then keep the best of five timed passes.
  for (let pass = 0; pass < 6; pass++) {
    const engine = new CallEngine({
      onCallEvent: () => {
        callEvents++;
      },
    });
    const start = process.hrtime.bigint();
    for (const event of events) engine.handle(event);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (pass > 0) best = Math.max(best, events.length / seconds);
    if (engine.channels.size !== 0) throw new Error('engine kept channels after the replay');
  }
  return [
    {
      name: 'engine (CallEngine.handle, in memory)',
      value: best,
      unit: 'events/s',
      target: 1_500_000,
      note: `${events.length.toLocaleString('en')} events, ${(callEvents / 6).toLocaleString('en')} call events per pass, best of 5`,
    },
  ];
}
