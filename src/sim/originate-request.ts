/**
 * Parsing the simulator's AMI `Originate` action ({@link parseOriginate}): dial string,
 * dialplan target or application, variables, caller id. Re-exported by `originate.ts`.
 *
 * @module
 */
import type { AmiMessage } from '../ami/message.ts';

function one(message: AmiMessage, key: string): string | undefined {
  const value = message[key];
  return typeof value === 'string' || value === undefined ? value : value[0];
}

function all(message: AmiMessage, key: string): string[] {
  const value = message[key];
  return value === undefined ? [] : typeof value === 'string' ? [value] : value;
}

/** An `Originate` action, parsed. */
export interface OriginateRequest {
  /** `ActionID`, if any. */
  actionId: string | undefined;
  /** `Channel`: the dial string, e.g. `Local/100@phones` or `PJSIP/201@trunk`. */
  channel: string;
  /** Technology (`Local`, `PJSIP`, ...). */
  tech: string;
  /** The part after `TECH/`, e.g. `201@trunk`. */
  resource: string;
  /** The number the scripts are matched against (`201` for `PJSIP/201@trunk`, `100` for `Local/100@phones`). */
  number: string;
  /** `Context` (dialplan target), when not an application. */
  context: string | undefined;
  /** `Exten`. */
  exten: string | undefined;
  /** `Priority`. */
  priority: string | undefined;
  /** `Application` (application target). */
  application: string | undefined;
  /** `Data` of the application. */
  data: string | undefined;
  /** Caller id name from `CallerID` (`"Name" <num>`), empty when none. */
  callerIdName: string;
  /** Caller id number from `CallerID`, empty when none. */
  callerIdNum: string;
  /** `Timeout` in ms (ringing limit). Default 30000, as Asterisk. */
  timeoutMs: number;
  /** `Async: true`: answer at once and report with `OriginateResponse`. */
  async: boolean;
  /** `Variable`s (repeated keys or comma-separated `NAME=value`). */
  variables: Record<string, string>;
  /** `ChannelId`: the Uniqueid to give the originated channel. */
  channelId: string | undefined;
  /** `OtherChannelId`: the Uniqueid of the second half of a Local channel. */
  otherChannelId: string | undefined;
  /** `Account`. */
  account: string;
}

/** Splits `"Name" <num>` / `Name <num>` / `<num>` / `num` as `ast_callerid_parse` does. */
export function parseCallerId(value: string): { name: string; num: string } {
  const match = /^\s*(?:"([^"]*)"|([^<]*?))\s*<([^>]*)>\s*$/.exec(value);
  if (match) return { name: (match[1] ?? match[2] ?? '').trim(), num: (match[3] ?? '').trim() };
  const text = value.trim();
  return /^[0-9+*#]+$/.test(text) ? { name: '', num: text } : { name: text, num: '' };
}

/**
 * Parses an `Originate` action. Errors are the `Message` Asterisk 22 answers
 * (`manager.c` `action_originate`): `Channel not specified`, `Invalid channel`,
 * `Invalid priority`, `Invalid timeout`; plus `Exten not specified` when neither
 * `Application` nor `Exten` is given.
 */
export function parseOriginate(action: AmiMessage): OriginateRequest | { error: string } {
  const channel = one(action, 'Channel') ?? '';
  if (channel === '') return { error: 'Channel not specified' };
  const slash = channel.indexOf('/');
  if (slash <= 0 || slash === channel.length - 1) return { error: 'Invalid channel' };
  const priority = one(action, 'Priority');
  if (priority !== undefined && priority !== '' && !/^\d+$/.test(priority))
    return { error: 'Invalid priority' };
  const timeout = one(action, 'Timeout');
  if (timeout !== undefined && timeout !== '' && !/^\d+$/.test(timeout))
    return { error: 'Invalid timeout' };
  const application = one(action, 'Application') || undefined;
  const exten = one(action, 'Exten') || undefined;
  if (application === undefined && exten === undefined) return { error: 'Exten not specified' };
  const tech = channel.slice(0, slash);
  const resource = channel.slice(slash + 1);
  const first = resource.split('/')[0] ?? resource;
  const segments = resource.split('/');
  const number = first.includes('@')
    ? (first.split('@')[0] ?? '')
    : segments.length > 1 && tech.toLowerCase() !== 'local'
      ? (segments[segments.length - 1] ?? '')
      : first;
  // A Map, then Object.fromEntries: a variable named like `__proto__` stays an own entry.
  const variables = new Map<string, string>();
  for (const item of all(action, 'Variable')) {
    for (const pair of item.split(',')) {
      const eq = pair.indexOf('=');
      if (eq > 0) variables.set(pair.slice(0, eq).trim(), pair.slice(eq + 1));
    }
  }
  const cid = parseCallerId(one(action, 'CallerID') ?? '');
  return {
    actionId: one(action, 'ActionID'),
    channel,
    tech,
    resource,
    number,
    context: application === undefined ? (one(action, 'Context') ?? 'default') : undefined,
    exten: application === undefined ? exten : undefined,
    priority: application === undefined ? priority || '1' : undefined,
    application,
    data: application === undefined ? undefined : (one(action, 'Data') ?? ''),
    callerIdName: cid.name,
    callerIdNum: cid.num,
    timeoutMs: timeout === undefined || timeout === '' ? 30_000 : Number(timeout),
    async: /^(true|yes|1|on|y|t)$/i.test(one(action, 'Async') ?? ''),
    variables: Object.fromEntries(variables),
    channelId: one(action, 'ChannelId') || undefined,
    otherChannelId: one(action, 'OtherChannelId') || undefined,
    account: one(action, 'Account') ?? '',
  };
}
