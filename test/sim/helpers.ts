/** Helpers of the simulator tests: a logged-in AmiClient collecting events. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AmiClient } from '../../src/ami/client.ts';
import type { AmiEvent } from '../../src/ami/message.ts';
import type { Simulator } from '../../src/sim/simulator.ts';

export const RECORDINGS = join(import.meta.dirname, '..', 'fixtures', 'asterisk22', 'recordings');

/** The events of a real Asterisk 22 wire log (`<name>.json`). */
export function wireEvents(name: string): AmiEvent[] {
  return JSON.parse(readFileSync(join(RECORDINGS, `${name}.json`), 'utf8')) as AmiEvent[];
}

/** A client connected to `sim` and every event it received. */
export interface Connected {
  client: AmiClient;
  events: AmiEvent[];
  /** Resolves with the first received event (past or future) matching `predicate`. */
  waitFor(predicate: (event: AmiEvent) => boolean, timeoutMs?: number): Promise<AmiEvent>;
}

export async function connect(sim: Simulator): Promise<Connected> {
  const client = new AmiClient({ ...sim.clientOptions(), pingIntervalMs: 0 });
  const events: AmiEvent[] = [];
  const waiters = new Set<() => void>();
  client.on('event', (event) => {
    events.push(event);
    for (const waiter of waiters) waiter();
  });
  await client.connect();
  return {
    client,
    events,
    waitFor(predicate, timeoutMs = 3000) {
      const found = events.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`event not received within ${timeoutMs} ms`));
        }, timeoutMs);
        const check = (): void => {
          const event = events.find(predicate);
          if (!event) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(event);
        };
        waiters.add(check);
      });
    },
  };
}

/** The side of a Local channel (`;1`, `;2`) or `-` for other channels. */
function side(event: AmiEvent): string {
  const name = String(event.Channel ?? event.DestChannel ?? '');
  const match = /;([12])$/.exec(name);
  return match ? `;${match[1]}` : '-';
}

/** `Event` + Local side + sorted keys (without `content`, `ActionID`): the shape of each event. */
export function shapes(events: readonly AmiEvent[]): string[] {
  return events.map((event) => {
    const keys = Object.keys(event)
      .filter((key) => key !== 'content' && key !== 'ActionID')
      .sort();
    return `${event.Event}${side(event)} ${keys.join(',')}`;
  });
}

/** The events of one call: from its first `Newchannel` on, without login noise. */
export function callEvents(events: readonly AmiEvent[]): AmiEvent[] {
  const start = events.findIndex((event) => event.Event === 'Newchannel');
  return events
    .slice(start)
    .filter((event) => !['FullyBooted', 'SuccessfulAuth'].includes(event.Event));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
