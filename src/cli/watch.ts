/**
 * `switchboard watch --ami URL [--ami URL ...]`: live call events from one or more Asterisk
 * servers, through the live runner (reconnects resynchronise calls in progress).
 *
 * A server unreachable at start is retried with backoff, as `serve` does (a status line per
 * failed attempt); `--fail-fast` exits instead (exit 1, one line). A refused login always
 * exits (retrying a wrong secret helps nobody).
 */
import { Command, InvalidArgumentError } from 'commander';
import { amiServerOptions } from '../ami/client.ts';
import { AmiAuthError } from '../ami/errors.ts';
import { DEFAULT_MAX_BRIDGES, DEFAULT_MAX_CHANNELS } from '../calls/engine.ts';
import { AmiRunner } from '../calls/live.ts';
import { consoleReporter, LineWriter } from '../sinks/console.ts';
import { CliError, EXIT } from './errors.ts';
import { formatOption, resolveFormat } from './output.ts';
import { untilSignal } from './signals.ts';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** A whole number >= 1 (`--max-channels`, `--max-bridges`). */
function positiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError('expected a whole number >= 1');
  }
  return n;
}

export function watchCommand(): Command {
  return new Command('watch')
    .description('print live call events from one or more Asterisk servers (until Ctrl-C)')
    .requiredOption(
      '--ami <url>',
      'tcp://USER:SECRET@HOST:5038 or tls://...; repeat for several servers',
      collect,
    )
    .addOption(formatOption())
    .option(
      '--fail-fast',
      'exit (1, one line) when a server cannot be reached at start, instead of retrying',
    )
    .option(
      '--max-channels <n>',
      'live channels followed per server; beyond, the oldest are forgotten (as ami.maxChannels)',
      positiveInteger,
      DEFAULT_MAX_CHANNELS,
    )
    .option(
      '--max-bridges <n>',
      'live bridges followed per server; beyond, the oldest are forgotten (as ami.maxBridges)',
      positiveInteger,
      DEFAULT_MAX_BRIDGES,
    )
    .action(
      async (options: {
        ami: string[];
        format?: string;
        maxChannels: number;
        maxBridges: number;
        failFast?: boolean;
      }) => {
        const retry = options.failFast !== true;
        let runner: AmiRunner | undefined;
        // Backpressure: while stdout cannot take more, no AMI socket is read.
        const writer = new LineWriter(process.stdout, 65536, {
          flushSoon: true,
          onBackpressure: (full) => {
            for (const client of runner?.clients ?? []) {
              if (full) client.pause();
              else client.resume();
            }
          },
        });
        const format = resolveFormat(options.format);
        const reporter = consoleReporter(writer, {
          format,
          showServer: options.ami.length > 1,
          showTime: true,
        });
        // Until every server is logged in, status lines wait: when the start fails, the line
        // saying why is the command's error line, printed once (not as a status, then again).
        // Retrying an unreachable server, they are printed from its first failure on.
        let held: string[] | undefined = [];
        const print = (message: string): void => {
          process.stderr.write(`switchboard: ${message}\n`);
        };
        const servers = options.ami.map((url) => ({
          ...amiServerOptions({ url }),
          retryInitialConnect: retry,
        }));
        runner = new AmiRunner(servers, reporter, {
          onStatus: (message) => (held === undefined ? print(message) : held.push(message)),
          maxChannels: options.maxChannels,
          maxBridges: options.maxBridges,
        });
        if (retry) {
          const told = new Set<string>();
          for (const client of runner.clients) {
            // only about the first connection: later losses have their own status lines
            client.on('connect', () => told.add(client.name));
            client.on('error', (error) => {
              if (error instanceof AmiAuthError || told.has(client.name)) return;
              told.add(client.name);
              for (const line of held ?? []) print(line);
              held = undefined;
              print(`${client.name}: not reachable; retrying (Ctrl-C stops; --fail-fast exits)`);
            });
          }
        }
        const stop = untilSignal();
        try {
          try {
            // Retrying, start() waits until every server is logged in: Ctrl-C may come first.
            await Promise.race([runner.start(), stop]);
          } catch (error) {
            const reason = error instanceof Error ? error.message : String(error);
            const own = held?.find((line) => line.endsWith(`: ${reason}`));
            for (const line of held ?? []) if (line !== own) print(line);
            held = undefined;
            throw new CliError(own ?? reason, EXIT.failure, { cause: error });
          }
          for (const line of held ?? []) print(line);
          held = undefined;
          await stop;
        } finally {
          await runner.stop();
          await writer.flush();
        }
      },
    );
}
