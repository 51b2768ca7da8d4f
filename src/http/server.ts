/**
 * The one HTTP server of Switchboard (Fastify 5 + TypeBox type provider).
 *
 * Built in: `/healthz`, `/readyz`, `/metrics`, OpenAPI at `/docs` (JSON at `/docs/json`),
 * form-encoded bodies wherever JSON is accepted, a body-size limit, request-duration metrics,
 * pino logs (one line per request: method, URL with secret query parameters redacted,
 * status, milliseconds; never headers), graceful shutdown.
 *
 * Feature modules add their routes as Fastify plugins, each owning its routes, schemas, hooks
 * (access rule) and error shape:
 *
 * ```ts
 * const server = await createServer({ config });
 * server.readiness.add('ami', () => ami.connected);
 * await server.app.register(calloutRoutes, { config: config.callout });
 * await server.listen();
 * ...
 * await server.close(); // stop accepting, wait for in-flight requests
 * ```
 *
 * The logger is in logging.ts, the readiness checks in readiness.ts (both re-exported).
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import Type from 'typebox';
import { TRUST_PROXY_TRUE } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { createMetrics, type Metrics } from '../metrics.ts';
import { createCidrMatcher } from '../util/cidr.ts';
import { reuseMetric } from '../util/metrics.ts';
import { decoratePrincipal } from './auth.ts';
import { registerBodyParsers } from './body.ts';
import { setClientTrust } from './client.ts';
import {
  defaultErrorFormatter,
  formatterFor,
  sendError,
  toErrorInfo,
  useErrorFormatter,
} from './errors.ts';
import { createLogger, loggableUrl } from './logging.ts';
import { Readiness } from './readiness.ts';
import { NO_SECURITY, plainSerializer, SECURITY_SCHEMES } from './schemas.ts';

export {
  createLogger,
  type LogFormat,
  loggableUrl,
  REDACT_PATHS,
  resolveLogFormat,
} from './logging.ts';
export { type CheckResult, Readiness, type ReadinessCheck } from './readiness.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route receives uploads: its body may take `http.uploadTimeoutMs` to arrive
     * instead of `http.requestTimeoutMs`.
     */
    upload?: boolean;
  }
}

/** The Fastify instance type modules register on (TypeBox type provider). */
export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/** `HOST:PORT` → parts (`[::1]:8080` → host `::1`). */
export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(listen);
  if (!match) throw new Error(`invalid listen address (HOST:PORT): ${listen}`);
  return { host: match[1] ?? match[2] ?? '', port: Number(match[3]) };
}

/**
 * A listener that could not bind, as one sentence naming it, its address, the reason and the
 * configuration key that moves it, e.g. `HTTP server: cannot listen on 127.0.0.1:8080:
 * address already in use (EADDRINUSE; another process listens there); set http.listen
 * (or --listen)`. Other errors are returned as they are.
 */
export function listenFailure(
  error: unknown,
  listener: string,
  address: string,
  key: string,
): Error {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const why: Record<string, string> = {
    EADDRINUSE: 'address already in use (EADDRINUSE; another process listens there)',
    EACCES: 'permission denied (EACCES; ports below 1024 need privileges)',
    EADDRNOTAVAIL: 'no such address on this machine (EADDRNOTAVAIL)',
    ENOTFOUND: 'unknown host name (ENOTFOUND)',
    EAI_AGAIN: 'host name not resolved (EAI_AGAIN)',
  };
  const reason = code === undefined ? undefined : why[code];
  if (reason === undefined) return error instanceof Error ? error : new Error(String(error));
  return new Error(`${listener}: cannot listen on ${address}: ${reason}; set ${key}`, {
    cause: error,
  });
}

/**
 * Fastify's request logging, one line per request: `GET /api/v1/call?eventid=3 200 4.2 ms`
 * at `info` (with `http: {method, url, statusCode, ms}` for JSON readers), when the response
 * has been sent; `error` with the error when the response failed. Nothing when the request
 * arrives, no "route not found" line (the request line says 404), never headers. A route's
 * `logLevel` (`warn` for /healthz, /readyz, /metrics) silences its lines.
 */
class OneLineLogController extends LogController {
  override incomingRequest(): void {}

  override routeNotFound(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    if (this.isLogDisabled(request)) return;
    const ms = Math.round(reply.elapsedTime * 10) / 10;
    const url = loggableUrl(request.url);
    const http = { method: request.method, url, statusCode: reply.statusCode, ms };
    const line = `${request.method} ${url} ${reply.statusCode} ${ms} ms`;
    if (error) reply.log.error({ http, err: error }, `${line}: ${error.message}`);
    else reply.log.info({ http }, line);
  }

