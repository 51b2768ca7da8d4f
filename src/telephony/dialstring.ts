/**
 * Dial-string templates and the validation of everything that reaches Asterisk from outside:
 * telephone numbers, extensions, channel variables, caller IDs, dialplan locations.
 *
 * Why so strict: an AMI `Originate` header or a call-file line ends at a newline (a newline in
 * a value adds a header/line of the attacker's choosing), Asterisk splits application
 * arguments at `,` (and historically `|`), `&` chains dial targets and playback files, `${}`
 * and `$[]` are expanded by the dialplan. None of these characters can pass the checks below.
 *
 * @module
 */

/** A value refused by a validator; `field` names the offending input (e.g. `telno`). */
export class TelephonyValidationError extends Error {
  /** Name of the field that was refused (`telno`, `extension`, `variables.FOO`, `dialString`, ...). */
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'TelephonyValidationError';
    this.field = field;
  }
}

/** Telephone number: digits with an optional leading `+`, 1–32 digits. */
export const TELNO_PATTERN = /^\+?[0-9]{1,32}$/;
/** Extension: dial-string characters only (`[0-9A-Za-z*#+@._-]`), 1–80 of them. */
export const EXTENSION_PATTERN = /^[0-9A-Za-z*#+@._-]{1,80}$/;
/** Characters allowed in the literal parts of a dial-string template (adds `/`). */
const TEMPLATE_LITERAL = /^[0-9A-Za-z*#+@._/:-]*$/;
/** A complete channel/dial string after substitution. */
const CHANNEL_PATTERN = /^[A-Za-z][A-Za-z0-9_]*\/[0-9A-Za-z*#+@._/:-]{1,200}$/;

function describe(value: string): string {
  if (/[\r\n]/.test(value)) return 'contains a line break';
  if (/\s/.test(value)) return 'contains whitespace';
  const bad = [...value].find((ch) => !/[0-9A-Za-z*#+@._-]/.test(ch));
  return bad === undefined ? 'is malformed' : `contains the character ${JSON.stringify(bad)}`;
}

/**
 * Checks a telephone number (digits, optional leading `+`).
 *
 * @returns the number unchanged.
 * @throws {TelephonyValidationError} naming `field`.
 */
export function validateTelno(value: unknown, field = 'telno'): string {
  if (typeof value !== 'string' || value === '') {
    throw new TelephonyValidationError(field, 'is required');
  }
  if (!TELNO_PATTERN.test(value)) {
    throw new TelephonyValidationError(
      field,
      `must be digits with an optional leading + (it ${describe(value)})`,
    );
  }
  return value;
}

/**
 * Checks an extension (dial-string characters `[0-9A-Za-z*#+@._-]` only: no newline, comma,
 * `&`, `|`, `/`, `;`, parentheses, whitespace, `$`, braces).
 *
 * @returns the extension unchanged.
 * @throws {TelephonyValidationError} naming `field`.
 */
export function validateExtension(value: unknown, field = 'extension'): string {
  if (typeof value !== 'string' || value === '') {
    throw new TelephonyValidationError(field, 'is required');
  }
  if (!EXTENSION_PATTERN.test(value)) {
    throw new TelephonyValidationError(
      field,
      `must contain only 0-9 A-Z a-z * # + @ . _ - (it ${describe(value)})`,
    );
  }
  return value;
}

/** Validators by placeholder name; unknown placeholders are refused. */
const PLACEHOLDERS: Readonly<Record<string, (value: unknown, field: string) => string>> = {
  telno: validateTelno,
  number: validateTelno,
  extension: validateExtension,
  exten: validateExtension,
};

const PLACEHOLDER = /\{([a-z]+)\}/g;

/**
 * Checks a dial-string template such as `PJSIP/{telno}@trunk`, `Local/{extension}@default` or
 * `SIP/trunk/{telno}`: a technology, `/`, then literal characters `[0-9A-Za-z*#+@._/:-]` and
 * placeholders `{telno}` / `{number}` (validated as telephone numbers) or `{extension}` /
 * `{exten}` (validated as extensions).
 *
 * @returns the names of the placeholders used.
 * @throws {TelephonyValidationError} field `dialString`.
 */
export function validateDialTemplate(template: string, field = 'dialString'): string[] {
  if (!/^[A-Za-z][A-Za-z0-9_]*\//.test(template)) {
    throw new TelephonyValidationError(field, 'must start with a technology, e.g. PJSIP/');
  }
  const names: string[] = [];
  for (const match of template.matchAll(PLACEHOLDER)) {
    const name = match[1] as string;
    if (PLACEHOLDERS[name] === undefined) {
      throw new TelephonyValidationError(field, `unknown placeholder {${name}}`);
    }
    names.push(name);
  }
  const literal = template.replace(PLACEHOLDER, '');
  if (!TEMPLATE_LITERAL.test(literal)) {
    throw new TelephonyValidationError(field, `template ${describe(literal.replace(/\//g, ''))}`);
  }
  return names;
}

/**
 * Expands a dial-string template with validated values: `expandDialString('PJSIP/{telno}@trunk',
 * { telno: '+81312345678' })` → `PJSIP/+81312345678@trunk`. Each placeholder's value is
 * checked by its validator and the error names the placeholder (`telno`, `extension`).
 *
 * @throws {TelephonyValidationError} bad template (`dialString`), missing or bad value.
 */
export function expandDialString(
  template: string,
  values: Readonly<Record<string, string | undefined>>,
): string {
  validateDialTemplate(template);
  const result = template.replace(PLACEHOLDER, (_all, name: string) => {
    const validate = PLACEHOLDERS[name] as (value: unknown, field: string) => string;
    return validate(values[name], name);
  });
  return validateChannel(result);
}

/**
 * Checks a complete channel (dial string after substitution), e.g. before it is written to a
 * call file or sent in `Originate`: `Tech/` then `[0-9A-Za-z*#+@._/:-]`.
 *
 * @throws {TelephonyValidationError} field `channel` (or the given one).
 */
export function validateChannel(value: string, field = 'channel'): string {
  if (!CHANNEL_PATTERN.test(value)) {
    throw new TelephonyValidationError(
      field,
      `is not a valid dial string (it ${describe(value.replace(/\//g, ''))})`,
    );
  }
  return value;
}

/**
 * Checks a dialplan context, extension or priority label: `[0-9A-Za-z_.*#+-]`, 1–80.
 *
 * @throws {TelephonyValidationError} naming `field`.
 */
export function validateDialplanName(value: string, field: string): string {
  if (!/^[0-9A-Za-z_.*#+-]{1,80}$/.test(value)) {
    throw new TelephonyValidationError(
      field,
      `must contain only 0-9 A-Z a-z _ . * # + - (it ${describe(value)})`,
    );
  }
  return value;
}

/** Channel variable names: letters, digits, underscores (leading `_`/`__` = inherited). */
const VARIABLE_NAME = /^_{0,2}[A-Za-z][A-Za-z0-9_]{0,63}$/;
/**
 * Channel variable values: they are expanded into dialplan application arguments
 * (`Playback(${SWITCHBOARD_MESSAGE})`), so only `[0-9A-Za-z_./:@+*#=%-]` (no `,` `&` `|`
 * `$` braces, quotes, parentheses, whitespace, line breaks), at most 1,024 characters.
 */
const VARIABLE_VALUE = /^[0-9A-Za-z_./:@+*#=%-]{0,1024}$/;

/**
 * Checks channel variables for `Originate` (`Variable:` headers) and call files (`Set:`
 * lines).
 *
 * @returns `NAME=value` strings in insertion order.
 * @throws {TelephonyValidationError} field `variables.NAME`.
 */
export function validateVariables(variables: Readonly<Record<string, string>>): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(variables)) {
    if (!VARIABLE_NAME.test(name)) {
      throw new TelephonyValidationError(
        `variables.${name.slice(0, 40)}`,
        'is not a valid variable name',
      );
    }
    if (typeof value !== 'string' || !VARIABLE_VALUE.test(value)) {
      throw new TelephonyValidationError(
        `variables.${name}`,
        `must contain only 0-9 A-Z a-z _ . / : @ + * # = % - (it ${describe(String(value))})`,
      );
    }
    out.push(`${name}=${value}`);
  }
  return out;
}

/**
 * Builds a caller ID (`"Name" <number>`) from a display name and a number; either may be
 * empty. The name allows letters (any script), digits, spaces and `._-'`; the number is a
 * telephone number or an extension.
 *
 * @throws {TelephonyValidationError} fields `callerId.name`, `callerId.number`.
 */
export function formatCallerId(name: string, number = ''): string {
  if (!/^[\p{L}\p{N} ._'-]{0,80}$/u.test(name)) {
    throw new TelephonyValidationError(
      'callerId.name',
      "must contain only letters, digits, spaces and . _ ' -",
    );
  }
  if (number !== '') validateExtension(number, 'callerId.number');
  if (name === '') return number === '' ? '' : `<${number}>`;
  return number === '' ? `"${name}"` : `"${name}" <${number}>`;
}

/**
 * Checks an already formatted caller ID such as `"Switchboard" <999>`, `XGong` or `<100>`
 * (what config files hold): no line breaks, control characters, `,`, `&`, `|`, `$`, braces,
 * `;`, at most 120 characters.
 *
 * @throws {TelephonyValidationError} field `callerId`.
 */
export function validateCallerId(value: string, field = 'callerId'): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (value.length > 120 || /[\u0000-\u001f\u007f,&|${};\\]/.test(value)) {
    throw new TelephonyValidationError(field, 'contains a character not allowed in a caller ID');
  }
  return value;
}

/**
 * The name Asterisk's `Playback`/`Read` want for a sound file: the path without its `.wav`
 * extension (`/var/lib/switchboard/sounds/m-42.wav` → `/var/lib/switchboard/sounds/m-42`),
 * checked as a channel-variable value (no `,` `&` whitespace ...) and without `..`.
 *
 * @throws {TelephonyValidationError} field `sound`.
 */
export function asteriskSoundName(file: string, field = 'sound'): string {
  const name = file.replace(/\.(wav|gsm|ulaw|alaw|sln|g722)$/i, '');
  if (
    name === '' ||
    name.split('/').includes('..') ||
    !/^[0-9A-Za-z_./:@+=%-]{1,1024}$/.test(name)
  ) {
    throw new TelephonyValidationError(field, 'must be a path of letters, digits and _ . / - only');
  }
  return name;
}
