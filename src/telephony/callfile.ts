/**
 * Asterisk call files, for PBXs where AMI is not available (how the original Gong played
 * its messages).
 *
 * Source: Asterisk `pbx_spool.c` and the sample `call-file` documentation: `Channel`,
 * `CallerID`, `MaxRetries`, `RetryTime`, `WaitTime`, `Context`/`Extension`/`Priority` or
 * `Application`/`Data`, `Setvar: NAME=value` (Asterisk 1.2 and later also read `Set:`; every
 * version, and Gong's call files, use `Setvar:`), `Account`, `Archive`. Asterisk scans
 * `/var/spool/asterisk/outgoing`; a file whose modification time is in the future is held
 * back until then. It must appear complete and at once: written elsewhere on the same
 * filesystem, then renamed into the spool directory (Asterisk's own advice).
 *
 * Every value is validated: one newline in any of them would add a line of the attacker's
 * choosing (a second `Channel`, an `Application: System`...).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, unlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  TelephonyValidationError,
  validateCallerId,
  validateChannel,
  validateDialplanName,
  validateVariables,
} from './dialstring.ts';

/** Content of a call file. */
export interface CallFileSpec {
  /** Channel to call, already expanded from a validated template (`expandDialString`); re-checked. */
  channel: string;
  /** Caller ID, e.g. `"XGong" <42300>` or `XGong`. */
  callerId?: string;
  /** Retries after the first attempt (Gong: 3). Default 0. */
  maxRetries?: number;
  /** Seconds between attempts (Gong: 60). Default 300 (Asterisk's). */
  retryTimeS?: number;
  /** Seconds to ring before an attempt counts as failed. Default 45 (Asterisk's). */
  waitTimeS?: number;
  /** Dialplan context the answered call enters (with `extension`, `priority`). */
  context?: string;
  /** Extension in `context`. Default `s`. */
  extension?: string;
  /** Priority. Default 1. */
  priority?: number | string;
  /** Instead of context/extension/priority: an application (e.g. `Playback`). */
  application?: string;
  /** Arguments of `application` (checked like a variable value). */
  data?: string;
  /** Channel variables, written as `Setvar: NAME=value` lines (checked by `validateVariables`). */
  variables?: Readonly<Record<string, string>>;
  /** CDR account code. */
  account?: string;
  /** `Archive: yes`: Asterisk moves the file to `outgoing_done` with a `Status:` line. Default false. */
  archive?: boolean;
}

function intField(
  value: number | undefined,
  name: string,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TelephonyValidationError(name, `must be an integer ${min}–${max}`);
  }
  return value;
}

/**
 * Renders a call file (one `Key: value` per line, `\n` line ends), validating every value.
 *
 * @throws {TelephonyValidationError} naming the bad field.
 */
export function renderCallFile(spec: CallFileSpec): string {
  const lines = [`Channel: ${validateChannel(spec.channel)}`];
  if (spec.callerId !== undefined && spec.callerId !== '') {
    lines.push(`CallerID: ${validateCallerId(spec.callerId)}`);
  }
  const maxRetries = intField(spec.maxRetries, 'maxRetries', 0, 1000);
  const retryTimeS = intField(spec.retryTimeS, 'retryTimeS', 1, 86_400);
  const waitTimeS = intField(spec.waitTimeS, 'waitTimeS', 1, 3600);
  if (maxRetries !== undefined) lines.push(`MaxRetries: ${maxRetries}`);
  if (retryTimeS !== undefined) lines.push(`RetryTime: ${retryTimeS}`);
  if (waitTimeS !== undefined) lines.push(`WaitTime: ${waitTimeS}`);
  if (spec.application !== undefined) {
    if (!/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(spec.application)) {
      throw new TelephonyValidationError('application', 'must be an application name');
    }
    lines.push(`Application: ${spec.application}`);
    if (spec.data !== undefined && spec.data !== '') {
      validateVariables({ data: spec.data });
      lines.push(`Data: ${spec.data}`);
    }
  } else {
    if (spec.context === undefined) {
      throw new TelephonyValidationError('context', 'is required (or give an application)');
    }
    lines.push(`Context: ${validateDialplanName(spec.context, 'context')}`);
    lines.push(`Extension: ${validateDialplanName(spec.extension ?? 's', 'extension')}`);
    lines.push(`Priority: ${validateDialplanName(String(spec.priority ?? 1), 'priority')}`);
  }
  for (const assignment of validateVariables(spec.variables ?? {}))
    lines.push(`Setvar: ${assignment}`);
  if (spec.account !== undefined && spec.account !== '') {
    lines.push(`Account: ${validateDialplanName(spec.account, 'account')}`);
  }
  if (spec.archive) lines.push('Archive: yes');
  return `${lines.join('\n')}\n`;
}

