/**
 * Redaction, one definition: what replaces a secret, and secrets removed from URLs and from
 * configuration objects before they are displayed or logged (`config show`, doctor, logs).
 * Pino's path-based log redaction (http/server.ts `REDACT_PATHS`) censors with the same
 * {@link REDACTED}.
 */

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const SECRET_KEY = /(secret|password|passphrase|token|apikey|authtoken|privatekey)$/i;
const SECRET_QUERY = /^(secret|password|passphrase|token|access_token|api_?key|key|auth)$/i;
/** What replaces a secret in redacted output. */
export const REDACTED = '***';

/**
 * Removes the password (and secret-looking query parameters) from a URL string, for logs.
 * Non-URLs are returned unchanged.
 */
export function redactUrl(value: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return value;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return value.replace(/\/\/[^/@]*@/, `//${REDACTED}@`);
  }
  let changed = false;
  if (url.password !== '') {
    url.password = REDACTED;
    changed = true;
  }
  for (const name of [...url.searchParams.keys()]) {
    if (SECRET_QUERY.test(name)) {
      url.searchParams.set(name, REDACTED);
      changed = true;
    }
  }
  return changed ? url.toString().replace(encodeURIComponent(REDACTED), REDACTED) : value;
}

function redactValue(key: string, value: unknown): unknown {
  if (typeof value === 'string') {
    if (SECRET_KEY.test(key) && value !== '') return REDACTED;
    return redactUrl(value);
  }
  if (Array.isArray(value)) return value.map((v) => redactValue(key, v));
  if (isObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactValue(k, v);
    return out;
  }
  return value;
}

/**
 * A copy of a configuration (or any part of one) safe to display or log: passwords in URLs,
 * tokens, Basic passwords, webhook secrets, push keys, API keys are replaced by `***`
 * (empty values stay empty, so "not set" remains visible). Keys named `*secret`, `*password`,
 * `*passphrase`, `*token`, `*apiKey` are secrets, as are URL passwords and secret-looking
 * query parameters.
 */
export function redactConfig<T>(config: T): T {
  return redactValue('', config) as T;
}
