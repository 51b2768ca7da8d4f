/**
 * `switchboard replay FILE [--format jsonl|pretty]`: replays a recording (JSON array or JSON
 * Lines; `-` is standard input) through the call-event engine and prints the call events.
 */
import { Command } from 'commander';
import { readRecordingBatches } from '../ami/recording.ts';
import { runRecording } from '../calls/runner.ts';
import { consoleReporter, LineWriter } from '../sinks/console.ts';
import { formatOption, resolveFormat } from './output.ts';

export function replayCommand(): Command {
  return new Command('replay')
    .description('replay a recorded AMI session and print its call events')
    .argument(
      '<file>',
      'recording: a JSON array of AMI events or JSON Lines; - reads standard input',
    )
    .addOption(formatOption())
    .action(async (file: string, options: { format?: string }) => {
      const writer = new LineWriter(process.stdout);
      const reporter = consoleReporter(writer, { format: resolveFormat(options.format) });
      try {
        await runRecording(readRecordingBatches(file), reporter, {
          afterBatch: () => writer.ready(),
        });
      } finally {
        await writer.flush();
      }
    });
}