/** Where and when to place a call file. */
export interface PlaceCallFileOptions {
  /** Asterisk's spool directory (`/var/spool/asterisk/outgoing`). */
  spoolDir: string;
  /**
   * Directory the file is written to first; MUST be on the same filesystem as `spoolDir`
   * (the move is a `rename`). Default: `tmp` next to `spoolDir` (`/var/spool/asterisk/tmp`),
   * created when missing.
   */
  tmpDir?: string;
  /** File name in the spool: `[A-Za-z0-9_.-]`, ending `.call`. Default `switchboard-<random>.call`. */
  name?: string;
  /** When Asterisk may place the call: the file's modification (and access) time. Default now. */
  startAt?: Date;
}

/** A placed call file. */
export interface PlacedCallFile {
  /** Path in the spool directory. */
  path: string;
  /** The content written. */
  content: string;
  /** Its modification time. */
  startAt: Date;
}

/**
 * Writes a call file to `tmpDir`, sets its mtime/atime to `startAt`, then renames it into
 * `spoolDir` (atomic: Asterisk never sees a partial file; `rename` keeps the mtime).
 *
 * @throws {TelephonyValidationError} invalid content or name.
 * @throws {Error} `EXDEV` when `tmpDir` is on another filesystem (the temporary file is removed).
 */
export async function placeCallFile(
  spec: CallFileSpec,
  options: PlaceCallFileOptions,
): Promise<PlacedCallFile> {
  const content = renderCallFile(spec);
  const name = options.name ?? `switchboard-${randomBytes(8).toString('hex')}.call`;
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}\.call$/.test(name)) {
    throw new TelephonyValidationError('name', 'must be letters, digits, _ . - and end with .call');
  }
  const startAt = options.startAt ?? new Date();
  if (Number.isNaN(startAt.getTime()))
    throw new TelephonyValidationError('startAt', 'is not a valid date');
  const tmpDir = options.tmpDir ?? path.join(path.dirname(path.resolve(options.spoolDir)), 'tmp');
  await mkdir(tmpDir, { recursive: true });
  const temp = path.join(tmpDir, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
  const target = path.join(options.spoolDir, name);
  try {
    await writeFile(temp, content, { mode: 0o640, flag: 'wx' });
    await utimes(temp, startAt, startAt);
    await rename(temp, target);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  return { path: target, content, startAt };
}

/** What {@link cancelCallFile} found. */
export type CancelResult =
  /** Removed before Asterisk tried it. */
  | 'cancelled'
  /** Removed, but Asterisk had already started (a `StartRetry:` line): no further retries. */
  | 'stopped'
  /** Not there: already completed, expired or never placed. */
  | 'gone';

/**
 * Removes a call file from the spool so Asterisk does not place (or retry) the call.
 * Asterisk appends `StartRetry: <pid> <try> (<time>)` when it starts an attempt; seeing one
 * means the call is (or was) underway: `stopped`.
 *
 * @throws {TelephonyValidationError} the path is not a `.call` file.
 */
export async function cancelCallFile(file: string): Promise<CancelResult> {
  if (!file.endsWith('.call')) throw new TelephonyValidationError('path', 'is not a .call file');
  let content: string;
  try {
    content = await readFile(file, 'utf8');
    await unlink(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw error;
  }
  return /^StartRetry:/m.test(content) ? 'stopped' : 'cancelled';
}
