/**
 * `switchboard watch --ami URL [--ami URL ...]`: live call events from one or more Asterisk
 * servers, through the live runner (reconnects resynchronise calls in progress).
 */
import { Command, InvalidArgumentError } from 'commander';
import { parseAmiUrl } from '../ami/client.ts';
import { DEFAULT_MAX_BRIDGES, DEFAULT_MAX_CHANNELS } from '../calls/engine.ts';
import { AmiRunner } from '../calls/live.ts';
import { consoleReporter, LineWriter } from '../sinks/console.ts';
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
      }) => {
        const writer = new LineWriter(process.stdout, 1);
        const format = resolveFormat(options.format);
        const reporter = consoleReporter(writer, {
          format,
          showServer: options.ami.length > 1,
          showTime: true,
        });
        const runner = new AmiRunner(options.ami.map(parseAmiUrl), reporter, {
          onStatus: (message) => process.stderr.write(`switchboard: ${message}\n`),
          maxChannels: options.maxChannels,
          maxBridges: options.maxBridges,
        });
        try {
          await runner.start();
          await untilSignal();
        } finally {
          await runner.stop();
          await writer.flush();
        }
      },
    );
}
