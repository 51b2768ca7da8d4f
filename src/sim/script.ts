/**
 * Scripts of the PBX simulator: what the called party does when an `Originate` reaches a
 * number (answer after N ms and press keys, busy, never answer, ...), and how the simulated
 * dialplan behaves once the call is answered (Playback, Read, UserEvent, Hangup).
 *
 * The script fields match the `simulator.scripts` / `simulator.defaultScript` config section
 * (`./config.ts`, `SimulatorScript`), so a config section can be passed as is.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { UPDATED_KEYS } from './channels.ts';

/** What happens to a call (the `OriginateResponse` `Reason` in brackets). */
export type SimOutcome =
  /** The callee answers (`Reason: 4`). */
  | 'answer'
  /** The callee is busy: `Hangup` cause 17, `Reason: 5`. */
  | 'busy'
  /** Rings until the Originate `Timeout`: `Hangup` cause 19, `Reason: 3`. */
  | 'noanswer'
  /** Congestion: `Hangup` cause 34, `Reason: 8`. */
  | 'congestion'
  /** No channel can be created (unreachable endpoint): no channel events, `Reason: 0`. */
  | 'fail';

/** The outcomes, for validation. */
export const SIM_OUTCOMES: readonly SimOutcome[] = [
  'answer',
  'busy',
  'noanswer',
  'congestion',
  'fail',
];

/** Scripted behaviour of one called number. All times in ms. */
export interface SimScript {
  /** What happens. Default `answer`. */
  outcome: SimOutcome;
  /** Ringing time before the outcome (answer, busy, congestion, fail). Default 2000. */
  answerAfterMs: number;
  /** Keys the callee presses after answering, e.g. `"1"` (`0-9*#A-D`). Default none. */
  dtmf: string;
  /** Delay between the answer and the first key (then one key every 2 × the DTMF duration, 200 ms by default). Default 1000. */
  dtmfAfterMs: number;
  /** The callee hangs up this long after answering, unless the dialplan ended first. Default 5000. */
  hangupAfterMs: number;
}

/** The script of numbers no entry matches. */
export const DEFAULT_SIM_SCRIPT: Readonly<SimScript> = {
  outcome: 'answer',
  answerAfterMs: 2_000,
  dtmf: '',
  dtmfAfterMs: 1_000,
  hangupAfterMs: 5_000,
};

/**
 * Scripts by number. Keys: an exact number (`"201"`), an Asterisk pattern starting with `_`
 * (`"_20X"`: `X` 0-9, `Z` 1-9, `N` 2-9, `[1-5]`, `.` one or more, `!` zero or more), or `"*"`
 * for every other number. Exact keys win over patterns, patterns are tried longest first,
 * `"*"` last.
 */
export type SimScripts = Readonly<Record<string, Partial<SimScript>>>;

/** A `UserEvent` raised by the simulated dialplan (`UserEvent(Name,Key: value,...)`). */
export interface SimUserEvent {
  /** The `UserEvent` field, e.g. `SwitchboardDTMF`. */
  name: string;
  /**
   * Extra fields in order, values with `${VAR}` substituted from the channel variables: the
   * Read variable (e.g. `${DIGIT}`), Originate `Variable`s, and `${EXTEN}`, `${CONTEXT}`,
   * `${UNIQUEID}`, `${CHANNEL}`, `${CALLERID(num)}`. Unknown variables become empty. Names
   * every channel event already has (`Event`, `Channel`, `Exten`, `Uniqueid`, ...) are refused
   * by {@link validateDialplan} and skipped at run time.
   */
  fields: Readonly<Record<string, string>>;
}

/**
 * The simulated dialplan of one context (the `[alert]` context of
 * `test/fixtures/asterisk22/etc/extensions.conf` by default): `Answer()`, then
 * `Playback(<playback>)` if set, then `Read(<read>)` if set, then `UserEvent(...)` if set,
 * then `Hangup()`. Each step emits the `Newexten` (and `VarSet`) events Asterisk 22 emits.
 */
