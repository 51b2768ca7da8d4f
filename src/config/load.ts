/**
 * Loading the configuration: YAML file, then `SWITCHBOARD_*` environment variables, then CLI
 * overrides, then defaults, then validation against {@link ConfigSchema}.
 *
 * Precedence (highest first): `overrides` (CLI flags) > environment > overlay files
 * (`conf.d/*.yaml` next to the main file, in lexical order) > the main file > schema defaults.
 * Errors name the key and never echo the value (values may be secrets).
 *
 * Environment variable names and conversion are in `./env.ts`, validation and its messages in
 * `./validate.ts`; both are re-exported here.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { Value } from 'typebox/value';
import { parseDocument } from 'yaml';
import { amiServerOptions } from '../ami/client.ts';
import { configEnvSettings, ENV_PREFIX, ENV_RESERVED, fromEnv, screaming } from './env.ts';
import { type Config, ConfigSchema } from './schema.ts';
import { type ConfigProblem, isObject, validateConfig } from './validate.ts';

export { configEnvSettings, type EnvSetting } from './env.ts';
export {
  type ConfigProblem,
  REMOVED_KEYS,
  TRUST_PROXY_TRUE,
  validateConfig,
} from './validate.ts';

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
 * Fills missing keys with the schema's defaults (TypeBox `Value.Default`: defaults are cloned,
 * objects, maps and list items walked, `value` filled in place). Values of the wrong type are
 * left for validation.
 */
function applyDefaults(value: unknown): unknown {
  return Value.Default(ConfigSchema, value);
}

/** The schema's defaults: what an empty file gives, before derived values (instance uuid). */
export function defaultConfig(): Config {
  return applyDefaults({}) as Config;
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
  const config = applyDefaults(raw);
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
