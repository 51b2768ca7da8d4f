/**
 * Bus messages as Server-Sent Events (https://html.spec.whatwg.org/multipage/server-sent-events.html),
 * for `GET /api/events?bind=<binding key>`: one SSE event per bus message,
 *
 * ```
 * id: 7
 * event: hangup
 * data: {"routing_key":"call.hangup","name":"hangup","origin_uuid":"…","data":{…}}
 *
 * ```
 *
 * i.e. `event:` is the envelope's `name` and `data:` is the envelope plus its routing key
 * (one line of JSON). Comment lines (`: keep-alive`) are sent every `keepAliveMs` so that
 * proxies keep the connection open. A client that does not read fast enough (more than
 * `maxBufferedBytes` waiting in the response and its socket) is disconnected: its socket is
 * destroyed, which frees what was buffered for it (ending the response would keep both
 * while the client keeps the connection open). It can reconnect; EventSource does so by
 * itself. When the client goes away the subscriptions are closed.
 *
 * Fastify: `reply.hijack(); streamBusAsSse(bus, reply.raw, { bindingKeys })`.
 *
 * With a {@link BusHistory} (as `serve` does), ids are the history's (`<epoch>-<n>`, the
 * same for every stream of the process) and a client that reconnects with `Last-Event-ID`
 * first gets every message it missed that the history still holds; when it holds too few
 * (or the id is from another process), an `event: reset` tells the client to reload its
 * state from the APIs, then the live messages follow.
 */

import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import {
  type Bus,
  type BusMessage,
  compileBindingKey,
  type Logger,
  type Subscription,
  silentLogger,
  validateBindingKey,
} from '../bus/bus.ts';

/** One message kept by {@link BusHistory}. */
export interface HistoryEntry {
  /** Sequence number, from 1 in this process. */
  n: number;
  routingKey: string;
  message: BusMessage;
  /** Its SSE `data:` line (JSON), computed once. */
  data: string;
}

/** Options of {@link BusHistory}. */
export interface BusHistoryOptions {
  /** Most messages kept. Default 10,000. */
  maxMessages?: number;
  /** Most bytes of `data` kept. Default 8 MiB. */
  maxBytes?: number;
}

/**
 * The recent bus messages (one `#` subscription), numbered, for `Last-Event-ID` replay of
 * the SSE streams. Bounded by count and bytes (oldest dropped first). Ids look like
 * `<epoch>-<n>`: the epoch is random per process, so an id from before a restart is
 * recognised as unknown (the client gets a reset) instead of replaying the wrong messages.
 */
export class BusHistory {
  /** This process's id prefix. */
  readonly epoch = randomBytes(4).toString('hex');
  readonly #entries: HistoryEntry[] = [];
  #head = 0;
  #bytes = 0;
  #n = 0;
  readonly #listeners = new Set<(entry: HistoryEntry) => void>();
  readonly #maxMessages: number;
  readonly #maxBytes: number;
  #subscription: Subscription | undefined;

  constructor(options: BusHistoryOptions = {}) {
    this.#maxMessages = options.maxMessages ?? 10_000;
    this.#maxBytes = options.maxBytes ?? 8 * 1024 * 1024;
  }

