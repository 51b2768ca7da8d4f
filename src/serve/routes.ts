/**
 * The event stream of the service (the `events` plugin, part of the spine):
 *
 * - `GET /api/events?bind=<binding key>` (repeatable, at most {@link MAX_BINDING_KEYS};
 *   default `#`): the bus as Server-Sent Events (`src/sinks/sse.ts`), from either bus. 400
 *   naming the malformed binding key; 503 with `Retry-After` when `http.sseMaxStreams`
 *   streams are open. A client more than `http.sseMaxBufferedBytes` behind is disconnected.
 *
 * Behind the access rule of `src/http/auth.ts` (`auth` section; module name `events`):
 * loopback clients are allowed by default, others need a token, a Basic user or an allowed
 * network. Browser cross-site requests without a Bearer token are refused (403), although it
 * is a GET (a page must not hold stream slots through its visitors' browsers).
 *
 * A Fastify plugin (name `events`, needs `switchboard-bus`); open streams are ended in
 * `preClose` (they never finish by themselves, and the server waits for its connections).
 */
import fp from 'fastify-plugin';
import { Counter, Gauge } from 'prom-client';
import Type from 'typebox';
import { bindingKeyProblem } from '../bus/bus.ts';
import { createAccessRule } from '../http/auth.ts';
import { sendError } from '../http/errors.ts';
import {
  ACCESS_RULE_SECURITY,
  DefaultErrorBody,
  errorResponses,
  plainSerializer,
} from '../http/schemas.ts';
import type { App } from '../http/server.ts';
import type { Metrics } from '../metrics.ts';
import { BusHistory, type SseStream, streamBusAsSse } from '../sinks/sse.ts';
import { reuseMetric } from '../util/metrics.ts';

/** Options of {@link eventsPlugin} (the rest comes from `app.switchboard.config.http`). */
export interface EventsPluginOptions {
  /** Keep-alive interval of the SSE streams (default 15000 ms). */
  sseKeepAliveMs?: number;
}

/** Most `bind` keys of one `/api/events` request (each is a subscription). */
export const MAX_BINDING_KEYS = 32;

/** Seconds a refused stream client is asked to wait (`Retry-After`). */
const SSE_RETRY_AFTER_S = 10;

function sseMetrics(metrics: Metrics | undefined) {
  const registers = metrics ? [metrics.registry] : [];
  const reuse = <T>(name: string, make: () => T): T => reuseMetric(metrics?.registry, name, make);
  return {
    open: reuse(
      'switchboard_sse_streams',
      () =>
        new Gauge({
          name: 'switchboard_sse_streams',
          help: 'Open /api/events streams',
          registers,
        }),
    ),
    closed: reuse(
      'switchboard_sse_disconnects_total',
      () =>
        new Counter({
          name: 'switchboard_sse_disconnects_total',
          help: '/api/events streams cut by the server: slow (client too far behind), refused (http.sseMaxStreams reached)',
          labelNames: ['reason'],
          registers,
        }),
    ),
  };
}

const ErrorBody = DefaultErrorBody;

