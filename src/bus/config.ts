/**
 * The `amqp` section: the message bus (defaults of the AMQP bus: `./defaults.ts`).
 * Schema and defaults are defined here, once; `src/config/schema.ts` composes the sections.
 *
 * @module
 */

import { bool, formatted, int, section, str } from '../config/section.ts';
import { AMQP_BUS_DEFAULTS as AMQP } from './defaults.ts';

/** `amqp`: the XiVO-compatible message bus (RabbitMQ); empty url = in-process bus. */
export const AmqpSection = section(
  {
    url: formatted(
      'switchboard-amqp-url',
      '',
      'amqp://user:pass@host:5672/vhost; empty = in-process bus',
      true,
    ),
    exchange: str(AMQP.exchange, 'topic exchange name', { minLength: 1 }),
    persistent: bool(AMQP.persistent, 'publish messages as persistent (delivery mode 2)'),
    bufferSize: int(
      AMQP.bufferSize,
      0,
      10_000_000,
      'messages other than raw AMI events (call, callout, service, ...) kept while the broker is unreachable; beyond: dropped and counted',
    ),
    amiBufferSize: int(
      AMQP.amiBufferSize,
      1,
      10_000_000,
      'raw AMI events (ami.*) kept while the broker is unreachable, a budget of their own; beyond: dropped first, counted',
    ),
    heartbeatS: int(AMQP.heartbeatS, 0, 3600, 'AMQP heartbeat'),
    reconnectMinMs: int(
      AMQP.reconnectInitialDelayMs,
      10,
      600_000,
      'first reconnect delay (doubles on each failure)',
    ),
    reconnectMaxMs: int(AMQP.reconnectMaxDelayMs, 10, 3_600_000, 'longest reconnect delay'),
  },
  'message bus',
);
