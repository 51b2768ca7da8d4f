/**
 * The HTTP routes the service itself owns (the feature modules add theirs):
 *
 * - `POST /api/cti/:event`: a XiVO CTI-client event (`call_form_result`,
 *   `user_status_update`, `chat_message_event`); the body is the event's `data` exactly as
 *   in the XiVO bus document. Validated by `buildCtiEvent`, published on the bus with the
 *   seed's routing key. 202 `{routing_key, name}`; 400 `{error, message, errors: [...]}`
 *   naming every problem; 503 when the bus dropped the message (closed or buffer full).
 * - `GET /api/events?bind=<binding key>` (repeatable, at most {@link MAX_BINDING_KEYS};
 *   default `#`): the bus as Server-Sent Events (`src/sinks/sse.ts`), from either bus. 400
 *   naming the malformed binding key; 503 with `Retry-After` when `http.sseMaxStreams`
 *   streams are open. A client more than `http.sseMaxBufferedBytes` behind is disconnected.
 *
 * Both are behind the access rule of `src/http/auth.ts` (`auth` section; module names
 * `cti` and `events`): loopback clients are allowed by default, others need a token, a
 * Basic user or an allowed network. Browser cross-site requests without a Bearer token are
 * refused (403): the CTI POST like every state-changing request, the event stream even
 * though it is a GET (a page must not hold stream slots through its visitors' browsers).
 */
import { Counter, Gauge } from 'prom-client';
import Type from 'typebox';
import type { Bus } from '../bus/bus.ts';
import { bindingKeyProblem } from '../bus/bus.ts';
import { CTI_EVENTS, type XivoPublisher } from '../bus/xivo.ts';
import type { AuthConfig } from '../config/schema.ts';
import { createAccessRule } from '../http/auth.ts';
import { sendError } from '../http/errors.ts';
import { ACCESS_RULE_SECURITY, DefaultErrorBody, errorResponses } from '../http/schemas.ts';
import type { App } from '../http/server.ts';
import type { Metrics } from '../metrics.ts';
import { type SseStream, streamBusAsSse } from '../sinks/sse.ts';

/** Options of {@link serviceRoutes}. */
export interface ServiceRoutesOptions {
  bus: Bus;
  publisher: XivoPublisher;
  auth: AuthConfig;
  /** Keep-alive interval of the SSE streams (default 15000 ms). */
  sseKeepAliveMs?: number;
  /** Most concurrent SSE streams (`http.sseMaxStreams`); beyond, 503. Default 100. */
  sseMaxStreams?: number;
  /** Bytes a stream's client may fall behind (`http.sseMaxBufferedBytes`). Default 1 MiB. */
  sseMaxBufferedBytes?: number;
  /** Open SSE streams, so that shutdown can end them (they never finish by themselves). */
  streams: Set<SseStream>;
  /** Registry for the stream metrics (default: none kept). */
  metrics?: Metrics;
}

/** Most `bind` keys of one `/api/events` request (each is a subscription). */
export const MAX_BINDING_KEYS = 32;

/** Seconds a refused stream client is asked to wait (`Retry-After`). */
const SSE_RETRY_AFTER_S = 10;

function sseMetrics(metrics: Metrics | undefined) {
  const registers = metrics ? [metrics.registry] : [];
  const reuse = <T>(name: string, make: () => T): T =>
    (metrics?.registry.getSingleMetric(name) as T | undefined) ?? make();
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

/**
 * Registers the CTI and event-stream routes on `app` (call inside the service's plugin so
 * the access-rule hook applies to these routes only).
 */
export async function serviceRoutes(app: App, options: ServiceRoutesOptions): Promise<void> {
  const { bus, publisher, streams } = options;
  const maxStreams = options.sseMaxStreams ?? 100;
  const m = sseMetrics(options.metrics);

  await app.register(async (cti: App) => {
    cti.addHook('onRequest', createAccessRule({ ...options.auth, module: 'cti' }));
    cti.post(
      '/api/cti/:event',
      {
        schema: {
          tags: ['bus'],
          summary: 'Publish a XiVO CTI-client event on the bus',
          operationId: 'publishCtiEvent',
          security: ACCESS_RULE_SECURITY,
          description:
            'The body is the `data` of the event exactly as in the XiVO bus document: ' +
            '`call_form_result` {user_id, variables} → routing key `call_form_result`; ' +
            '`user_status_update` {user_id, xivo_id, status} → `status.user`; ' +
            '`chat_message_event` {alias, to, from, msg} → `chat.message.<to uuid>.<to user id>`.',
          params: Type.Object({
            event: Type.Enum(Object.keys(CTI_EVENTS), { description: 'the CTI event name' }),
          }),
          body: Type.Unknown({ description: 'the event data (validated by the event schema)' }),
          response: {
            202: Type.Object(
              { routing_key: Type.String(), name: Type.String() },
              { description: 'Published' },
            ),
            400: { ...ErrorBody, description: 'Invalid event data (`errors` lists every problem)' },
            ...errorResponses(ErrorBody, [401, 403, 404, 413, 415]),
            503: { ...ErrorBody, description: 'The bus did not accept the message' },
          },
        },
      },
      async (request, reply) => {
        const { event } = request.params as { event: string };
        const result = publisher.cti(event, request.body);
        if (!result.ok) {
          reply.code(400);
          return {
            error: 'bad_request',
            message: `invalid ${event}: ${result.errors.join('; ')}`,
            statusCode: 400,
            errors: result.errors,
          };
        }
        if (!result.published) {
          reply.code(503);
          return {
            error: 'unavailable',
            message: 'the bus did not accept the message (closing, or its buffer is full)',
            statusCode: 503,
          };
        }
        reply.code(202);
        return { routing_key: result.routingKey, name: event };
      },
    );
  });

  await app.register(async (events: App) => {
    events.addHook(
      'onRequest',
      createAccessRule({ ...options.auth, module: 'events', refuseCrossSite: 'all' }),
    );
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
            'falls more than `http.sseMaxBufferedBytes` behind is disconnected.',
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
        reply.hijack();
        const stream = streamBusAsSse(bus, reply.raw, {
          bindingKeys,
          logger: request.log,
          onSlowClient: () => m.closed.inc({ reason: 'slow' }),
          ...(options.sseKeepAliveMs === undefined ? {} : { keepAliveMs: options.sseKeepAliveMs }),
          ...(options.sseMaxBufferedBytes === undefined
            ? {}
            : { maxBufferedBytes: options.sseMaxBufferedBytes }),
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
}
