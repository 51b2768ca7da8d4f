/**
 * Checks of the announce module that the configuration schema cannot make: the ringer's
 * allow-list and dial-string template (at `config check` and at start) and the call-file
 * spool directory (at start, in `/readyz` and by `doctor`). `announceFeature` (index.ts) hands
 * them to `checkServiceConfig` and `doctor`.
 *
 * @module
 */
import { constants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/schema.ts';
import { ExtensionAllowList } from '../telephony/allowlist.ts';
import {
  TelephonyValidationError,
  validateDialplanName,
  validateDialTemplate,
} from '../telephony/dialstring.ts';

/**
 * Characters of a sound path handed to the dialplan. Gong's `[xgong]` context runs
 * `System(rm ${AUDIO_FILE}.wav)`, i.e. the value goes through a shell: only characters no
 * shell treats specially (no glob, no `#`, no `=`...).
 */
const SOUND_PATH = /^[0-9A-Za-z_./-]+$/;

/**
 * Checks that call files can be placed: `spoolDir` is an existing directory this process may
 * write to, and the temporary directory next to it (default `<spoolDir>/../tmp`, created
 * when missing) is writable too.
 * @returns what is wrong (one phrase naming the path), or undefined when fine.
 */
export async function checkSpoolDir(options: {
  spoolDir: string;
  tmpDir?: string;
}): Promise<string | undefined> {
  const spool = path.resolve(options.spoolDir);
  const info = await stat(spool).catch(() => undefined);
  if (!info) return `${spool} does not exist`;
  if (!info.isDirectory()) return `${spool} is not a directory`;
  try {
    await access(spool, constants.W_OK | constants.X_OK);
  } catch {
    return `${spool} is not writable by this process`;
  }
  const tmp = path.resolve(options.tmpDir ?? path.join(path.dirname(spool), 'tmp'));
  try {
    await mkdir(tmp, { recursive: true });
    await access(tmp, constants.W_OK | constants.X_OK);
  } catch {
    return `the temporary directory ${tmp} next to it cannot be created or written`;
  }
  return undefined;
}

/**
 * What the configuration schema cannot check in `announce` (used by `config check` and at
 * start): `announce.extension` and every `announce.allowedExtensions` entry are valid,
 * `announce.dialString` is a valid template, `announce.context` a dialplan name,
 * `announce.soundVariable` not `SWITCHBOARD_CALL_ID`, `announce.soundsDir` (resolved) made of
 * `0-9 A-Z a-z _ . / -` only (its paths reach the dialplan, and a shell in Gong's),
 * `announce.listen` not the same address as `http.listen`, and, when the Jenkins watcher runs
 * in the same process, `jenkins.extension` (or the default) is an extension the announce
 * module dials.
 * @returns the problems, each naming its key.
 */
export function checkAnnounceConfig(config: Config): { key: string; reason: string }[] {
  if (!config.announce.enabled) return [];
  const problems: { key: string; reason: string }[] = [];
  const invalid = (error: unknown, key: string) => {
    if (!(error instanceof TelephonyValidationError)) throw error;
    const reason = error.message.startsWith(`${error.field}: `)
      ? error.message.slice(error.field.length + 2)
      : error.message;
    problems.push({ key: error.field.startsWith('announce.') ? error.field : key, reason });
  };
  let extensions: ExtensionAllowList | undefined;
  try {
    extensions = new ExtensionAllowList({
      defaultExtension: config.announce.extension,
      allowed: config.announce.allowedExtensions,
    });
  } catch (error) {
    invalid(error, 'announce.allowedExtensions');
  }
  try {
    validateDialTemplate(config.announce.dialString, 'announce.dialString');
  } catch (error) {
    invalid(error, 'announce.dialString');
  }
  try {
    validateDialplanName(config.announce.context, 'announce.context');
  } catch (error) {
    invalid(error, 'announce.context');
  }
  if (config.announce.soundVariable === 'SWITCHBOARD_CALL_ID') {
    problems.push({
      key: 'announce.soundVariable',
      reason: 'SWITCHBOARD_CALL_ID is the call id variable; name another (Gong: AUDIO_FILE)',
    });
  }
  const sounds = path.resolve(config.announce.soundsDir);
  if (!SOUND_PATH.test(sounds)) {
    problems.push({
      key: 'announce.soundsDir',
      reason: `${JSON.stringify(sounds)} must contain only 0-9 A-Z a-z _ . / - (its files are passed to the dialplan, and Gong's passes them to a shell)`,
    });
  }
  const listen = config.announce.listen;
  if (listen !== '' && listen === config.http.listen && !listen.endsWith(':0')) {
    problems.push({
      key: 'announce.listen',
      reason: `is http.listen (${listen}), which already serves the Gong API; set another HOST:PORT or ''`,
    });
  }
  const jenkins = config.jenkins;
  if (jenkins.enabled && extensions !== undefined) {
    if (jenkins.extension === '' && config.announce.extension === '') {
      problems.push({
        key: 'jenkins.extension',
        reason: 'is empty and so is announce.extension: the watcher has no ringer to dial',
      });
    } else if (jenkins.extension !== '' && !extensions.allows(jenkins.extension)) {
      problems.push({
        key: 'jenkins.extension',
        reason: 'is neither announce.extension nor matched by announce.allowedExtensions',
      });
    }
  }
  return problems;
}