/** The event-stream plugin: `GET /api/events` (see the module comment). */
export const eventsPlugin = fp<EventsPluginOptions>(
  async (app: App, options) => {
    const bus = app.bus;
    const { auth, http } = app.switchboard.config;
    const maxStreams = http.sseMaxStreams;
    const m = sseMetrics(app.switchboard.metrics);
    const streams = new Set<SseStream>();
    // The recent messages with shared ids: streams are served from it and a client's
    // `Last-Event-ID` replays what it missed. Started (one `#` subscription) when the first
    // stream opens.
    const history = new BusHistory();
    app.addHook('preClose', async () => {
      await Promise.all([...streams].map((stream) => stream.close()));
    });
    app.addHook('onClose', async () => {
      await history
        .stop()
        .catch((error: unknown) =>
          app.log.warn({ err: error }, 'event-stream history stop failed'),
        );
    });

    await app.register(async (events: App) => {
      events.addHook(
        'onRequest',
        createAccessRule({ ...auth, module: 'events', refuseCrossSite: 'all' }),
      );
      events.setSerializerCompiler(plainSerializer);
      events.get(
        '/api/events',
        {
          schema: {
            tags: ['bus'],
            summary: 'Bus messages as Server-Sent Events',
            operationId: 'streamBusEvents',
            security: ACCESS_RULE_SECURITY,
            description:
              'One SSE event per bus message whose routing key matches one of the `bind` keys ' +
              '(AMQP topic syntax: `*` one word, `#` zero or more; default `#`). `event:` is the ' +
              "message's name, `data:` one line of JSON: `{routing_key, name, origin_uuid, data}`. " +
              'A `: ready` comment is sent once the subscriptions are bound. At most ' +
              '`http.sseMaxStreams` streams at once (then 503 with Retry-After); a client that ' +
              'falls more than `http.sseMaxBufferedBytes` behind is disconnected. Every event has ' +
              'an `id:` (`<epoch>-<n>`, shared by all streams of the process); a client that ' +
              'reconnects with the `Last-Event-ID` header first gets the messages it missed ' +
              '(of the last 10,000 kept), or `event: reset` when they are no longer kept (or the ' +
              'id is from before a restart): then it should reload its state from the APIs.',
            querystring: Type.Object({
              bind: Type.Optional(
                Type.Array(Type.String(), {
                  description: `binding key, e.g. \`call.#\`; repeat for several (at most ${MAX_BINDING_KEYS})`,
                }),
              ),
            }),
            response: {
              200: {
                description: 'One SSE event per bus message',
                content: { 'text/event-stream': { schema: Type.String() } },
              },
              ...errorResponses(ErrorBody, [400, 401, 403, 503]),
            },
          },
        },
        async (request, reply) => {
          const { bind } = request.query as { bind?: string[] };
          const bindingKeys = bind === undefined || bind.length === 0 ? ['#'] : bind;
          if (bindingKeys.length > MAX_BINDING_KEYS) {
            return sendError(reply, request, {
              statusCode: 400,
              code: 'bad_request',
              message: `at most ${MAX_BINDING_KEYS} binding keys`,
              field: 'querystring.bind',
              headers: {},
            });
          }
          const problems = bindingKeys
            .map((key) => bindingKeyProblem(key))
            .filter((p): p is string => p !== undefined);
          if (problems.length > 0) {
            return sendError(reply, request, {
              statusCode: 400,
              code: 'bad_request',
              message: problems.join('; '),
              field: 'querystring.bind',
              headers: {},
            });
          }
          if (streams.size >= maxStreams) {
            m.closed.inc({ reason: 'refused' });
            request.log.info({ maxStreams }, 'SSE stream refused: http.sseMaxStreams reached');
            return sendError(reply, request, {
              statusCode: 503,
              code: 'unavailable',
              message: `too many event streams open (${maxStreams}); retry later`,
              headers: { 'retry-after': String(SSE_RETRY_AFTER_S) },
            });
          }
          // The history binds at the first stream (no `#` subscription while nobody reads).
          history
            .start(bus)
            .catch((error: unknown) =>
              request.log.warn({ err: error }, 'event-stream history not subscribed'),
            );
          reply.hijack();
          const stream = streamBusAsSse(bus, reply.raw, {
            bindingKeys,
            logger: request.log,
            onSlowClient: () => m.closed.inc({ reason: 'slow' }),
            ...(options.sseKeepAliveMs === undefined
              ? {}
              : { keepAliveMs: options.sseKeepAliveMs }),
            maxBufferedBytes: http.sseMaxBufferedBytes,
            history,
            ...(typeof request.headers['last-event-id'] === 'string'
              ? { lastEventId: request.headers['last-event-id'] }
              : {}),
          });
          streams.add(stream);
          m.open.set(streams.size);
          reply.raw.on('close', () => {
            streams.delete(stream);
            m.open.set(streams.size);
          });
          // A comment once every subscription is bound (AMQP: queue declared), so that a
          // client knows from when on nothing is missed.
          void stream.ready.then(() => {
            if (!reply.raw.writableEnded && !reply.raw.destroyed) reply.raw.write(': ready\n\n');
          });
          return reply;
        },
      );
    });
  },
  { name: 'events', dependencies: ['switchboard-bus'], fastify: '5.x' },
);