  /** Subscribes to every message of `bus` (`#`); resolves when bound. */
  start(bus: Bus): Promise<void> {
    this.#subscription ??= bus.subscribe('#', (message, routingKey) =>
      this.add(routingKey, message),
    );
    return this.#subscription.ready;
  }

  /** Resolves once the subscription is bound (never before {@link start}). */
  get ready(): Promise<void> {
    return this.#subscription?.ready ?? new Promise<void>(() => {});
  }

  /** Stops the subscription (kept messages stay readable). */
  async stop(): Promise<void> {
    await this.#subscription?.close();
  }

  /** Keeps one message and hands it to the listeners. */
  add(routingKey: string, message: BusMessage): void {
    const data = JSON.stringify({ routing_key: routingKey, ...message });
    const entry: HistoryEntry = { n: ++this.#n, routingKey, message, data };
    this.#entries.push(entry);
    this.#bytes += data.length;
    while (
      this.#entries.length - this.#head > this.#maxMessages ||
      (this.#bytes > this.#maxBytes && this.#entries.length - this.#head > 1)
    ) {
      this.#bytes -= (this.#entries[this.#head] as HistoryEntry).data.length;
      this.#head += 1;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries.splice(0, this.#head);
      this.#head = 0;
    }
    for (const listener of this.#listeners) listener(entry);
  }

  /** The SSE id of an entry. */
  id(entry: HistoryEntry): string {
    return `${this.epoch}-${entry.n}`;
  }

  /**
   * The messages after the one with SSE id `lastEventId`, oldest first; `undefined` when
   * some of them are no longer kept, or the id is not one of this process.
   */
  since(lastEventId: string): HistoryEntry[] | undefined {
    const match = /^([0-9a-f]{8})-(\d{1,15})$/.exec(lastEventId.trim());
    if (match === null || match[1] !== this.epoch) return undefined;
    const n = Number(match[2]);
    if (n > this.#n) return undefined;
    const oldest = this.#entries[this.#head]?.n ?? this.#n + 1;
    if (n + 1 < oldest) return undefined;
    return this.#entries.slice(this.#head + (n + 1 - oldest));
  }

  /** Calls `listener` for every new message; returns the function that stops it. */
  listen(listener: (entry: HistoryEntry) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Messages kept now. */
  get size(): number {
    return this.#entries.length - this.#head;
  }
}

/** Options of {@link streamBusAsSse}. */
export interface SseOptions {
  /** Binding keys to subscribe (validated first). Default `['#']`. */
  bindingKeys?: string[];
  /** Interval of keep-alive comments. Default 15000 ms. */
  keepAliveMs?: number;
  /** Bytes waiting in the response before the client is disconnected. Default 1 MiB. */
  maxBufferedBytes?: number;
  /** Called once when a slow client is disconnected (e.g. to count it). */
  onSlowClient?: () => void;
  /** `retry:` hint sent first, in ms. Default 3000. */
  retryMs?: number;
  /** pino-compatible logger. Default: silent. */
  logger?: Logger;
  /** Serve from this history (shared ids, replay) instead of subscribing to the bus. */
  history?: BusHistory;
  /** The client's `Last-Event-ID` header (with `history`): replay what came after it. */
  lastEventId?: string;
}

/** A running SSE stream. */
export interface SseStream {
  /** Resolves when every subscription is ready. */
  readonly ready: Promise<void>;
  /** Ends the response and closes the subscriptions (idempotent). */
  close(): Promise<void>;
}

/**
 * Formats one SSE event. `id` and `event` must not contain line breaks (they are replaced by
 * spaces); `data` is split on line breaks into several `data:` lines as the spec requires.
 */
export function formatSseEvent(fields: {
  id?: string | number;
  event?: string;
  data: string;
}): string {
  const clean = (s: string) => s.replace(/[\r\n]/g, ' ');
  let out = '';
  if (fields.id !== undefined) out += `id: ${clean(String(fields.id))}\n`;
  if (fields.event !== undefined) out += `event: ${clean(fields.event)}\n`;
  for (const line of fields.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return `${out}\n`;
}

/**
 * Subscribes to `bus` with each binding key and writes the messages to `res` as SSE.
 * Writes the status line and headers itself (200, `text/event-stream`) unless they were
 * sent already.
 * @throws TypeError when a binding key is malformed (nothing is written then, so the
 * caller can still answer 400).
 */
export function streamBusAsSse(bus: Bus, res: ServerResponse, options: SseOptions = {}): SseStream {
  const bindingKeys = options.bindingKeys ?? ['#'];
  for (const key of bindingKeys) validateBindingKey(key);
  const logger = options.logger ?? silentLogger;
  const maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
  if (!res.headersSent) {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
  }
  res.write(`retry: ${options.retryMs ?? 3000}\n: connected\n\n`);
  let id = 0;
  let closed = false;
  const subs: Subscription[] = [];
  /** Writes `text` unless the client is too far behind; then its socket is destroyed. */
  const send = (text: string) => {
    if (closed) return;
    if (res.writableLength > maxBufferedBytes) {
      logger.warn(
        { bindingKeys, bufferedBytes: res.writableLength },
        'SSE client too slow; disconnecting',
      );
      options.onSlowClient?.();
      res.destroy();
      void close();
      return;
    }
    res.write(text);
  };
  const onMessage = (message: BusMessage, routingKey: string) => {
    if (closed) return;
    const data = JSON.stringify({ routing_key: routingKey, ...message });
    send(formatSseEvent({ id: ++id, event: message.name, data }));
  };
  const history = options.history;
  let unlisten: (() => void) | undefined;
  if (history === undefined) {
    for (const key of bindingKeys) subs.push(bus.subscribe(key, onMessage));
  } else {
    const matchers = bindingKeys.map((key) => compileBindingKey(key));
    const write = (entry: HistoryEntry) => {
      if (!matchers.some((match) => match(entry.routingKey))) return;
      send(formatSseEvent({ id: history.id(entry), event: entry.message.name, data: entry.data }));
    };
    if (options.lastEventId !== undefined && options.lastEventId !== '') {
      const missed = history.since(options.lastEventId);
      if (missed === undefined) {
        send(formatSseEvent({ event: 'reset', data: '{"reason":"history_gap"}' }));
      } else for (const entry of missed) write(entry);
    }
    unlisten = history.listen(write);
  }
  const keepAlive = setInterval(() => send(': keep-alive\n\n'), options.keepAliveMs ?? 15_000);
  keepAlive.unref();
  const close = async () => {
    if (closed) return;
    closed = true;
    clearInterval(keepAlive);
    unlisten?.();
    if (!res.writableEnded && !res.destroyed) res.end();
    await Promise.all(subs.map((s) => s.close()));
  };
  res.on('close', () => void close());
  const ready =
    history === undefined ? Promise.all(subs.map((s) => s.ready)).then(() => {}) : history.ready;
  return { ready, close };
}
