/**
 * Allow-lists of dial targets: which extensions a client may make the service dial.
 *
 * A loud ringer is a fixed device. What a client sends as `extension` is dialled only when
 * it is the configured default or matches an entry of the allow-list; everything else is
 * refused before anything is stored or dialled (otherwise `+31900123456@pstn-trunk` in
 * `PJSIP/{extension}` dials any number through any trunk: toll fraud).
 *
 * Entry syntax (config `announce.allowedExtensions`):
 *
 * - **exact value**: anything not starting with `_`, e.g. `42300`, `42300@default` (checked
 *   like an extension: `[0-9A-Za-z*#+@._-]`); matched case-sensitively, whole.
 * - **pattern**: Asterisk extension-pattern style, starting with `_`:
 *   `X` any digit 0–9, `Z` 1–9, `N` 2–9, `[...]` one digit of a set or range (`[1-5]`,
 *   `[0378]`), and, as the LAST character only, `.` one or more / `!` zero or more further
 *   characters among `0-9 * # +`. Every other character matches itself. Only UPPERCASE
 *   `X` `Z` `N` are wildcards (unlike Asterisk, where they are case-insensitive): `_1@internal`
 *   has no wildcard. A pattern never matches `@`, `/`, `&`, `,`, `|`, `;`, whitespace or a
 *   line break unless the config author wrote that character literally, so no wildcard can
 *   add an endpoint, a context, a second target or options.
 *
 * @module
 */
import { TelephonyValidationError, validateExtension } from './dialstring.ts';

/** Characters a `.` / `!` wildcard may stand for. */
const WILDCARD_CHAR = '[0-9*#+]';

/** One compiled allow-list entry. */
interface Entry {
  source: string;
  test(value: string): boolean;
}

function escapeRegExp(ch: string): string {
  return /[\\^$.*+?()[\]{}|-]/.test(ch) ? `\\${ch}` : ch;
}

/**
 * Compiles one pattern (`_42XX`, `_9[1-3]!`) into a regular expression.
 * @throws {TelephonyValidationError} naming `field`.
 */
function compilePattern(pattern: string, field: string): RegExp {
  const body = pattern.slice(1);
  if (body === '') throw new TelephonyValidationError(field, 'pattern "_" matches nothing');
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const ch = body[i] as string;
    const last = i === body.length - 1;
    if (ch === 'X') out += '[0-9]';
    else if (ch === 'Z') out += '[1-9]';
    else if (ch === 'N') out += '[2-9]';
    else if (ch === '.' || ch === '!') {
      if (!last) {
        throw new TelephonyValidationError(field, `"${ch}" may only end a pattern`);
      }
      out += `${WILDCARD_CHAR}${ch === '.' ? '+' : '*'}`;
    } else if (ch === '[') {
      const end = body.indexOf(']', i);
      const set = end < 0 ? '' : body.slice(i + 1, end);
      if (end < 0 || !/^([0-9](-[0-9])?)+$/.test(set)) {
        throw new TelephonyValidationError(
          field,
          'a [...] set holds digits and ranges only (e.g. [1-5] or [0378])',
        );
      }
      out += `[${set}]`;
      i = end;
    } else if (/^[0-9A-Za-z*#+@_-]$/.test(ch)) {
      out += escapeRegExp(ch);
    } else {
      throw new TelephonyValidationError(
        field,
        `pattern contains the character ${JSON.stringify(ch)}`,
      );
    }
  }
  return new RegExp(`^${out}$`);
}

/**
 * Compiles an allow-list entry.
 * @throws {TelephonyValidationError} naming `field` (e.g. `announce.allowedExtensions[2]`).
 */
function compileEntry(entry: string, field: string): Entry {
  if (entry.startsWith('_')) {
    const regexp = compilePattern(entry, field);
    return { source: entry, test: (value) => regexp.test(value) };
  }
  validateExtension(entry, field);
  return { source: entry, test: (value) => value === entry };
}

/**
 * Which extensions may be dialled: the configured default (always) and the allow-list.
 *
 * ```ts
 * const policy = new ExtensionAllowList({ defaultExtension: '42300', allowed: ['_423XX'] });
 * policy.resolve(undefined);  // '42300' (the default)
 * policy.resolve('42311');    // '42311'
 * policy.resolve('+31900123456@pstn-trunk'); // throws TelephonyValidationError (extension)
 * ```
 */
export class ExtensionAllowList {
  readonly #default: string;
  readonly #entries: readonly Entry[];
  readonly #keys: string;

  /**
   * @param options.defaultExtension the configured default ('' = none: a request must give one).
   * @param options.allowed exact values and `_` patterns (see the module doc).
   * @param options.keys how the refusal names the configuration (default
   *   `announce.extension, announce.allowedExtensions`).
   * @throws {TelephonyValidationError} a bad default or entry, naming its config key.
   */
  constructor(options: {
    defaultExtension: string;
    allowed: readonly string[];
    keys?: { defaultExtension: string; allowed: string };
  }) {
    const keys = options.keys ?? {
      defaultExtension: 'announce.extension',
      allowed: 'announce.allowedExtensions',
    };
    if (options.defaultExtension !== '') {
      validateExtension(options.defaultExtension, keys.defaultExtension);
    }
    this.#default = options.defaultExtension;
    this.#entries = options.allowed.map((entry, i) => compileEntry(entry, `${keys.allowed}[${i}]`));
    this.#keys = `${keys.defaultExtension} or ${keys.allowed}`;
  }

  /** Whether `value` is the default or matches an entry (no other check). */
  allows(value: string): boolean {
    return (
      (this.#default !== '' && value === this.#default) || this.#entries.some((e) => e.test(value))
    );
  }

  /**
   * The extension to dial for what a request gave: the default when it gave none, else the
   * value itself when it passes {@link validateExtension} and the allow-list.
   *
   * @throws {TelephonyValidationError} field `field`: missing with no default, bad
   *   characters, or not allowed (the message names the config keys, not the value).
   */
  resolve(value: string | undefined, field = 'extension'): string {
    if (value === undefined || value === '') {
      if (this.#default === '') throw new TelephonyValidationError(field, 'is required');
      return this.#default;
    }
    validateExtension(value, field);
    if (!this.allows(value)) {
      throw new TelephonyValidationError(
        field,
        `is not an allowed ringer extension (allowed: ${this.#keys})`,
      );
    }
    return value;
  }
}