  override defaultErrorLog(error: Error, request: FastifyRequest, reply: FastifyReply): void {
    // 4xx are said by the request line; a 5xx is an error worth its own line, with the stack.
    if (reply.statusCode >= 500) super.defaultErrorLog(error, request, reply);
  }
}

/** The answer of `/readyz`. */
const Readyz = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not ready')]),
  failed: Type.Array(Type.String(), { description: 'names of the failed checks' }),
  checks: Type.Record(
    Type.String(),
    Type.Object({ ok: Type.Boolean(), detail: Type.Optional(Type.String()) }),
  ),
});

const REQUEST_TIMEOUTS = 'switchboard_http_request_timeouts_total';
const REQUEST_TIMEOUT_BODY =
  '{"error":"request_timeout","message":"request body not received in time","statusCode":408}';
/** What a client whose request body stalled gets before its connection is closed. */
const REQUEST_TIMEOUT_RESPONSE =
  'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/json\r\n' +
  `Content-Length: ${Buffer.byteLength(REQUEST_TIMEOUT_BODY)}\r\n\r\n${REQUEST_TIMEOUT_BODY}`;

/** Options of {@link createServer}. */
export interface CreateServerOptions {
  /** The configuration (uses `http` and `log`). */
  config: Pick<Config, 'http' | 'log'>;
  /** Logger (default: {@link createLogger} on stdout at `config.log.level`). */
  logger?: Logger;
  /** Metrics registry (default: a new one from {@link createMetrics}). */
  metrics?: Metrics;
  /** Readiness checks (default: a new, empty set: ready). */
  readiness?: Readiness;
  /** Version shown in the OpenAPI document. */
  version?: string;
}

