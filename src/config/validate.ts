/**
 * Validation of a complete configuration against {@link ConfigSchema}: TypeBox's errors turned
 * into {@link ConfigProblem}s that name the key and never the value, and the rules a schema
 * cannot say (`semanticChecks`).
 *
 * @module
 */
import type { TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { type Config, ConfigSchema, FORMAT_MESSAGES } from './schema.ts';

type Json = Record<string, unknown>;
type Schema = TSchema & Json;

/** One problem found in a configuration: the key (dotted path, `[i]` for list items) and why. */
export interface ConfigProblem {
  /** Dotted path, e.g. `amqp.url`, `ami.servers[0].url`, or an environment variable name. */
  key: string;
  /** What is wrong, without the value. */
  reason: string;
  /** Where the value came from when not the file: `SWITCHBOARD_AMQP_URL`, `--amqp`. */
  source?: string;
}

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Dotted path → display key: `['ami','servers',0,'url']` → `ami.servers[0].url`. */
function displayKey(path: Array<string | number>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out === '' ? '(root)' : out;
}

/** JSON pointer → path; a segment is a number only where `root` has an array (lists). */
function pointerToPath(pointer: string, root?: unknown): Array<string | number> {
  if (pointer === '') return [];
  const out: Array<string | number> = [];
  let node = root;
  for (const raw of pointer.slice(1).split('/')) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const index = Array.isArray(node) && /^\d+$/.test(part) ? Number(part) : undefined;
    out.push(index ?? part);
    node = Array.isArray(node) ? node[index ?? -1] : isObject(node) ? node[part] : undefined;
  }
  return out;
}

