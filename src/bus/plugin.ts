/**
 * `switchboard-bus`: the bus as a shared Fastify plugin. Creates it at registration (AMQP
 * when `amqp.url` is set, else in-process; it connects in the background and buffers
 * meanwhile), decorates `app.bus` and `app.publisher` (XiVO envelopes, `origin_uuid` = the
 * instance), adds the `bus` readiness check, publishes `service.registered.switchboard` once
 * the HTTP server listens (`onListen`), and in `onClose` publishes
 * `service.deregistered.switchboard` and flushes its buffer (bounded) before closing.
 */
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import type { Readiness } from '../http/server.ts';
import { withTimeout } from '../util/timeout.ts';
import type { Bus } from './bus.ts';
import { type CreateBusOptions, createBus } from './index.ts';
import { XivoPublisher } from './xivo.ts';

/** Options of {@link busPlugin}. */
export interface BusPluginOptions {
  /** Options of `createBus`. */
  bus: CreateBusOptions;
  /** The instance (`instance.uuid`, `instance.name`): `origin_uuid` and registration tags. */
  instance: { uuid: string; name: string };
  /** Host the service registers with (the `http.listen` host). */
  host: string;
  /** Longest wait for the buffer to flush at close, ms. */
  flushTimeoutMs: number;
  readiness: Readiness;
  logger: Logger;
}

/** The bus plugin (name `switchboard-bus`). */
export const busPlugin = fp<BusPluginOptions>(
  async (app, options) => {
    const bus: Bus = createBus(options.bus);
    const publisher = new XivoPublisher(bus, { originUuid: options.instance.uuid });
    app.decorate('bus', bus);
    app.decorate('publisher', publisher);
    options.readiness.add('bus', () =>
      bus.isConnected()
        ? { ok: true }
        : { ok: false, detail: `${bus.status().kind} bus not connected` },
    );
    const tags = ['switchboard', options.instance.uuid, options.instance.name];
    let registered = false;
    app.addHook('onListen', async () => {
      const address = app.server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      publisher.registered({ address: options.host, port, tags });
      registered = true;
    });
    app.addHook('onClose', async () => {
      if (registered) publisher.deregistered({ tags });
      const status = bus.status();
      if (status.buffered > 0) {
        options.logger.info({ buffered: status.buffered }, 'flushing the bus buffer');
      }
      await withTimeout(
        bus.close(options.flushTimeoutMs),
        options.flushTimeoutMs + 1000,
        'bus close',
      ).catch((error: unknown) => options.logger.warn({ err: error }, 'bus close did not finish'));
    });
  },
  { name: 'switchboard-bus', fastify: '5.x' },
);
