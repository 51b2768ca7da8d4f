// The OpenAPI document of a serve with every feature on: every operation is fully described
// (operationId, security, request, responses including the errors), so that a generated
// client can call it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Compile } from 'typebox/compile';
import { featureModules } from '../../src/serve/modules.ts';
import { createService, type Service } from '../../src/serve/service.ts';
import { postCurlStyle, seedFields } from '../callout/helpers.ts';
import { testConfig } from './helpers.ts';

interface Operation {
  operationId?: string;
  security?: Array<Record<string, string[]>>;
  parameters?: Array<{ in: string; name: string; schema?: unknown }>;
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<
    string,
    { description?: string; content?: Record<string, { schema?: unknown }> }
  >;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components?: { securitySchemes?: Record<string, unknown> };
}

/** Operations open to anyone that take no input at all: no error of theirs to declare. */
const NO_INPUT = new Set(['GET /healthz', 'GET /readyz', 'GET /metrics']);

describe('OpenAPI: every operation fully described', () => {
  let service: Service;
  let doc: Document;
  let url: string;
  before(async () => {
    const config = testConfig(
      {},
      'callout: {twilio: {accountSid: AC0123, authToken: tw-token, publicUrl: "http://127.0.0.1"}}\n',
    );
    service = createService({ config, modules: featureModules() });
    ({ url } = await service.start());
    const response = await fetch(`${url}/docs/json`);
    assert.equal(response.status, 200);
    doc = (await response.json()) as Document;
  });
  after(() => service.stop());

  /**
   * Checks a real answer against the schema its operation declares for its status and
   * content type (answers are serialized as the handlers return them: the schema must say
   * what clients really get).
   */
  async function assertDeclared(path: string, method: string, response: Response) {
    const op = doc.paths[path]?.[method];
    assert.ok(op, `${method} ${path} documented`);
    const declared = op.responses?.[String(response.status)];
    assert.ok(declared, `${method} ${path}: status ${response.status} declared`);
    const type = (response.headers.get('content-type') ?? '').split(';')[0] ?? '';
    const media = declared.content?.[type];
    assert.ok(media?.schema, `${method} ${path} ${response.status}: ${type} declared`);
    const text = await response.text();
    const body = type === 'application/json' ? JSON.parse(text) : text;
    const check = Compile(media.schema as never);
    assert.ok(
      check.Check(body),
      `${method} ${path} ${response.status}: ${text.slice(0, 300)}: ${JSON.stringify([...check.Errors(body)].slice(0, 3))}`,
    );
  }

  test('real answers, successes and errors, match their declared schemas', async () => {
    const json = { 'content-type': 'application/json' };
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    await assertDeclared('/healthz', 'get', await fetch(`${url}/healthz`));
    await assertDeclared('/readyz', 'get', await fetch(`${url}/readyz`));
    await assertDeclared('/metrics', 'get', await fetch(`${url}/metrics`));
    // Barista: the seed's curl, its history, an unknown event, a bad field.
    const created = await postCurlStyle(url, seedFields('1'));
    const { eventid } = (await created.clone().json()) as { eventid: string };
    await assertDeclared('/api/v1/call', 'post', created);
    await assertDeclared(
      '/api/v1/call',
      'get',
      await fetch(`${url}/api/v1/call?eventid=${eventid}`),
    );
    await assertDeclared('/api/v1/call', 'get', await fetch(`${url}/api/v1/call?eventid=NOPE`));
    await assertDeclared(
      '/api/v1/call',
      'post',
      await postCurlStyle(
        url,
        [...seedFields('1'), ['frequency', '99'] as [string, string]].slice(1),
      ),
    );
    // Gong: the list, an unknown message, a missing text.
    await assertDeclared('/messages', 'get', await fetch(`${url}/messages?all=1`));
    await assertDeclared(
      '/messages/{id}',
      'delete',
      await fetch(`${url}/messages/nope`, { method: 'DELETE' }),
    );
    await assertDeclared(
      '/messages/tts/add',
      'post',
      await fetch(`${url}/messages/tts/add`, { method: 'POST', headers: form, body: 'start=' }),
    );
    // CTI: published, refused.
    const cti = (body: unknown) =>
      fetch(`${url}/api/cti/user_status_update`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify(body),
      });
    await assertDeclared(
      '/api/cti/{event}',
      'post',
      await cti({ user_id: 7, xivo_id: '2e9c4e8a-0b4e-4d6f-9f5b-6c2a9e1c3d40', status: 'away' }),
    );
    await assertDeclared('/api/cti/{event}', 'post', await cti({ user_id: 'x' }));
    // The event stream: a malformed binding key.
    await assertDeclared('/api/events', 'get', await fetch(`${url}/api/events?bind=a..%23%23x`));
    // Push: no credential, a bad incoming call, an unknown call response.
    await assertDeclared(
      '/api/check-in/',
      'post',
      await fetch(`${url}/api/check-in/`, { method: 'POST', headers: form, body: 'sip_user_id=1' }),
    );
    await assertDeclared(
      '/api/incoming-call/',
      'post',
      await fetch(`${url}/api/incoming-call/`, { method: 'POST', headers: form, body: 'x=1' }),
    );
    await assertDeclared(
      '/api/call-response/',
      'post',
      await fetch(`${url}/api/call-response/`, {
        method: 'POST',
        headers: form,
        body: 'unique_key=nope&message_start_time=1700000000.5',
      }),
    );
  });

  const operations = () =>
    Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => ({
        name: `${method.toUpperCase()} ${path}`,
        path,
        method,
        op,
      })),
    );

  test('every route of every feature is documented', () => {
    const names = operations().map((o) => o.name);
    // 3 operations, CTI and events, Barista 2 + Twilio 3, Gong 4, push 11, console 7.
    assert.equal(names.length, 32, names.join('\n'));
  });

  test('each operation has a unique operationId', () => {
    const ids = operations().map((o) => o.op.operationId);
    for (const [i, id] of ids.entries()) {
      assert.equal(typeof id, 'string', operations()[i]?.name);
      assert.match(id as string, /^[a-z][A-Za-z]+$/);
    }
    assert.equal(new Set(ids).size, ids.length, 'operationIds unique');
  });

  test('each operation declares its security (or explicitly none), with known schemes', () => {
    const schemes = doc.components?.securitySchemes ?? {};
    assert.ok(Object.keys(schemes).length >= 3, 'securitySchemes defined');
    for (const { name, op } of operations()) {
      assert.ok(Array.isArray(op.security), `${name}: security`);
      for (const requirement of op.security ?? []) {
        for (const scheme of Object.keys(requirement)) {
          assert.ok(scheme in schemes, `${name}: unknown scheme ${scheme}`);
        }
      }
    }
    const security = (name: string) => operations().find((o) => o.name === name)?.op.security;
    assert.deepEqual(security('GET /healthz'), []);
    assert.ok(security('POST /api/v1/call')?.some((r) => 'bearerToken' in r));
    assert.ok(security('POST /api/check-in/')?.some((r) => 'pushAccount' in r));
    assert.ok(security('POST /api/v1/call/twilio/status')?.some((r) => 'twilioSignature' in r));
  });

  test('each operation declares its success and its error answers, each with a body schema', () => {
    for (const { name, op } of operations()) {
      const statuses = Object.keys(op.responses ?? {});
      assert.ok(
        statuses.some((s) => /^2\d\d$/.test(s)),
        `${name}: a 2xx response (${statuses})`,
      );
      if (!NO_INPUT.has(name)) {
        assert.ok(
          statuses.some((s) => /^4\d\d$/.test(s)),
          `${name}: a 4xx response (${statuses})`,
        );
      }
      for (const [status, response] of Object.entries(op.responses ?? {})) {
        assert.equal(typeof response.description, 'string', `${name} ${status}: description`);
        if (status === '204') continue;
        const content = Object.values(response.content ?? {});
        assert.ok(content.length > 0, `${name} ${status}: content`);
        for (const media of content) assert.ok(media.schema, `${name} ${status}: schema`);
      }
    }
  });

  test('each operation that takes input declares it (body, query or path parameters)', () => {
    for (const { name, path, method, op } of operations()) {
      if (NO_INPUT.has(name)) continue;
      const parameters = op.parameters ?? [];
      for (const [, param] of path.matchAll(/\{([^}]+)\}/g)) {
        assert.ok(
          parameters.some((p) => p.in === 'path' && p.name === param),
          `${name}: path parameter ${param}`,
        );
      }
      if (method === 'post') {
        const content = op.requestBody?.content ?? {};
        assert.ok(Object.keys(content).length > 0, `${name}: request body`);
        for (const [type, media] of Object.entries(content)) {
          assert.ok(media.schema, `${name}: ${type} schema`);
        }
      } else if (method === 'delete') {
        assert.ok(
          parameters.length > 0 || op.requestBody !== undefined,
          `${name}: its query, path or body`,
        );
      }
      // A GET without parameters takes no input (the console's schedule, for one).
      for (const parameter of parameters) {
        assert.ok(parameter.schema, `${name}: schema of ${parameter.in} ${parameter.name}`);
      }
    }
  });

  test('the form-encoded seed APIs declare their form bodies', () => {
    const body = (name: string) =>
      Object.keys(operations().find((o) => o.name === name)?.op.requestBody?.content ?? {});
    for (const name of [
      'POST /api/v1/call',
      'POST /messages/tts/add',
      'POST /api/incoming-call/',
    ]) {
      assert.ok(body(name).includes('application/x-www-form-urlencoded'), name);
    }
    assert.deepEqual(body('POST /messages/add'), ['multipart/form-data']);
  });
});
