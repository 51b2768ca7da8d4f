/**
 * AMI connection settings from a URL (`tcp://user:secret@host:5038?auth=md5`) or a config
 * `ami.servers` entry ({@link parseAmiUrl}, {@link amiServerOptions}), printable without the
 * secret. Re-exported by `client.ts`.
 *
 * @module
 */

import { REDACTED } from '../util/redact.ts';
import type { AmiClientOptions } from './client.ts';
import { AMI_CLIENT_DEFAULTS } from './defaults.ts';
import { AmiUrlError } from './errors.ts';

const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

/** The options as safe to print: `secret` replaced by `***`. */
export function redactOptions<T extends { secret?: string }>(options: T): T {
  return { ...options, secret: REDACTED };
}

/** Replaces the password of an `scheme://user:password@host` string by `***`. */
function redactUrl(url: string): string {
  const schemeEnd = url.indexOf('//');
  if (schemeEnd === -1) return url.replace(/:[^:@/]*@/, `:${REDACTED}@`);
  const authorityStart = schemeEnd + 2;
  let authorityEnd = url.length;
  for (const c of ['/', '?', '#']) {
    const i = url.indexOf(c, authorityStart);
    if (i !== -1 && i < authorityEnd) authorityEnd = i;
  }
  const at = url.lastIndexOf('@', authorityEnd);
  if (at < authorityStart) return url;
  const colon = url.indexOf(':', authorityStart);
  if (colon === -1 || colon > at) return url;
  return `${url.slice(0, colon + 1)}${REDACTED}${url.slice(at)}`;
}

function decode(part: string, what: string, url: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new AmiUrlError(`invalid percent-encoding in the ${what} of AMI URL ${redactUrl(url)}`);
  }
}

/**
 * Parses `tcp://user:secret@host:5038?auth=md5&name=pbx1` (or `tls://...`) into client
 * options. User and secret are percent-decoded. Query parameters: `auth` (`plain` | `md5`),
 * `name`, `events`. The port defaults to 5038. The returned object prints (`JSON.stringify`,
 * `util.inspect`, `String()`) with the secret replaced by `***`, also after spreading.
 *
 * @throws {AmiUrlError} on an unknown scheme, missing user/secret/host, bad port or query
 *   value; the message shows the URL with its secret redacted.
 */
export function parseAmiUrl(url: string): AmiClientOptions {
  const shown = redactUrl(url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new AmiUrlError(`invalid AMI URL ${shown} (expected tcp://user:secret@host:5038)`);
  }
  const scheme = parsed.protocol;
  if (scheme !== 'tcp:' && scheme !== 'tls:') {
    throw new AmiUrlError(
      `unsupported AMI URL scheme ${scheme} in ${shown} (use tcp:// or tls://)`,
    );
  }
  if (parsed.hostname === '') throw new AmiUrlError(`AMI URL ${shown} has no host`);
  if (parsed.username === '') throw new AmiUrlError(`AMI URL ${shown} has no user`);
  if (parsed.password === '') throw new AmiUrlError(`AMI URL ${shown} has no secret`);
  const port = parsed.port === '' ? AMI_CLIENT_DEFAULTS.port : Number(parsed.port);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new AmiUrlError(`invalid port in AMI URL ${shown}`);
  }
  const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
  const options: AmiClientOptions = {
    host,
    port,
    username: decode(parsed.username, 'user', url),
    secret: decode(parsed.password, 'secret', url),
  };
  if (scheme === 'tls:') options.tls = true;
  for (const [key, value] of parsed.searchParams) {
    if (key === 'auth') {
      if (value !== 'plain' && value !== 'md5') {
        throw new AmiUrlError(`invalid auth=${value} in AMI URL ${shown} (plain or md5)`);
      }
      options.auth = value;
    } else if (key === 'name') {
      options.name = value;
    } else if (key === 'events') {
      options.events = value;
    } else {
      throw new AmiUrlError(`unknown parameter ${key} in AMI URL ${shown}`);
    }
  }
  return withRedactedPrinting(options);
}

/** The keys of a configured AMI server that its URL may also give (`ami.servers[]`). */
export interface AmiServerKeys {
  /** The URL, `tcp://user:secret@host:5038?auth=md5&name=pbx1` (see {@link parseAmiUrl}). */
  url: string;
  /** `name` key; '' or absent = the URL's `name`, else `host:port`. */
  name?: string;
  /** `auth` key; absent = the URL's `auth`, else `plain`. */
  auth?: 'plain' | 'md5';
}

/**
 * THE meaning of a configured AMI server, the same for `serve`, `config check`, `doctor`,
 * `watch` and `record`: the URL parsed by {@link parseAmiUrl}, its `name` and `auth`
 * parameters filling the keys left empty, `host:port` the name when neither gives one.
 * A key and a URL parameter that both say something must say the same.
 *
 * @returns client options (secret hidden when printed) with `name` and `auth` always set.
 * @throws {AmiUrlError} the URL is unusable, or a key contradicts its parameter (the message
 *   names both values, never the secret).
 */
export function amiServerOptions(server: AmiServerKeys): AmiClientOptions & {
  name: string;
  auth: 'plain' | 'md5';
} {
  const fromUrl = parseAmiUrl(server.url);
  const shown = redactUrl(server.url);
  const key = server.name ?? '';
  if (key !== '' && fromUrl.name !== undefined && fromUrl.name !== key) {
    throw new AmiUrlError(
      `name ${JSON.stringify(key)} contradicts name=${fromUrl.name} in AMI URL ${shown} (give one)`,
    );
  }
  if (server.auth !== undefined && fromUrl.auth !== undefined && fromUrl.auth !== server.auth) {
    throw new AmiUrlError(
      `auth ${server.auth} contradicts auth=${fromUrl.auth} in AMI URL ${shown} (give one)`,
    );
  }
  const host = fromUrl.host ?? '127.0.0.1';
  const hostPort = `${host.includes(':') ? `[${host}]` : host}:${fromUrl.port ?? AMI_CLIENT_DEFAULTS.port}`;
  const name = key !== '' ? key : (fromUrl.name ?? hostPort);
  const auth = server.auth ?? fromUrl.auth ?? AMI_CLIENT_DEFAULTS.auth;
  fromUrl.name = name;
  fromUrl.auth = auth;
  return fromUrl as AmiClientOptions & { name: string; auth: 'plain' | 'md5' };
}

/** Adds `toJSON`, `toString` and `util.inspect` hooks that hide the secret (kept by spread). */
function withRedactedPrinting(options: AmiClientOptions): AmiClientOptions {
  const printable = (self: AmiClientOptions): Record<string, unknown> => {
    const copy: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(self)) {
      if (typeof v !== 'function') copy[k] = k === 'secret' ? REDACTED : v;
    }
    return copy;
  };
  Object.assign(options, {
    toJSON(this: AmiClientOptions) {
      return printable(this);
    },
    toString(this: AmiClientOptions) {
      return `AmiClientOptions ${JSON.stringify(printable(this))}`;
    },
    [inspectSymbol](this: AmiClientOptions) {
      return printable(this);
    },
  });
  return options;
}