export interface SimDialplan {
  /** `Playback` data (file name); empty = no Playback step. Default `beep`. */
  playback: string;
  /** How long the Playback lasts, in ms (`VarSet PLAYBACKSTATUS` at its end). Default 440. */
  playbackMs: number;
  /**
   * `Read` data `VAR,prompt,maxdigits,options,attempts,timeout_s`; empty = no Read step.
   * Default `DIGIT,,1,,,5`. Keys pressed while Read runs are collected into `VAR` (up to
   * `maxdigits`, `#` ends); keys pressed before it starts are lost, as with a real `Playback`
   * (put the prompt in Read's second argument to accept keys during the announcement).
   */
  read: string;
  /** `Read` gives up after this long without enough keys, in ms. Default: the data's `timeout_s`, else 5000. */
  readTimeoutMs?: number;
  /** The `UserEvent` raised after Read; null = none. Default `SwitchboardDTMF` with `Digit: ${DIGIT}`. */
  userEvent: SimUserEvent | null;
  /**
   * Keys the dialplan accepts, e.g. `"12"` (the `switchboard-callout` context of
   * docs/asterisk/extensions.conf). When set, a key read that is not one of them raises
   * {@link SimDialplan.invalidKeyEvent} and re-prompts (the Read runs again, in the same call)
   * up to {@link SimDialplan.rounds} Reads in all; `userEvent` is raised only for an accepted
   * key (none when the rounds run out or nothing was pressed). Empty (default): any key, no
   * re-prompt.
   */
  validKeys?: string;
  /** Reads in all when `validKeys` is set (the shipped dialplan: 3). Default 3. */
  rounds?: number;
  /**
   * When `validKeys` is set: how many times the message plays again when nothing was pressed
   * (within `rounds`), as the shipped dialplan's `SILENT` counter. Default 1.
   */
  silentRepeats?: number;
  /**
   * The `UserEvent` raised for a key not in `validKeys`, before the re-prompt; null = none.
   * Default `SwitchboardInvalidKey` with `Digit: ${DIGIT}`.
   */
  invalidKeyEvent?: SimUserEvent | null;
}

/** The dialplan of contexts not listed: the `[alert]` context of the wire logs. */
export const DEFAULT_SIM_DIALPLAN: Readonly<SimDialplan> = {
  playback: 'beep',
  playbackMs: 440,
  read: 'DIGIT,,1,,,5',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a dialplan variable, not a template
  userEvent: { name: 'SwitchboardDTMF', fields: { Digit: '${DIGIT}' } },
};

/** Simulated dialplan by context name; `"*"` for every other context. */
export type SimDialplans = Readonly<Record<string, Partial<SimDialplan>>>;

/** A script file or config section that is not valid; the message names the key. */
export class SimScriptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimScriptError';
  }
}

function patternToRegExp(pattern: string): RegExp {
  let source = '';
  const body = pattern.slice(1);
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string;
    const upper = c.toUpperCase();
    if (upper === 'X') source += '[0-9]';
    else if (upper === 'Z') source += '[1-9]';
    else if (upper === 'N') source += '[2-9]';
    else if (c === '.') source += '.+';
    else if (c === '!') source += '.*';
    else if (c === '[') {
      const end = body.indexOf(']', i);
      if (end === -1) throw new SimScriptError(`script pattern ${pattern}: unclosed [`);
      const set = body.slice(i + 1, end).replace(/[\\^\]]/g, '\\$&');
      source += `[${set}]`;
      i = end;
    } else source += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/**
 * The script for `number`: the matching entry of `scripts` (see {@link SimScripts}) over
 * `defaults` over {@link DEFAULT_SIM_SCRIPT}.
 *
 * @throws {SimScriptError} on a malformed `_` pattern.
 */
export function resolveScript(
  scripts: SimScripts,
  number: string,
  defaults: Partial<SimScript> = {},
): SimScript {
  let entry: Partial<SimScript> | undefined = Object.hasOwn(scripts, number)
    ? scripts[number]
    : undefined;
  if (entry === undefined) {
    const patterns = Object.keys(scripts)
      .filter((key) => key.startsWith('_'))
      .sort((a, b) => b.length - a.length);
    for (const pattern of patterns) {
      if (patternToRegExp(pattern).test(number)) {
        entry = scripts[pattern];
        break;
      }
    }
  }
  if (entry === undefined && Object.hasOwn(scripts, '*')) entry = scripts['*'];
  return { ...DEFAULT_SIM_SCRIPT, ...defaults, ...entry };
}

