/**
 * The console page: the files Vite built into `dist/web/` (`npm run build`), served from
 * memory. Only the files found there at start are served (a fixed map, no path from the
 * request ever reaches the file system): `/` is `index.html`, the rest under
 * `/console/assets/`. They carry no data and no secret, so they are served without the
 * access rule (a visitor from another network must see the login form); every API they
 * call is behind it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { App } from '../http/server.ts';

/** Where Vite writes the page (`vite.config.ts` `build.outDir`), from the package root. */
export const WEB_DIR = fileURLToPath(new URL('../../dist/web/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

interface StaticFile {
  type: string;
  body: Buffer;
  immutable: boolean;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else out.push(path);
  }
  return out;
}

/** The built files by URL path; empty when the page was not built. */
export function loadStaticFiles(dir = WEB_DIR): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  if (!existsSync(dir)) return files;
  for (const path of walk(dir)) {
    const type = TYPES[extname(path)];
    if (type === undefined) continue;
    const rel = relative(dir, path).split(sep).join('/');
    files.set(`/console/${rel}`, {
      type,
      body: readFileSync(path),
      immutable: rel.startsWith('assets/'),
    });
  }
  return files;
}

/** Registers `GET /` (the page) and `GET /console/*` (its files). */
export function registerStatic(app: App, files: Map<string, StaticFile>): void {
  const index = files.get('/console/index.html');
  const page = async (_request: unknown, reply: import('fastify').FastifyReply) => {
    if (index === undefined) {
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send('The console page was not built: run `npm run build`.\n');
    }
    return reply
      .type(index.type)
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('x-frame-options', 'DENY')
      .header(
        'content-security-policy',
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
      )
      .send(index.body);
  };
  const hidden = { schema: { hide: true } };
  app.get('/', hidden, page);
  app.get('/console', hidden, page);
  app.get('/console/', hidden, page);
  app.get('/console/*', hidden, async (request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const file = files.get(path);
    if (file === undefined || path === '/console/index.html') {
      return reply.code(404).send({ error: 'not_found', message: 'no such file', statusCode: 404 });
    }
    return reply
      .type(file.type)
      .header('x-content-type-options', 'nosniff')
      .header('cache-control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .send(file.body);
  });
}