function resolveSchema(pointer: string): Schema | undefined {
  let node: unknown = ConfigSchema;
  for (const part of pointerToPath(pointer.replace(/^#/, ''))) {
    if (!isObject(node)) return undefined;
    node = node[part];
  }
  return isObject(node) ? (node as Schema) : undefined;
}

interface TypeBoxError {
  keyword: string;
  schemaPath: string;
  instancePath: string;
  params: Record<string, unknown>;
  message: string;
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/**
 * Keys that existed and never had an effect, removed in 0.1 (issue 13): a file still setting
 * one is refused with this reason (what to do instead), not silently accepted.
 */
export const REMOVED_KEYS: Readonly<Record<string, string>> = {
  'webhooks.signatureHeader':
    'removed (it never had an effect): the signature is always sent in X-Switchboard-Signature (docs/bus.md, Webhooks); delete the key',
  'amqp.confirm':
    'removed (it never had an effect): the AMQP bus always uses publisher confirms, which its buffering and in-order re-send rely on; delete the key',
  'tts.sampleRateHz':
    'removed (it never had an effect): files for Asterisk are always written as 8 kHz 16-bit mono (docs/announce.md); delete the key',
};

/** Turns one TypeBox error into problems (several for `required`). Never includes values. */
function describe(error: TypeBoxError, root: unknown): ConfigProblem[] {
  const path = pointerToPath(error.instancePath, root);
  const key = displayKey(path);
  const p = error.params;
  switch (error.keyword) {
    case 'boolean':
      return [{ key, reason: REMOVED_KEYS[key] ?? 'unknown key' }];
    case 'not':
      // A key of a closed map (additionalProperties: CLOSED, a Never, in section.ts).
      if (error.schemaPath.endsWith('/additionalProperties')) {
        return [{ key, reason: REMOVED_KEYS[key] ?? 'unknown key' }];
      }
      return [{ key, reason: error.message }];
    case 'additionalProperties':
      return []; // reported per key by the 'boolean' (objects) or 'not' (maps) errors
    case 'required':
      return ((p.requiredProperties as string[]) ?? []).map((name) => ({
        key: displayKey([...path, name]),
        reason: 'required',
      }));
    case 'format': {
      const format = String(p.format);
      const base = format.replace(/-or-empty$/, '');
      const message = FORMAT_MESSAGES[base] ?? `expected format ${base}`;
      return [{ key, reason: format === base ? message : `${message}, or empty` }];
    }
    case 'type':
      // A failing union reports every variant's type: one 'anyOf' problem says it instead.
      if (/\/anyOf\/\d+$/.test(error.schemaPath)) return [];
      return [{ key, reason: `expected ${article(String(p.type))}` }];
    case 'anyOf': {
      const description = resolveSchema(error.schemaPath)?.description;
      return [{ key, reason: `expected ${description ?? 'another kind of value'}` }];
    }
    case 'enum':
      return [{ key, reason: `expected one of: ${(p.allowedValues as unknown[]).join(', ')}` }];
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return [{ key, reason: `expected a number ${String(p.comparison)} ${String(p.limit)}` }];
    case 'minLength':
      return [{ key, reason: `expected at least ${String(p.limit)} characters` }];
    case 'maxLength':
      return [{ key, reason: `expected at most ${String(p.limit)} characters` }];
    case 'pattern': {
      const description = resolveSchema(error.schemaPath)?.description;
      return [
        {
          key,
          reason: `does not match ${String(p.pattern)}${description ? ` (${description})` : ''}`,
        },
      ];
    }
    default:
      return [{ key, reason: error.message }];
  }
}

/**
 * TypeBox errors of the whole object, checked section by section (TypeBox's iterator may stop
 * early inside a failing section; sections are independent, so each is checked on its own).
 */
function allErrors(value: unknown): TypeBoxError[] {
  if (!isObject(value)) return [...(Value.Errors(ConfigSchema, value) as Iterable<TypeBoxError>)];
  const errors: TypeBoxError[] = [];
  const properties = ConfigSchema.properties as Record<string, TSchema>;
  for (const key of Object.keys(value)) {
    if (!(key in properties)) {
      errors.push({
        keyword: 'boolean',
        schemaPath: '#',
        instancePath: `/${key}`,
        params: {},
        message: '',
      });
    }
  }
  for (const [key, schema] of Object.entries(properties)) {
    for (const error of Value.Errors(schema, value[key]) as Iterable<TypeBoxError>) {
      errors.push({
        ...error,
        instancePath: `/${key}${error.instancePath}`,
        schemaPath: `#/properties/${key}${error.schemaPath.slice(1)}`,
      });
    }
  }
  return errors;
}

/**
 * Why `http.trustProxy: true` is refused: trusting every hop lets any client claim any
 * address (`X-Forwarded-For: 127.0.0.1` would pass as loopback and could place calls).
 */
export const TRUST_PROXY_TRUE =
  'true would trust X-Forwarded-For from every client (anyone could claim to be 127.0.0.1); ' +
  'list the reverse proxies instead, e.g. [127.0.0.1]';

/** Validates a complete configuration object; returns every problem (empty when valid). */
export function validateConfig(value: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const seen = new Set<string>();
  for (const error of allErrors(value)) {
    for (const problem of describe(error, value)) {
      const id = `${problem.key}\0${problem.reason}`;
      if (seen.has(id)) continue;
      seen.add(id);
      problems.push(problem);
    }
  }
  if (problems.length === 0) problems.push(...semanticChecks(value as Config));
  return problems;
}

function semanticChecks(config: Config): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (config.http.trustProxy === true) {
    problems.push({ key: 'http.trustProxy', reason: TRUST_PROXY_TRUE });
  }
  const pairs: Array<[string, { reconnectMinMs: number; reconnectMaxMs: number }]> = [
    ['amqp', config.amqp],
    ...config.ami.servers.map((s, i): [string, typeof s] => [`ami.servers[${i}]`, s]),
  ];
  for (const [key, value] of pairs) {
    if (value.reconnectMinMs > value.reconnectMaxMs) {
      problems.push({ key: `${key}.reconnectMinMs`, reason: 'must not exceed reconnectMaxMs' });
    }
  }
  const names = new Set<string>();
  config.ami.servers.forEach((server, i) => {
    if (server.name !== '' && names.has(server.name)) {
      problems.push({ key: `ami.servers[${i}].name`, reason: 'duplicate server name' });
    }
    names.add(server.name);
  });
  const hooks = new Map<string, number>();
  config.webhooks.endpoints.forEach((endpoint, i) => {
    const first = hooks.get(endpoint.name);
    if (endpoint.name !== '' && first !== undefined) {
      problems.push({
        key: `webhooks.endpoints[${i}].name`,
        reason: `duplicate webhook name (same as webhooks.endpoints[${first}])`,
      });
    } else hooks.set(endpoint.name, i);
  });
  problems.push(...pushChecks(config.push));
  return problems;
}

/** The `push` rules a schema cannot say: old and new account-API keys, duplicate apps. */
function pushChecks(push: Config['push']): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (push.accountApi.url !== '' && push.accountApi.baseUrl !== '') {
    problems.push({
      key: 'push.accountApi.url',
      reason:
        'replaced by push.accountApi.baseUrl + push.accountApi.profilePath; set only those (url is the old single-URL form)',
    });
  }
  const apps = new Set<string>();
  push.apps.forEach((app, i) => {
    for (const platform of app.platforms) {
      const id = `${app.id}\0${platform}`;
      if (apps.has(id)) {
        problems.push({
          key: `push.apps[${i}]`,
          reason: `app ${app.id} is listed twice for ${platform}`,
        });
      }
      apps.add(id);
    }
  });
  return problems;
}
