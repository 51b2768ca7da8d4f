/**
 * HTTP helpers for tests that play a hostile client or a reverse proxy against a running
 * server: raw requests (any header, any bytes), a small reverse proxy that forwards like
 * nginx does, and a log sink.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { createLogger } from '../../src/http/server.ts';
import { featureModules } from '../../src/serve/modules.ts';
import { createService, type Service } from '../../src/serve/service.ts';

/** An answer: status, headers, body as text. */
export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * Sends one request with exactly these headers and body bytes (Host and, for a body,
 * Content-Length are added unless given). `headOnly`: a 200 answer resolves with its
 * headers at once (for endless streams), other answers are read whole.
 */
export function rawRequest(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string | Buffer,
  options: { headOnly?: boolean } = {},
): Promise<RawAnswer> {
  const target = new URL(url);
  const all = { ...headers };
  if (body !== undefined && !('content-length' in all) && !('transfer-encoding' in all)) {
    all['content-length'] = String(Buffer.byteLength(body));
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: target.hostname, port: target.port, method, path, headers: all, agent: false },
      (res) => {
        if (options.headOnly && res.statusCode === 200) {
          // A stream (text/event-stream): the status and headers are the answer.
          resolve({ status: 200, headers: res.headers, body: '' });
          res.destroy();
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    // A diagnostic, not a speed check: a request that hangs names itself instead of the
    // whole test timing out.
    req.setTimeout(20_000, () => req.destroy(new Error('no answer after 20 s')));
    req.end(body);
  });
}

/** A running reverse proxy in front of a server. */
export interface ReverseProxy {
  url: string;
  close(): Promise<void>;
}

/**
 * A reverse proxy forwarding every request to `target`, as nginx does with
 * `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for` (the client's own
 * `X-Forwarded-For`, then the address it connected from) — or, with `realIpOnly`, as a
 * proxy that sends only `X-Real-IP: $remote_addr`. `remoteAddress` stands in for the
 * address a remote client would connect from (this host only has loopback clients).
 */
export async function startReverseProxy(
  target: string,
  options: { remoteAddress?: string; realIpOnly?: boolean } = {},
): Promise<ReverseProxy> {
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    const remote = options.remoteAddress ?? req.socket.remoteAddress ?? '';
    const headers: IncomingHttpHeaders = { ...req.headers };
    if (options.realIpOnly) {
      headers['x-real-ip'] = remote;
    } else {
      const previous = req.headers['x-forwarded-for'];
      headers['x-forwarded-for'] = previous ? `${previous}, ${remote}` : remote;
      headers['x-forwarded-proto'] = 'http';
    }
    const forward = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers,
        agent: false,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A pino destination collecting parsed log lines. */
export function logLines(): { stream: Writable; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split('\n')) {
        if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  return { stream, lines };
}

/** A form-encoded body from fields (repeated names from arrays). */
export function form(fields: Record<string, string | string[]>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) {
    for (const item of Array.isArray(value) ? value : [value]) params.append(name, item);
  }
  return params.toString();
}

/** A push user of {@link serveConfigYaml} (Basic credentials for the device routes). */
export const PUSH_USER = { username: 'alice', password: 'alice-password', sip: '123456789' };

/**
 * The YAML of a `serve` with every feature module on a free port: in-memory SQLite, dry-run
 * alert calls, call-file announcements into a temporary spool directory, the push API with
 * one user; `extra` is appended (its sections must not repeat these).
 */
export function serveConfigYaml(
  extra = '',
  listen = '127.0.0.1:0',
  http: Record<string, unknown> = {},
): string {
  const dir = mkdtempSync(join(tmpdir(), 'sb-http-'));
  mkdirSync(join(dir, 'spool'));
  return [
    'http:',
    `  listen: "${listen}"`,
    ...Object.entries(http).map(([key, value]) => `  ${key}: ${JSON.stringify(value)}`),
    'database:',
    '  url: ":memory:"',
    'announce:',
    `  spoolDir: ${join(dir, 'spool')}`,
    `  soundsDir: ${join(dir, 'sounds')}`,
    '  extension: "100"',
    // Tests run in parallel: never Gong's fixed port 9600 (announce.listen), a free one.
    '  listen: "127.0.0.1:0"',
    'callout:',
    `  mediaDir: ${join(dir, 'callout')}`,
    'push:',
    '  users:',
    `    - {username: ${PUSH_USER.username}, password: ${PUSH_USER.password}, sipUserIds: ["${PUSH_USER.sip}"]}`,
    extra,
  ].join('\n');
}

/**
 * Starts `serve` in this process (real HTTP on a free port) with every feature module.
 * `http` keys go into the YAML's `http` section (validated like any configuration file).
 */
export async function startServe(
  options: {
    yaml?: string;
    http?: Partial<Config['http']>;
    logLevel?: string;
    logs?: Writable;
  } = {},
): Promise<{ service: Service; url: string; config: Config }> {
  const { listen, ...http } = options.http ?? {};
  const config = loadConfig({ text: serveConfigYaml(options.yaml, listen, http), env: {} });
  const logger = createLogger(options.logLevel ?? 'silent', options.logs);
  const service = createService({ config, logger, modules: featureModules() });
  const { url } = await service.start();
  return { service, url, config };
}
