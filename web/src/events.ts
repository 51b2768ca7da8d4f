// The live updates: Switchboard's SSE stream `/api/events` read with fetch (so that the
// login's Authorization header can be sent, which EventSource cannot), reconnecting with
// `Last-Event-ID` so that nothing is missed that the server still holds. An `event: reset`
// (the server no longer holds what we missed) and every reconnect tell the views to reload.
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { headers } from './api.ts';

export interface BusEvent {
  routing_key: string;
  name: string;
  data: unknown;
}

type Listener = (event: BusEvent) => void;

const listeners = new Set<Listener>();
const resetListeners = new Set<() => void>();
const statusListeners = new Set<(connected: boolean) => void>();

/** Routing-key prefixes the page needs (everything but the raw AMI events). */
const BINDINGS = ['call.#', 'callout.#', 'announce.#', 'push.#', 'switchboard.#'];

export function onBusEvent(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
export function onReset(listener: () => void): () => void {
  resetListeners.add(listener);
  return () => resetListeners.delete(listener);
}
export function onStreamStatus(listener: (connected: boolean) => void): () => void {
  statusListeners.add(listener);
  return () => statusListeners.delete(listener);
}

let lastEventId = '';
let running: AbortController | undefined;

async function runOnce(signal: AbortSignal): Promise<void> {
  const query = BINDINGS.map((b) => `bind=${encodeURIComponent(b)}`).join('&');
  const response = await fetch(`/api/events?${query}`, {
    headers: headers(
      lastEventId === ''
        ? { accept: 'text/event-stream' }
        : { accept: 'text/event-stream', 'last-event-id': lastEventId },
    ),
    signal,
    cache: 'no-store',
  });
  if (!response.ok || response.body === null) throw new Error(`events: ${response.status}`);
  for (const listener of statusListeners) listener(true);
  const resumed = lastEventId !== '';
  const parser = createParser({
    onEvent(message: EventSourceMessage) {
      if (message.id !== undefined) lastEventId = message.id;
      if (message.event === 'reset') {
        for (const listener of resetListeners) listener();
        return;
      }
      let event: BusEvent;
      try {
        event = JSON.parse(message.data) as BusEvent;
      } catch {
        return;
      }
      for (const listener of listeners) listener(event);
    },
    onComment(comment) {
      // Subscriptions bound without a Last-Event-ID: reload, so that nothing between the
      // views' load and now is lost. With one, the server replayed what we missed.
      if (comment.trim() === 'ready' && !resumed) for (const listener of resetListeners) listener();
    },
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    parser.feed(value);
  }
}

/** Starts the stream (idempotent); reconnects after 1-10 s while the page is open. */
export function startEvents(): void {
  if (running !== undefined) return;
  const abort = new AbortController();
  running = abort;
  void (async () => {
    let delayMs = 1000;
    while (!abort.signal.aborted) {
      try {
        await runOnce(abort.signal);
        delayMs = 1000;
      } catch {
        delayMs = Math.min(delayMs * 2, 10_000);
      }
      for (const listener of statusListeners) listener(false);
      if (abort.signal.aborted) return;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  })();
}

export function stopEvents(): void {
  running?.abort();
  running = undefined;
}
