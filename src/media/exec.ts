/**
 * Runs external programs (sox, espeak-ng, TTS commands) the one safe way: `spawn` with an
 * argument array (never a shell), a timeout that kills the process (SIGKILL), bounded
 * output capture, optional stdin data.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { MediaError } from './errors.ts';

/** Options of {@link runTool}. */
export interface RunToolOptions {
  /** Kill the process (SIGKILL) after this many ms and throw `TIMEOUT`. Default 30000. */
  timeoutMs?: number;
  /** Data written to the process's stdin (then stdin is closed). Default: stdin closed at once. */
  input?: string | Buffer;
  /** Largest captured stdout, in bytes; beyond it the process is killed (`TOOL_FAILED`). Default 1 MiB. */
  maxStdoutBytes?: number;
  /** Aborts the run (the process is killed, the promise rejects with the signal's reason). */
  signal?: AbortSignal;
}

/** What {@link runTool} resolves with (exit code 0). */
export interface RunToolResult {
  stdout: string;
  stderr: string;
}

const MAX_STDERR = 64 * 1024;

/**
 * Runs `file` with `args` (no shell) and resolves when it exits with status 0.
 *
 * @throws {MediaError} `TOOL_MISSING` (ENOENT/EACCES on the executable), `TIMEOUT`,
 *   `TOOL_FAILED` (non-zero exit, killed by a signal, stdout over its limit); the stderr of
 *   the program is in `detail`.
 */
export function runTool(
  file: string,
  args: readonly string[],
  options: RunToolOptions = {},
): Promise<RunToolResult> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const maxStdout = options.maxStdoutBytes ?? 1024 * 1024;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      shell: false,
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: options.signal,
      windowsHide: true,
    });
    const out: Buffer[] = [];
    let outBytes = 0;
    let stderr = '';
    let failure: MediaError | undefined;
    let settled = false;
    const finish = (error: Error | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr });
    };
    const timer = setTimeout(() => {
      failure = new MediaError('TIMEOUT', `${file} timed out after ${timeoutMs} ms`, stderr);
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > maxStdout) {
        failure ??= new MediaError('TOOL_FAILED', `${file} wrote more than ${maxStdout} bytes`);
        child.kill('SIGKILL');
        return;
      }
      out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < MAX_STDERR) stderr += chunk.toString('utf8');
    });
    child.stdin.on('error', () => undefined); // EPIPE when the program ignores its stdin
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'EACCES') {
        finish(new MediaError('TOOL_MISSING', `${file} is not installed or not executable`));
      } else {
        finish(error);
      }
    });
    child.on('close', (code, signal) => {
      if (failure) return finish(failure);
      if (code === 0) return finish(undefined);
      const how = code === null ? `was killed by ${signal}` : `exited with status ${code}`;
      finish(new MediaError('TOOL_FAILED', `${file} ${how}`, stderr));
    });
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
  });
}