/** The server: the Fastify app to register modules on, and its lifecycle. */
export interface SwitchboardServer {
  /** Fastify instance (TypeBox type provider); register feature modules here before listen. */
  app: App;
  metrics: Metrics;
  readiness: Readiness;
  logger: Logger;
  /**
   * Starts listening on `config.http.listen` (or `listen` if given).
   * @returns the bound address and its base URL (port 0 resolved).
   */
  listen(listen?: string): Promise<{ host: string; port: number; url: string }>;
  /**
   * Graceful shutdown: readiness turns 503, the server stops accepting, in-flight requests
   * finish; after `timeoutMs` (default `config.http.shutdownTimeoutMs`) open connections are
   * cut. Resolves when closed. Idempotent.
   */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * Creates the HTTP server with the built-in routes. Nothing listens until `listen()`.
 * @throws when `config.http.listen` is malformed (at listen time), or a plugin fails to load.
 */
export async function createServer(options: CreateServerOptions): Promise<SwitchboardServer> {
  const { config } = options;
  const logger = options.logger ?? createLogger(config.log.level);
  const metrics = options.metrics ?? createMetrics();
  const readiness = options.readiness ?? new Readiness();

  const http = config.http;
  const requestTimeouts = reuseMetric(
    metrics.registry,
    REQUEST_TIMEOUTS,
    () =>
      new Counter({
        name: REQUEST_TIMEOUTS,
        help: 'Requests whose body did not arrive within http.requestTimeoutMs / uploadTimeoutMs (408, connection closed)',
        registers: [metrics.registry],
      }),
  );
  if (http.trustProxy === true) throw new Error(`config: http.trustProxy: ${TRUST_PROXY_TRUE}`);
  const proxies = Array.isArray(http.trustProxy) ? http.trustProxy : [];
  const isTrustedProxy = createCidrMatcher(proxies);
  // Node's own request timeout is the backstop (the longest a request may take to arrive);
  // the hook below applies the per-route limit, counted from the end of the headers.
  const backstopMs = Math.max(http.requestTimeoutMs, http.uploadTimeoutMs) + http.headersTimeoutMs;
  const loggerInstance: FastifyBaseLogger = logger;
  const app: App = Fastify({
    loggerInstance,
    // One line per request (Fastify's own are two, the first with every header).
    logController: new OneLineLogController(),
    bodyLimit: http.bodyLimitBytes,
    trustProxy: proxies.length > 0 ? (address: string) => isTrustedProxy(address) : false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    requestTimeout: backstopMs,
    keepAliveTimeout: http.keepAliveTimeoutMs,
    http: {
      requestTimeout: backstopMs,
      headersTimeout: http.headersTimeoutMs,
      // How often Node looks for requests past headersTimeout / requestTimeout.
      connectionsCheckingInterval: Math.min(30_000, Math.max(50, http.headersTimeoutMs / 4)),
    },
    frameworkErrors: (error, request, reply) =>
      sendError(
        reply,
        request,
        toErrorInfo(error),
        formatterFor(request.server.server, request.url),
      ),
  }).withTypeProvider<TypeBoxTypeProvider>();
  setClientTrust(app.server, {
    isTrustedProxy,
    warn: (fields, message) => logger.warn({ component: 'http', ...fields }, message),
  });

  useErrorFormatter(app, defaultErrorFormatter);
  decoratePrincipal(app);
  app.setNotFoundHandler((request, reply) =>
    sendError(
      reply,
      request,
      {
        statusCode: 404,
        code: 'not_found',
        message: `no route ${request.method} ${request.url.split('?')[0]?.slice(0, 200)}`,
        headers: {},
      },
      formatterFor(app.server, request.url),
    ),
  );

  // Strict JSON, text and form-encoded parsers (UTF-8, depth); form bodies are parsed to
  // objects, so every JSON body schema accepts them too.
  registerBodyParsers(app, { bodyLimit: http.bodyLimitBytes, jsonMaxDepth: http.jsonMaxDepth });

  // A body that does not arrive within the route's limit (drip-fed, stalled) is answered
  // 408 and its connection closed.
  app.addHook('onRequest', (request, reply, done) => {
    const raw = request.raw;
    if (raw.complete) return done();
    const limitMs =
      request.routeOptions.config?.upload === true ? http.uploadTimeoutMs : http.requestTimeoutMs;
    const timer = setTimeout(() => {
      if (raw.complete) return;
      request.log.info({ timeoutMs: limitMs }, 'request body not received in time; closing');
      requestTimeouts.inc();
      const socket = raw.socket;
      if (!reply.raw.headersSent && socket.writable) {
        socket.end(REQUEST_TIMEOUT_RESPONSE, () => socket.destroy());
      } else socket.destroy();
    }, limitMs);
    timer.unref();
    reply.raw.once('close', () => clearTimeout(timer));
    done();
  });

  if (config.http.docs) {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Switchboard',
          description: 'Asterisk call events, alert calls, announcements and mobile wake-up',
          version: options.version ?? '0.1.0',
        },
        components: { securitySchemes: SECURITY_SCHEMES as never },
      },
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });
  }

  // During shutdown, answers close their connection so keep-alive sockets do not hold it open.
  let shuttingDown = false;
  app.addHook('onSend', async (_request, reply, payload) => {
    if (shuttingDown) reply.header('connection', 'close');
    return payload;
  });

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

  app.get(
    '/healthz',
    {
      schema: {
        tags: ['operations'],
        summary: 'The process is up',
        operationId: 'getLiveness',
        security: NO_SECURITY,
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
      logLevel: 'warn',
      serializerCompiler: plainSerializer,
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Ready to serve: every readiness check passes (else 503 naming the failed ones)',
        operationId: 'getReadiness',
        security: NO_SECURITY,
        response: {
          200: Readyz,
          503: { ...Readyz, description: 'Not ready: `failed` names the checks that fail' },
        },
      },
      logLevel: 'warn',
      serializerCompiler: plainSerializer,
    },
    async (_request, reply) => {
      const result = await readiness.run();
      reply.code(result.ready ? 200 : 503);
      return {
        status: result.ready ? ('ready' as const) : ('not ready' as const),
        failed: result.failed,
        checks: result.checks,
      };
    },
  );

  app.get(
    '/metrics',
    {
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics',
        operationId: 'getMetrics',
        security: NO_SECURITY,
        response: {
          200: {
            description: 'Prometheus text exposition format',
            content: { 'text/plain': { schema: Type.String() } },
          },
        },
      },
      logLevel: 'warn',
      serializerCompiler: plainSerializer,
    },
    async (_request, reply) => {
      reply.type(metrics.registry.contentType);
      return metrics.registry.metrics();
    },
  );

  let closing: Promise<void> | undefined;
  return {
    app,
    metrics,
    readiness,
    logger,
    async listen(listen = config.http.listen) {
      const { host, port } = parseListen(listen);
      await app.listen({ host, port });
      const address = app.server.address();
      const bound = typeof address === 'object' && address ? address.port : port;
      const urlHost = host.includes(':') ? `[${host}]` : host;
      return { host, port: bound, url: `http://${urlHost}:${bound}` };
    },
    close(timeoutMs = config.http.shutdownTimeoutMs) {
      if (closing) return closing;
      readiness.markClosing();
      shuttingDown = true;
      closing = (async () => {
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

export { toErrorInfo };
