/**
 * The `cti` feature: `POST /api/cti/:event` publishes a XiVO CTI-client event
 * (`call_form_result`, `user_status_update`, `chat_message_event`) on the bus. The body is
 * the event's `data` exactly as in the XiVO bus document, validated by `buildCtiEvent`
 * (`src/bus/xivo.ts`) and published with the seed's routing key. 202 `{routing_key, name}`;
 * 400 `{error, message, errors: [...]}` naming every problem; 503 when the bus dropped the
 * message (closed or buffer full).
 *
 * Behind the access rule of `src/http/auth.ts` (`auth` section, module name `cti`); browser
 * cross-site requests without a Bearer token are refused (403).
 *
 * A Fastify plugin (name `cti`, needs `switchboard-bus`): `app.register(ctiPlugin)`.
 */
import fp from 'fastify-plugin';
import Type from 'typebox';
import { CTI_EVENTS } from '../bus/xivo.ts';
import { createAccessRule } from '../http/auth.ts';
import {
  ACCESS_RULE_SECURITY,
  DefaultErrorBody,
  errorResponses,
  plainSerializer,
} from '../http/schemas.ts';
import type { App } from '../http/server.ts';

const ErrorBody = DefaultErrorBody;

/** The CTI feature plugin. */
export const ctiPlugin = fp(
  async (app: App) => {
    const publisher = app.publisher;
    const auth = app.switchboard.config.auth;
    await app.register(async (cti: App) => {
      cti.addHook('onRequest', createAccessRule({ ...auth, module: 'cti' }));
      cti.setSerializerCompiler(plainSerializer);
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
              400: {
                ...ErrorBody,
                description: 'Invalid event data (`errors` lists every problem)',
              },
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
  },
  { name: 'cti', dependencies: ['switchboard-bus'], fastify: '5.x' },
);
