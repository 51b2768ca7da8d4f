/**
 * Loading the configuration: YAML file, then `SWITCHBOARD_*` environment variables, then CLI
 * overrides, then defaults, then validation against {@link ConfigSchema}.
 *
 * Precedence (highest first): `overrides` (CLI flags) > environment > overlay files
 * (`conf.d/*.yaml` next to the main file, in lexical order) > the main file > schema defaults.
 * Errors name the key and never echo the value (values may be secrets).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import type { TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { parseDocument } from 'yaml';
import { amiServerOptions } from '../ami/client.ts';
import { type Config, ConfigSchema, FORMAT_MESSAGES } from './schema.ts';

/** One problem found in a configuration: the key (dotted path, `[i]` for list items) and why. */
export interface ConfigProblem {
  /** Dotted path, e.g. `amqp.url`, `ami.servers[0].url`, or an environment variable name. */
  key: string;
  /** What is wrong, without the value. */
  reason: string;
  /** Where the value came from when not the file: `SWITCHBOARD_AMQP_URL`, `--amqp`. */
  source?: string;
}

/**
 * Thrown by {@link loadConfig} when the configuration is invalid. `problems` lists every
 * problem found; `message` has one line per problem: `config: <key>: <reason>`.
 */
export class ConfigError extends Error {
  /** Every problem found, in schema order. */
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(
      problems
        .map((p) => `config: ${p.key}${p.source ? ` (from ${p.source})` : ''}: ${p.reason}`)
        .join('\n'),
    );
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Values from command-line flags of `switchboard serve`; each wins over env and file. */
export interface ConfigOverrides {
  /** `--listen HOST:PORT` → `http.listen`. */
  listen?: string;
  /** `--ami URL` (repeatable) → replaces `ami.servers` with one server per URL. */
  ami?: string[];
  /** `--amqp URL` → `amqp.url`. */
  amqp?: string;
  /** `--database URL` → `database.url`. */
  database?: string;
  /** `--redis URL` → `redis.url`. */
  redis?: string;
}

/** The configuration file `switchboard` commands read when neither `--config` nor `SWITCHBOARD_CONFIG` is given (only when it exists). */
export const DEFAULT_CONFIG_FILE = '/etc/switchboard/switchboard.yaml';

/** Inputs of {@link loadConfig}. */
export interface LoadConfigOptions {
  /**
   * YAML file path. Undefined: `env.SWITCHBOARD_CONFIG` if set, else `defaultFile` when it
   * exists, else no file (defaults only). A file given but unreadable is an error.
   */
  file?: string;
  /**
   * The file used when neither `file`, `text` nor `SWITCHBOARD_CONFIG` is given, and only if
   * it exists (the commands pass {@link DEFAULT_CONFIG_FILE}). Default: none.
   */
  defaultFile?: string;
  /** YAML text used instead of reading `file` (`file` then only names it in errors). */
  text?: string;
  /** Environment (default `process.env`); `SWITCHBOARD_<SECTION>_<KEY>` variables override. */
  env?: Record<string, string | undefined>;
  /** CLI flag values, which win over env and file. */
  overrides?: ConfigOverrides;
}

type Json = Record<string, unknown>;
type Schema = TSchema & Json;

const ENV_PREFIX = 'SWITCHBOARD_';
/** Environment variables with the prefix that are not settings. */
const ENV_RESERVED = new Set(['SWITCHBOARD_CONFIG']);

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function screaming(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
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

/** A leaf setting reachable from the environment. */
export interface EnvSetting {
  /** Environment variable, e.g. `SWITCHBOARD_PUSH_APNS_KEY_ID`. */
  name: string;
  /** Path in the configuration, e.g. `['push', 'apns', 'keyId']`. */
  path: string[];
  /** Schema of the value (used to convert the string). */
  schema: Schema;
}

function collectEnv(schema: Schema, path: string[], out: EnvSetting[]): void {
  const properties = schema.properties as Record<string, Schema> | undefined;
  if (schema.type === 'object' && properties) {
    for (const [key, child] of Object.entries(properties)) collectEnv(child, [...path, key], out);
    return;
  }
  out.push({ name: ENV_PREFIX + path.map(screaming).join('_'), path, schema });
}

/**
 * Every environment variable that sets a key: `SWITCHBOARD_` + the path's names in
 * SCREAMING_SNAKE_CASE joined by `_` (camelCase split: `pingIntervalMs` → `PING_INTERVAL_MS`).
 * Objects are walked; lists and maps are one variable.
 */
export function configEnvSettings(): EnvSetting[] {
  const out: EnvSetting[] = [];
  collectEnv(ConfigSchema as unknown as Schema, [], out);
  return out;
}

/**
 * How a plain (non-JSON) list item from the environment becomes an object, per list key.
 * Items are separated by commas or whitespace.
 */
const LIST_SHORTHANDS: Record<string, (item: string) => Json> = {
  'ami.servers': (url) => ({ url }),
  'webhooks.endpoints': (url) => ({ url }),
  'auth.tokens': (token) => ({ token }),
  'auth.users': (pair) => splitUserPassword(pair),
  'push.users': (pair) => splitUserPassword(pair),
  'push.apps': (id) => ({ id }),
};

function splitUserPassword(pair: string): Json {
  const colon = pair.indexOf(':');
  return colon < 0
    ? { username: pair }
    : { username: pair.slice(0, colon), password: pair.slice(colon + 1) };
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

/** Converts one environment string to the value its schema expects (invalid: left as is). */
function fromEnv(setting: EnvSetting, raw: string): unknown {
  const { schema } = setting;
  const text = raw.trim();
  if (schema.type === 'integer' || schema.type === 'number') {
    return /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : raw;
  }
  if (schema.type === 'boolean') {
    const lower = text.toLowerCase();
    if (TRUE.has(lower)) return true;
    if (FALSE.has(lower)) return false;
    return raw;
  }
  if (schema.type === 'array') {
    if (text.startsWith('[')) return parseYamlValue(text);
    const items = text.split(/[\s,]+/).filter((s) => s !== '');
    const shorthand = LIST_SHORTHANDS[setting.path.join('.')];
    if (shorthand) return items.map(shorthand);
    const itemType = (schema.items as Schema | undefined)?.type;
    return itemType === 'integer' || itemType === 'number'
      ? items.map((s) => (/^-?\d+$/.test(s) ? Number(s) : s))
      : items;
  }
  if (schema.type === 'object') return parseYamlValue(text);
  const variants = (schema.anyOf as Schema[] | undefined) ?? [];
  if (variants.some((v) => v.type === 'boolean') && variants.some((v) => v.type === 'array')) {
    // false | list (http.trustProxy): a boolean word, else the list.
    const lower = text.toLowerCase();
    if (TRUE.has(lower)) return true;
    if (FALSE.has(lower) || text === '') return false;
    const list = variants.find((v) => v.type === 'array') as Schema;
    return fromEnv({ ...setting, schema: list }, raw);
  }
  return raw;
}

function parseYamlValue(text: string): unknown {
  const doc = parseDocument(text);
  return doc.errors.length > 0 ? text : doc.toJS();
}

function setPath(target: Json, path: Array<string>, value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (!isObject(next)) {
      const fresh: Json = {};
      node[key] = fresh;
      node = fresh;
    } else node = next;
  }
  node[path[path.length - 1] as string] = value;
}

/**
 * Fills missing keys with the schema's defaults (a deep copy), walking objects, maps
 * (`patternProperties`) and list items. Values of the wrong type are left for validation.
 */
function applyDefaults(schema: Schema, value: unknown): unknown {
  let current = value;
  if (current === undefined && 'default' in schema) current = structuredClone(schema.default);
  if (schema.type === 'object' && isObject(current)) {
    const properties = schema.properties as Record<string, Schema> | undefined;
    if (properties) {
      for (const [key, child] of Object.entries(properties)) {
        const filled = applyDefaults(child, current[key]);
        if (filled !== undefined) current[key] = filled;
      }
    }
    const patterns = schema.patternProperties as Record<string, Schema> | undefined;
    if (patterns) {
      for (const [key, child] of Object.entries(current)) {
        for (const [pattern, itemSchema] of Object.entries(patterns)) {
          if (new RegExp(pattern).test(key)) current[key] = applyDefaults(itemSchema, child);
        }
      }
    }
  }
  if (schema.type === 'array' && Array.isArray(current) && schema.items) {
    const items = schema.items as Schema;
    current = current.map((element) => applyDefaults(items, element));
  }
  return current;
}

/** The schema's defaults: what an empty file gives, before derived values (instance uuid). */
export function defaultConfig(): Config {
  return applyDefaults(ConfigSchema as unknown as Schema, {}) as Config;
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
    case 'additionalProperties':
      return []; // reported per key by the 'boolean' errors
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

/** A stable UUID (RFC 4122 layout, version 5 bits) derived from the host and instance name. */
function derivedUuid(name: string): string {
  const hex = createHash('sha1').update(`switchboard:${hostname()}:${name}`).digest('hex');
  const variant = ((Number.parseInt(hex.slice(16, 17), 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** The first line of a YAML error without its trailing position (`at line 3, column 1:`). */
function yamlReason(message: string): string {
  return (message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
}

function readYaml(
  file: string | undefined,
  text: string | undefined,
): {
  value: Json;
  problems: ConfigProblem[];
} {
  let source = text;
  const label = file ?? 'file';
  if (source === undefined && file !== undefined) {
    try {
      source = readFileSync(file, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      return { value: {}, problems: [{ key: label, reason: `cannot read the file (${code})` }] };
    }
  }
  if (source === undefined) return { value: {}, problems: [] };
  const doc = parseDocument(source, { prettyErrors: true, uniqueKeys: true });
  const [first] = doc.errors;
  if (first !== undefined) {
    // The first error only: the ones after it usually follow from it (same place).
    const at = first.linePos?.[0];
    return {
      value: {},
      problems: [
        {
          key: at === undefined ? label : `${label}:${at.line}:${at.col}`,
          reason: `invalid YAML: ${yamlReason(first.message)} (${first.code})`,
        },
      ],
    };
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return { value: {}, problems: [] };
  if (!isObject(value)) {
    return { value: {}, problems: [{ key: label, reason: 'expected a mapping of sections' }] };
  }
  return { value, problems: [] };
}

/** The files a configuration is read from (see {@link resolveConfigFiles}). */
export interface ConfigFiles {
  /** The main file; undefined: none (defaults, environment and flags only). */
  main: string | undefined;
  /** The overlay files, in the order they are merged (lexical order of their names). */
  overlays: string[];
  /** Why the overlay directory could not be listed (it exists but is unreadable). */
  problem?: ConfigProblem;
}

/** Name of the overlay directory next to the main file. */
export const OVERLAY_DIR = 'conf.d';

/**
 * Which files {@link loadConfig} reads: the main file (`file`, else `SWITCHBOARD_CONFIG`,
 * else `defaultFile` when it exists), then every `*.yaml` / `*.yml` file of the `conf.d/`
 * directory next to it (names starting with `.` skipped), sorted by name (`10-ami.yaml`
 * before `20-webhooks.yaml`), as Wazo's services read `/etc/wazo-<service>/conf.d/`. With `text`,
 * no overlays.
 */
export function resolveConfigFiles(
  options: Pick<LoadConfigOptions, 'file' | 'text' | 'env' | 'defaultFile'> = {},
): ConfigFiles {
  const env = options.env ?? process.env;
  if (options.text !== undefined) return { main: options.file, overlays: [] };
  let main = options.file ?? (env.SWITCHBOARD_CONFIG || undefined);
  if (main === undefined && options.defaultFile !== undefined && existsSync(options.defaultFile)) {
    main = options.defaultFile;
  }
  if (main === undefined) return { main, overlays: [] };
  const dir = path.join(path.dirname(main), OVERLAY_DIR);
  let names: string[];
  try {
    names = readdirSync(dir, { withFileTypes: true })
      .filter((entry) => !entry.isDirectory() && /^[^.].*\.ya?ml$/.test(entry.name))
      .map((entry) => entry.name)
      .sort();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'ENOENT' || code === 'ENOTDIR') return { main, overlays: [] };
    return {
      main,
      overlays: [],
      problem: { key: dir, reason: `cannot read the overlay directory (${code})` },
    };
  }
  return { main, overlays: names.map((name) => path.join(dir, name)) };
}

/**
 * Merges `overlay` into `target` (in place), the way Wazo merges its `conf.d` files: mappings
 * are merged key by key, recursively; any other value (a list, a string, a number) replaces
 * the one before it; `null` removes the key (back to the default). Records in `sources`
 * which file set each path.
 */
function mergeInto(
  target: Json,
  overlay: Json,
  file: string,
  at: string[],
  sources: Map<string, string>,
): void {
  for (const [key, value] of Object.entries(overlay)) {
    const here = [...at, key];
    const current = Object.hasOwn(target, key) ? target[key] : undefined;
    if (value === null) {
      delete target[key];
    } else if (isObject(value) && isObject(current)) {
      mergeInto(current, value, file, here, sources);
      continue;
    } else {
      // defineProperty: a key named __proto__ stays a key (then reported as unknown).
      Object.defineProperty(target, key, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    sources.set(here.join('.'), file);
  }
}

/**
 * Loads, merges and validates the configuration.
 *
 * Order: the YAML file (or `text`; {@link resolveConfigFiles} says which file), then its
 * `conf.d/` overlay files merged over it (mappings merged key by key, lists and other values
 * replaced, `null` removes a key), then each `SWITCHBOARD_*` variable of `env` (see
 * {@link configEnvSettings} for the names; lists are comma- or space-separated, or a JSON/YAML
 * flow list), then `overrides`, then schema defaults. Derived values: an empty `instance.uuid`
 * becomes a stable UUID from the host name and `instance.name`; an empty `ami.servers[].name`
 * becomes `host:port`.
 *
 * @returns the complete, valid configuration.
 * @throws {ConfigError} listing every problem (unreadable file, invalid YAML as
 *   `file:line:column`, unknown keys or `SWITCHBOARD_<SECTION>_*` variables, invalid values),
 *   each naming its key and, for a value from an overlay file or the environment, its origin.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const files = resolveConfigFiles(options);
  const { value: raw, problems } = readYaml(files.main, options.text);
  const sources = new Map<string, string>();
  if (files.problem !== undefined) problems.push(files.problem);
  for (const overlay of files.overlays) {
    const read = readYaml(overlay, undefined);
    problems.push(...read.problems);
    mergeInto(raw, read.value, overlay, [], sources);
  }
  const fileUnusable = problems.length > 0;

  const settings = configEnvSettings();
  const byName = new Map(settings.map((s) => [s.name, s]));
  const sections = new Set(settings.map((s) => `${ENV_PREFIX}${screaming(s.path[0] ?? '')}_`));
  for (const [name, rawValue] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || rawValue === undefined || ENV_RESERVED.has(name)) continue;
    const setting = byName.get(name);
    if (!setting) {
      if ([...sections].some((prefix) => name.startsWith(prefix))) {
        problems.push({ key: name, reason: 'unknown environment variable' });
      }
      continue;
    }
    setPath(raw, setting.path, fromEnv(setting, rawValue));
    sources.set(setting.path.join('.'), name);
  }

  const o = options.overrides ?? {};
  const flags: Array<[string[], unknown, string]> = [
    [['http', 'listen'], o.listen, '--listen'],
    [['ami', 'servers'], o.ami?.map((url) => ({ url })), '--ami'],
    [['amqp', 'url'], o.amqp, '--amqp'],
    [['database', 'url'], o.database, '--database'],
    [['redis', 'url'], o.redis, '--redis'],
  ];
  for (const [path, value, flag] of flags) {
    if (value === undefined) continue;
    setPath(raw, path, value);
    sources.set(path.join('.'), flag);
  }

  // Which ami.servers[] set `auth` themselves (the default must not contradict ?auth=).
  const rawServers = isObject(raw) && isObject(raw.ami) ? raw.ami.servers : undefined;
  const explicitAuth = Array.isArray(rawServers)
    ? rawServers.map((server) => isObject(server) && server.auth !== undefined)
    : [];
  const config = applyDefaults(ConfigSchema as unknown as Schema, raw);
  if (!fileUnusable) {
    for (const problem of validateConfig(config)) {
      // The most precise origin: the longest path that is the key or contains it.
      const source = [...sources]
        .filter(
          ([at]) =>
            problem.key === at ||
            problem.key.startsWith(`${at}.`) ||
            problem.key.startsWith(`${at}[`),
        )
        .sort(([a], [b]) => b.length - a.length)[0]?.[1];
      problems.push(source ? { ...problem, source } : problem);
    }
  }
  if (problems.length === 0) {
    // One meaning of a server (amiServerOptions): the URL's name= and auth= fill the keys,
    // so that what is printed (config check --print) is what serve uses.
    (config as Config).ami.servers.forEach((server, i) => {
      try {
        const resolved = amiServerOptions({
          url: server.url,
          name: server.name,
          ...(explicitAuth[i] === true ? { auth: server.auth as 'plain' | 'md5' } : {}),
        });
        server.name = resolved.name;
        server.auth = resolved.auth;
      } catch (error) {
        const key = `ami.servers[${i}].url`;
        const source = [...sources].find(([at]) => key.startsWith(at))?.[1];
        const problem = { key, reason: (error as Error).message };
        problems.push(source ? { ...problem, source } : problem);
      }
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const valid = config as Config;
  if (valid.instance.uuid === '') valid.instance.uuid = derivedUuid(valid.instance.name);
  nameWebhooks(valid.webhooks.endpoints);
  return valid;
}

/**
 * Fills empty `webhooks.endpoints[].name`: the URL's host (`hooks.example.com`,
 * `10.0.0.5:8443`; never its path or query, which may carry a token), with `-<index>` added
 * when another endpoint has the same name.
 */
function nameWebhooks(endpoints: Config['webhooks']['endpoints']): void {
  const derived = endpoints.map((endpoint) => {
    if (endpoint.name !== '') return endpoint.name;
    try {
      return new URL(endpoint.url).host;
    } catch {
      return 'webhook';
    }
  });
  endpoints.forEach((endpoint, i) => {
    if (endpoint.name !== '') return;
    const name = derived[i] as string;
    const taken = derived.filter((other) => other === name).length > 1;
    endpoint.name = taken ? `${name}-${i}` : name;
  });
}

export { REDACTED, redactConfig, redactUrl } from '../util/redact.ts';
