/**
 * `switchboard watch --ami URL [--ami URL ...]`: live call events from one or more Asterisk
 * servers, through the live runner (reconnects resynchronise calls in progress).
 */
import { Command } from 'commander';
import { parseAmiUrl } from '../ami/client.ts';
import { AmiRunner } from '../calls/live.ts';
import { consoleReporter, LineWriter } from '../sinks/console.ts';
import { formatOption, resolveFormat } from './output.ts';
import { untilSignal } from './signals.ts';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
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
    .action(async (options: { ami: string[]; format?: string }) => {
      const writer = new LineWriter(process.stdout, 1);
      const format = resolveFormat(options.format);
      const reporter = consoleReporter(writer, {
        format,
        showServer: options.ami.length > 1,
        showTime: true,
      });
      const runner = new AmiRunner(options.ami.map(parseAmiUrl), reporter, {
        onStatus: (message) => process.stderr.write(`switchboard: ${message}\n`),
      });
      try {
        await runner.start();
        await untilSignal();
      } finally {
        await runner.stop();
        await writer.flush();
      }
    });
}
