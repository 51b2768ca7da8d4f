/**
 * The Gong listener: a second HTTP listener serving only Gong's API on `announce.listen`
 * (default `127.0.0.1:9600`, Gong's port: `bin/xgong` and its uwsgi file bind 9600, and
 * xgong-jenkins posts to `http://localhost:9600` by default), next to the main server on
 * `http.listen`. Same routes, same access rule (`auth.*`, module `announce`), same error
 * shape as on the main server; nothing else (no `/metrics`, `/readyz`, `/docs`, no other
 * module) is reachable there.
 *
 * @module
 */
import formbody from '@fastify/formbody';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { decoratePrincipal } from '../http/auth.ts';
import { sendError, useErrorFormatter } from '../http/errors.ts';
import { type App, parseListen } from '../http/server.ts';
import type { Metrics } from '../metrics.ts';
import { gongErrorFormatter } from './routes.ts';

/** A listening Gong listener. */
export interface GongListener {
  /** Base URL, port 0 resolved (`http://127.0.0.1:9600`). */
  url: string;
  port: number;
  /** Stops accepting, lets in-flight requests finish (cut after `timeoutMs`). Idempotent. */
  close(timeoutMs?: number): Promise<void>;
}

/** Options of {@link startGongListener}. */
export interface GongListenerOptions {
  /** `HOST:PORT` (`announce.listen`). */
  listen: string;
  /** The announce module's routes (`AnnounceModule.plugin`). */
  plugin: (app: App) => Promise<void>;
  /** Body limit, proxy trust and shutdown timeout, as the main server. */
  http: Pick<Config['http'], 'bodyLimitBytes' | 'trustProxy' | 'shutdownTimeoutMs'>;
  logger: Logger;
  /** Request durations go to the main server's histogram when given. */
  metrics?: Metrics;
}

/**
 * Starts the Gong listener.
 * @throws {Error} one line naming `announce.listen` when the address is in use (EADDRINUSE),
 *   not allowed (EACCES) or not local (EADDRNOTAVAIL), or malformed.
 */
export async function startGongListener(options: GongListenerOptions): Promise<GongListener> {
  let host: string;
  let port: number;
  try {
    ({ host, port } = parseListen(options.listen));
  } catch {
    throw new Error(`announce.listen: ${JSON.stringify(options.listen)} is not HOST:PORT`);
  }
  const loggerInstance: FastifyBaseLogger = options.logger;
  const app: App = Fastify({
    loggerInstance,
    bodyLimit: options.http.bodyLimitBytes,
    trustProxy: options.http.trustProxy,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  }).withTypeProvider<TypeBoxTypeProvider>();
  useErrorFormatter(app, gongErrorFormatter);
  decoratePrincipal(app);
  app.setNotFoundHandler((request, reply) =>
    sendError(
      reply,
      request,
      {
        statusCode: 404,
        code: 'not_found',
        message: `no route ${request.method} ${request.url.split('?')[0]} (this port serves only the Gong API)`,
        headers: {},
      },
      gongErrorFormatter,
    ),
  );
  // xgong-jenkins posts form-encoded bodies (requests' `data=`).
  await app.register(formbody, { bodyLimit: options.http.bodyLimitBytes });
  const metrics = options.metrics;
  if (metrics) {
    app.addHook('onResponse', async (request, reply) => {
      metrics.httpRequestDuration.observe(
        {
          route: request.routeOptions.url ?? 'unmatched',
          method: request.method,
          status_code: String(reply.statusCode),
        },
        reply.elapsedTime / 1000,
      );
    });
  }
  await app.register(options.plugin);
  try {
    await app.listen({ host, port });
  } catch (error) {
    await app.close().catch(() => undefined);
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'EADDRINUSE'
        ? 'is already in use (is Gong itself still running there?)'
        : code === 'EACCES'
          ? 'may not be bound by this process'
          : code === 'EADDRNOTAVAIL'
            ? 'is not an address of this machine'
            : `cannot be bound (${(error as Error).message})`;
    throw new Error(
      `announce.listen: ${options.listen} ${why}; set announce.listen to another HOST:PORT, or '' to serve the Gong API on http.listen only`,
    );
  }
  const address = app.server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${bound}`,
    port: bound,
    close(timeoutMs = options.http.shutdownTimeoutMs) {
      closing ??= (async () => {
        const timer = setTimeout(() => app.server.closeAllConnections(), timeoutMs);
        try {
          await app.close();
        } finally {
          clearTimeout(timer);
        }
      })();
      return closing;
    },
  };
}
