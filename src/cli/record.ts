/**
 * `switchboard record --ami URL --out FILE`: writes every AMI event of a live Asterisk as
 * JSON Lines until interrupted; the file replays with `switchboard replay`.
 *
 * The file is opened before connecting (a path that cannot be written stops at once, exit
 * 1), and the events are flushed every second: a write that fails (disk full, file system
 * gone) stops the recording with one line naming the file and the reason, exit 1.
 *
 * A server unreachable at start is retried with backoff, as `serve` does (one line says so);
 * `--fail-fast` exits instead (exit 1, one line). A refused login always exits.
 */
import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { Command } from 'commander';
import { AmiClient, amiServerOptions } from '../ami/client.ts';
import { AmiAuthError } from '../ami/errors.ts';
import { createRecordingWriter } from '../ami/recording.ts';
import { CliError } from './errors.ts';
import { untilSignal } from './signals.ts';

/** Opens `path` for writing (created, truncated). @throws CliError naming the path and the reason. */
async function openOut(path: string): Promise<{ stream: Writable }> {
  try {
    const handle = await open(path, 'w');
    return { stream: handle.createWriteStream() };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(`cannot write ${path}: ${code ?? (error as Error).message}`);
  }
}

export function recordCommand(): Command {
  return new Command('record')
    .description('record every AMI event of a live Asterisk as JSON Lines (until Ctrl-C)')
    .requiredOption('--ami <url>', 'tcp://USER:SECRET@HOST:5038 or tls://... (?auth=md5&name=NAME)')
    .requiredOption('-o, --out <file>', 'JSON Lines file to write (- for standard output)')
    .option(
      '--fail-fast',
      'exit (1, one line) when the server cannot be reached at start, instead of retrying',
    )
    .action(async (options: { ami: string; out: string; failFast?: boolean }) => {
      const retry = options.failFast !== true;
      const amiOptions = amiServerOptions({ url: options.ami });
      const file = options.out === '-' ? undefined : await openOut(options.out);
      const writer = createRecordingWriter(file?.stream ?? process.stdout);
      const client = new AmiClient({ ...amiOptions, retryInitialConnect: retry });
      let told = false;
      client.on('connect', () => {
        told = true;
      });
      client.on('error', (error) => {
        // The first connection failing: said once (a refused login is the command's error).
        if (!retry || told || error instanceof AmiAuthError) return;
        told = true;
        process.stderr.write(
          `switchboard: ${client.name}: not reachable (${error.message}); retrying (Ctrl-C stops; --fail-fast exits)\n`,
        );
      });
      client.on('event', (event) => writer.write(event));
      client.on('disconnect', (server, error) => {
        if (error)
          process.stderr.write(
            `switchboard: ${server}: connection lost (${error.message}); reconnecting\n`,
          );
      });
      const writeError = (error: unknown): CliError => {
        const code = (error as NodeJS.ErrnoException).code;
        return new CliError(
          `cannot write ${options.out}: ${code ?? (error as Error).message}; recording stopped`,
        );
      };
      let failed: (error: Error) => void = () => {};
      const writeFailure = new Promise<never>((_, reject) => {
        failed = reject;
      });
      writeFailure.catch(() => {});
      const flushTimer = setInterval(() => {
        writer.flush().catch((error: unknown) => failed(writeError(error)));
      }, 1000);
      let failure: unknown;
      let recording = false;
      const stop = untilSignal();
      try {
        await Promise.race([client.connect(), stop]);
        recording = client.connected;
        if (recording) {
          process.stderr.write(
            `switchboard: recording ${client.name} to ${options.out} (Ctrl-C stops)\n`,
          );
          await Promise.race([stop, writeFailure]);
        }
      } catch (error) {
        failure = error;
      }
      clearInterval(flushTimer);
      await client.close();
      await writer.close().catch((error: unknown) => {
        failure ??= writeError(error);
      });
      if (file !== undefined) {
        // The stream closes the file once ended (autoClose).
        await new Promise<void>((resolve) => {
          if (file.stream.closed) return resolve();
          file.stream.once('close', resolve);
          file.stream.end();
        });
      }
      if (failure !== undefined) throw failure;
      if (recording) process.stderr.write(`switchboard: ${writer.count} events written\n`);
    });
}
