/** Running the built `switchboard` command (bin/switchboard.js → dist/) as a child process. */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'switchboard.js');

/**
 * The children's environment: this process's, plus `SWITCHBOARD_ANNOUNCE_LISTEN` on a free
 * port unless set, so that `serve` processes of tests running in parallel never all bind
 * Gong's fixed port 9600 (`announce.listen`).
 */
function childEnv(): NodeJS.ProcessEnv {
  return { SWITCHBOARD_ANNOUNCE_LISTEN: '127.0.0.1:0', ...process.env };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Where and with what environment a command runs (default: the repository, this process's env). */
export interface CliOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** Runs `switchboard ...args` to completion, optionally feeding `stdin`. */
export function runCli(
  args: readonly string[],
  stdin?: string,
  options: CliOptions = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? ROOT,
      env: options.env ?? childEnv(),
      stdio: 'pipe',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

/** A running child with its output so far, for long-running commands (watch, record). */
export interface RunningCli {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

/** Starts `command ...args` (default: the switchboard bin under the current Node). */
export function startCli(
  args: readonly string[],
  command: string[] = [process.execPath, BIN],
  options: CliOptions = {},
): RunningCli {
  const [exe, ...pre] = command as [string, ...string[]];
  const child = spawn(exe, [...pre, ...args], {
    cwd: options.cwd ?? ROOT,
    env: options.env ?? childEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code) => resolve(code)),
  );
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

export { until } from './until.ts';
