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
 */
import type { ServerResponse } from 'node:http';
import {
  type Bus,
  type BusMessage,
  type Logger,
  type Subscription,
  silentLogger,
  validateBindingKey,
} from '../bus/bus.ts';

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
  for (const key of bindingKeys) subs.push(bus.subscribe(key, onMessage));
  const keepAlive = setInterval(() => send(': keep-alive\n\n'), options.keepAliveMs ?? 15_000);
  keepAlive.unref();
  const close = async () => {
    if (closed) return;
    closed = true;
    clearInterval(keepAlive);
    if (!res.writableEnded && !res.destroyed) res.end();
    await Promise.all(subs.map((s) => s.close()));
  };
  res.on('close', () => void close());
  return { ready: Promise.all(subs.map((s) => s.ready)).then(() => {}), close };
}
