/** The machine's own Node and PATH, as opposed to the project's Node 24 in node_modules. */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** PATH without the node_modules/.bin entries npm scripts put first: what a user's shell has. */
export function machinePath(path = process.env.PATH ?? ''): string {
  return path
    .split(delimiter)
    .filter((dir) => dir !== '' && !/node_modules[\\/]\.bin$/.test(dir))
    .join(delimiter);
}

/** The first `name` in the directories of the machine's PATH, or undefined. */
export function onMachinePath(name: string): string | undefined {
  return machinePath()
    .split(delimiter)
    .map((dir) => join(dir, name))
    .find((file) => existsSync(file));
}

/** The version (`20.20.2`) of the Node executable `exe`, or undefined when it does not run. */
export function nodeVersion(exe: string): string | undefined {
  try {
    return execFileSync(exe, ['--version'], { encoding: 'utf8' }).trim().replace(/^v/, '');
  } catch {
    return undefined;
  }
}

/** True when `version` is older than the CLI's minimum, Node 22.12. */
export function tooOld(version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major < 22 || (major === 22 && minor < 12);
}

/**
 * A Node on this machine older than 22.12 (the `node` of the machine's PATH, /usr/bin/node or
 * /usr/local/bin/node), or undefined when there is none.
 */
export function oldMachineNode(): { exe: string; version: string } | undefined {
  const onPath = onMachinePath('node');
  for (const exe of [
    ...(onPath === undefined ? [] : [onPath]),
    '/usr/bin/node',
    '/usr/local/bin/node',
  ]) {
    const version = existsSync(exe) ? nodeVersion(exe) : undefined;
    if (version !== undefined && tooOld(version)) return { exe, version };
  }
  return undefined;
}