/** The dialplan for `context`: its entry (or `"*"`) over {@link DEFAULT_SIM_DIALPLAN}. */
export function resolveDialplan(dialplans: SimDialplans, context: string): SimDialplan {
  const entry = Object.hasOwn(dialplans, context)
    ? dialplans[context]
    : Object.hasOwn(dialplans, '*')
      ? dialplans['*']
      : undefined;
  return { ...DEFAULT_SIM_DIALPLAN, ...entry };
}

/** Field names a UserEvent may not use: they are already in every channel event. */
const RESERVED_FIELDS = new Set(
  ['Event', 'Privilege', 'UserEvent', 'Channel', ...UPDATED_KEYS, 'Uniqueid', 'Linkedid'].map(
    (name) => name.toLowerCase(),
  ),
);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkMs(where: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 3_600_000)
    throw new SimScriptError(`${where}: expected an integer number of ms in 0..3600000`);
  return value;
}

/**
 * Validates one script entry (as written in a file or config): the {@link SimScript} keys,
 * `result` accepted as an alias of `outcome`.
 *
 * @throws {SimScriptError} naming the key.
 */
export function validateScript(where: string, value: unknown): Partial<SimScript> {
  if (!isRecord(value)) throw new SimScriptError(`${where}: expected an object`);
  const out: Partial<SimScript> = {};
  for (const [key, item] of Object.entries(value)) {
    const at = `${where}.${key}`;
    switch (key) {
      case 'outcome':
      case 'result':
        if (typeof item !== 'string' || !SIM_OUTCOMES.includes(item as SimOutcome))
          throw new SimScriptError(`${at}: expected one of ${SIM_OUTCOMES.join(', ')}`);
        out.outcome = item as SimOutcome;
        break;
      case 'dtmf':
        if (typeof item !== 'string' || !/^[0-9*#A-D]*$/.test(item))
          throw new SimScriptError(`${at}: expected DTMF keys (0-9 * # A-D)`);
        out.dtmf = item;
        break;
      case 'answerAfterMs':
      case 'dtmfAfterMs':
      case 'hangupAfterMs':
        out[key] = checkMs(at, item);
        break;
      default:
        throw new SimScriptError(`${at}: unknown key`);
    }
  }
  return out;
}

function userEventOf(at: string, item: unknown): SimUserEvent {
  if (!isRecord(item) || typeof item.name !== 'string' || !/^[\w.-]+$/.test(item.name))
    throw new SimScriptError(`${at}: expected {name, fields} or null`);
  // Entries, then Object.fromEntries: a name like `__proto__` stays an own field.
  const entries: [string, string][] = [];
  if (item.fields !== undefined) {
    if (!isRecord(item.fields)) throw new SimScriptError(`${at}.fields: expected an object`);
    for (const [name, text] of Object.entries(item.fields)) {
      if (!/^[\w-]+$/.test(name) || typeof text !== 'string' || /[\r\n]/.test(text))
        throw new SimScriptError(`${at}.fields.${name}: expected a one-line string`);
      if (RESERVED_FIELDS.has(name.toLowerCase()))
        throw new SimScriptError(
          `${at}.fields.${name}: reserved (a field every channel event has)`,
        );
      entries.push([name, text]);
    }
  }
  return { name: item.name, fields: Object.fromEntries(entries) };
}

/**
 * Validates a dialplan entry (`playback`, `playbackMs`, `read`, `readTimeoutMs`,
 * `userEvent: {name, fields}` or null, `validKeys`, `rounds`, `silentRepeats`,
 * `invalidKeyEvent`).
 *
 * @throws {SimScriptError} naming the key.
 */
export function validateDialplan(where: string, value: unknown): Partial<SimDialplan> {
  if (!isRecord(value)) throw new SimScriptError(`${where}: expected an object`);
  const out: Partial<SimDialplan> = {};
  for (const [key, item] of Object.entries(value)) {
    const at = `${where}.${key}`;
    switch (key) {
      case 'playback':
      case 'read':
        if (typeof item !== 'string' || /[\r\n]/.test(item))
          throw new SimScriptError(`${at}: expected a one-line string`);
        out[key] = item;
        break;
      case 'playbackMs':
      case 'readTimeoutMs':
        out[key] = checkMs(at, item);
        break;
      case 'validKeys':
        if (typeof item !== 'string' || !/^[0-9*#A-D]*$/.test(item))
          throw new SimScriptError(`${at}: expected keys 0-9 * # A-D`);
        out.validKeys = item;
        break;
      case 'rounds':
        if (typeof item !== 'number' || !Number.isInteger(item) || item < 1 || item > 20)
          throw new SimScriptError(`${at}: expected an integer 1-20`);
        out.rounds = item;
        break;
      case 'silentRepeats':
        if (typeof item !== 'number' || !Number.isInteger(item) || item < 0 || item > 20)
          throw new SimScriptError(`${at}: expected an integer 0-20`);
        out.silentRepeats = item;
        break;
      case 'invalidKeyEvent':
      case 'userEvent':
        out[key] = item === null || item === false ? null : userEventOf(at, item);
        break;
      default:
        throw new SimScriptError(`${at}: unknown key`);
    }
  }
  return out;
}

/** What a script file holds. */
export interface SimScriptFile {
  /** Scripts by number (see {@link SimScripts}). */
  scripts: Record<string, Partial<SimScript>>;
  /** Dialplans by context. */
  dialplan: Record<string, Partial<SimDialplan>>;
}

/**
 * Parses a script file's contents (YAML or JSON, JSON being YAML). Two layouts:
 * - numbers at the top level: `{ "201": {answerAfterMs: 2000, dtmf: "1"}, "*": {...} }`;
 * - sections: `{ scripts: {...numbers...}, dialplan: { alert: {...} } }`.
 *
 * @throws {SimScriptError} on a syntax error or an invalid entry (the message names it).
 */
export function parseScriptFile(text: string, name = '<script>'): SimScriptFile {
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (error) {
    throw new SimScriptError(`${name}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (value === null || value === undefined) return { scripts: {}, dialplan: {} };
  if (!isRecord(value)) throw new SimScriptError(`${name}: expected a mapping`);
  const sectioned = 'scripts' in value || 'dialplan' in value;
  const rawScripts = sectioned ? (value.scripts ?? {}) : value;
  const rawDialplan = sectioned ? (value.dialplan ?? {}) : {};
  if (sectioned) {
    for (const key of Object.keys(value))
      if (key !== 'scripts' && key !== 'dialplan')
        throw new SimScriptError(`${name}: ${key}: unknown key (expected scripts, dialplan)`);
  }
  if (!isRecord(rawScripts)) throw new SimScriptError(`${name}: scripts: expected a mapping`);
  if (!isRecord(rawDialplan)) throw new SimScriptError(`${name}: dialplan: expected a mapping`);
  const scripts: Record<string, Partial<SimScript>> = {};
  for (const [number, entry] of Object.entries(rawScripts)) {
    if (!/^(\*|_[0-9A-Za-z+*#.![\]-]+|[0-9A-Za-z+*#]+)$/.test(number))
      throw new SimScriptError(`${name}: ${number}: not a number, _pattern or *`);
    scripts[number] = validateScript(`${name}: ${number}`, entry);
    if (number.startsWith('_')) patternToRegExp(number);
  }
  const dialplan: Record<string, Partial<SimDialplan>> = {};
  for (const [context, entry] of Object.entries(rawDialplan)) {
    dialplan[context] = validateDialplan(`${name}: dialplan.${context}`, entry);
  }
  return { scripts, dialplan };
}

/**
 * Reads and parses a script file (YAML or JSON).
 *
 * @throws {SimScriptError} unreadable file or invalid contents.
 */
export function loadScriptFile(path: string): SimScriptFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new SimScriptError(`${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return parseScriptFile(text, path);
}
