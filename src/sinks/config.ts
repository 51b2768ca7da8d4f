/**
 * The `webhooks` section: call events POSTed as JSON (`./webhook.ts`).
 * Schema and defaults are defined here, once; `src/config/schema.ts` composes the sections.
 *
 * @module
 */
import Type, { type Static } from 'typebox';
import { formatted, int, item, section, str } from '../config/section.ts';

/** One webhook endpoint receiving call events. */
export const WebhookEndpoint = item(
  {
    url: formatted('switchboard-http-url', undefined, 'URL call events are POSTed to'),
    name: str(
      '',
      'name in logs and metrics (the URL never is: it may carry a token); empty = the URL host',
      { pattern: '^[A-Za-z0-9._:-]*$', maxLength: 64 },
    ),
    secret: str('', 'HMAC-SHA256 key of the signature header; empty = unsigned'),
    events: Type.Array(Type.String({ minLength: 1 }), {
      default: ['#'],
      description:
        'call event kinds sent (e.g. hangup, up), or routing-key patterns (call.*, # any); empty = every call event',
    }),
    maxRetries: int(5, 0, 100, 'retries after a failure, with exponential backoff'),
    timeoutMs: int(5_000, 100, 600_000, 'request timeout'),
  },
  'a webhook',
);

/** `webhooks`: call events POSTed as JSON. */
export const WebhooksSection = section(
  {
    endpoints: Type.Array(WebhookEndpoint, { default: [], description: 'webhook endpoints' }),
    retryBaseMs: int(1_000, 10, 600_000, 'first retry delay (doubles on each retry)'),
  },
  'webhooks',
);

/** One `webhooks.endpoints` entry. */
export type WebhookEndpointConfig = Static<typeof WebhookEndpoint>;
