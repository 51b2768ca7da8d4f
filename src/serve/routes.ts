/**
 * The HTTP routes the service itself owns (the feature modules add theirs):
 *
 * - `POST /api/cti/:event`: a XiVO CTI-client event (`call_form_result`,
 *   `user_status_update`, `chat_message_event`); the body is the event's `data` exactly as
 *   in the XiVO bus document. Validated by `buildCtiEvent`, published on the bus with the
 *   seed's routing key. 202 `{routing_key, name}`; 400 `{error, message, errors: [...]}`
 *   naming every problem; 503 when the bus dropped the message (closed or buffer full).
 * - `GET /api/events?bind=<binding key>` (repeatable; default `#`): the bus as Server-Sent
 *   Events (`src/sinks/sse.ts`), from either bus. 400 naming the malformed binding key.
 *
 * Both are behind the access rule of `src/http/auth.ts` (`auth` section; module names
 * `cti` and `events`): loopback clients are allowed by default, others need a token, a
 * Basic user or an allowed network. Browser cross-site requests without a Bearer token are
 * refused (403): the CTI POST like every state-changing request, the event stream even
 * though it is a GET (a page must not hold stream slots through its visitors' browsers).
 */
import Type from 'typebox';
import type { Bus } from '../bus/bus.ts';
import { bindingKeyProblem } from '../bus/bus.ts';
import { CTI_EVENTS, type XivoPublisher } from '../bus/xivo.ts';
import type { AuthConfig } from '../config/schema.ts';
import { createAccessRule } from '../http/auth.ts';
import { sendError } from '../http/errors.ts';
import type { App } from '../http/server.ts';
import { type SseStream, streamBusAsSse } from '../sinks/sse.ts';

/** Options of {@link serviceRoutes}. */
export interface ServiceRoutesOptions {
  bus: Bus;
  publisher: XivoPublisher;
  auth: AuthConfig;
  /** Keep-alive interval of the SSE streams (default 15000 ms). */
  sseKeepAliveMs?: number;
  /** Open SSE streams, so that shutdown can end them (they never finish by themselves). */
  streams: Set<SseStream>;
}

const ErrorBody = Type.Object({
  error: Type.String(),
  message: Type.String(),
  statusCode: Type.Integer(),
  field: Type.Optional(Type.String()),
  errors: Type.Optional(Type.Array(Type.String())),
});

/**
 * Registers the CTI and event-stream routes on `app` (call inside the service's plugin so
 * the access-rule hook applies to these routes only).
 */
export async function serviceRoutes(app: App, options: ServiceRoutesOptions): Promise<void> {
  const { bus, publisher, streams } = options;

  await app.register(async (cti: App) => {
    cti.addHook('onRequest', createAccessRule({ ...options.auth, module: 'cti' }));
    cti.post(
      '/api/cti/:event',
      {
        schema: {
          tags: ['bus'],
          summary: 'Publish a XiVO CTI-client event on the bus',
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
            202: Type.Object({ routing_key: Type.String(), name: Type.String() }),
            400: ErrorBody,
            503: ErrorBody,
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
          description:
            'One SSE event per bus message whose routing key matches one of the `bind` keys ' +
            '(AMQP topic syntax: `*` one word, `#` zero or more; default `#`). `event:` is the ' +
            "message's name, `data:` one line of JSON: `{routing_key, name, origin_uuid, data}`. " +
            'A `: ready` comment is sent once the subscriptions are bound.',
          querystring: Type.Object({
            bind: Type.Optional(
              Type.Array(Type.String(), {
                description: 'binding key, e.g. `call.#`; repeat for several',
              }),
            ),
          }),
          response: {
            200: Type.String({ description: 'text/event-stream' }),
            400: ErrorBody,
          },
        },
      },
      async (request, reply) => {
        const { bind } = request.query as { bind?: string[] };
        const bindingKeys = bind === undefined || bind.length === 0 ? ['#'] : bind;
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
        reply.hijack();
        const stream = streamBusAsSse(bus, reply.raw, {
          bindingKeys,
          logger: request.log,
          ...(options.sseKeepAliveMs === undefined ? {} : { keepAliveMs: options.sseKeepAliveMs }),
        });
        streams.add(stream);
        reply.raw.on('close', () => streams.delete(stream));
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
