/**
 * Checks of the announce module that the configuration schema cannot make: the ringer's
 * allow-list and dial-string template (at `config check` and at start) and the call-file
 * spool directory (at start and in `/readyz`). Kept apart from `index.ts` so that
 * `checkServiceConfig` does not load the media stack.
 *
 * @module
 */
import { constants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/schema.ts';
import { ExtensionAllowList } from '../telephony/allowlist.ts';
import { TelephonyValidationError, validateDialTemplate } from '../telephony/dialstring.ts';

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
 * `announce.dialString` is a valid template, and, when the Jenkins watcher runs in the same
 * process, `jenkins.extension` (or the default) is an extension the announce module dials.
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
