// A local fake Jenkins: `GET /api/json?tree=...` answering real-shaped JSON (folders and a
// multibranch project nesting jobs under `jobs`), Basic auth checked, switchable to garbage,
// errors or silence.
import { createServer, type Server } from 'node:http';

export interface FakeJenkins {
  url: string;
  /** Jobs by full name (`folder/job`) → color. */
  colors: Map<string, string>;
  /** `json` (normal), `garbage` (HTML), `500`, `401`. */
  mode: 'json' | 'garbage' | '500';
  /** Requests received (path + query). */
  requests: string[];
  close(): Promise<void>;
  /** Stops listening (Jenkins unreachable) and resolves; `url` keeps its port. */
  down(): Promise<void>;
}

export const JENKINS_USER = 'ci-bot';
export const JENKINS_TOKEN = '11aa22bb33cc44dd55ee66ff77889900';

function tree(colors: Map<string, string>, base: string) {
  type Node = { _class: string; name: string; url: string; color?: string; jobs?: Node[] };
  const root: Node[] = [];
  for (const [full, color] of colors) {
    const parts = full.split('/');
    let level = root;
    let url = base;
    parts.forEach((part, i) => {
      url = `${url}job/${encodeURIComponent(part)}/`;
      let node = level.find((n) => n.name === part);
      if (!node) {
        node =
          i === parts.length - 1
            ? { _class: 'hudson.model.FreeStyleProject', name: part, url, color }
            : { _class: 'com.cloudbees.hudson.plugins.folder.Folder', name: part, url, jobs: [] };
        level.push(node);
      }
      level = node.jobs ?? [];
    });
  }
  return { _class: 'hudson.model.Hudson', jobs: root };
}

/**
 * Starts the fake. `auth: false` answers without Basic auth (xgong-jenkins sends none);
 * `/api/json` is answered with or without `tree=` (xgong-jenkins asks without).
 */
export async function startFakeJenkins(
  initial: Record<string, string>,
  options: { auth?: boolean } = {},
): Promise<FakeJenkins> {
  const colors = new Map(Object.entries(initial));
  const requests: string[] = [];
  let server: Server;
  let port = 0;
  const fake: FakeJenkins = {
    url: '',
    colors,
    mode: 'json',
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
    down: () => new Promise((resolve) => server.close(() => resolve())),
  };
  server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const expected = `Basic ${Buffer.from(`${JENKINS_USER}:${JENKINS_TOKEN}`).toString('base64')}`;
    if (options.auth !== false && req.headers.authorization !== expected) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="Jenkins"' }).end();
      return;
    }
    if (req.url !== '/api/json' && !req.url?.startsWith('/api/json?tree=')) {
      res.writeHead(404).end();
      return;
    }
    if (fake.mode === '500') {
      res.writeHead(500, { 'content-type': 'text/html' }).end('<html>Oops</html>');
      return;
    }
    if (fake.mode === 'garbage') {
      res
        .writeHead(200, { 'content-type': 'text/html' })
        .end('<html><body>Please wait while Jenkins is getting ready');
      return;
    }
    res
      .writeHead(200, { 'content-type': 'application/json;charset=utf-8' })
      .end(JSON.stringify(tree(colors, `http://127.0.0.1:${port}/`)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
  fake.url = `http://127.0.0.1:${port}/`;
  return fake;
}
