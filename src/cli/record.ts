/**
 * `switchboard record --ami URL --out FILE`: writes every AMI event of a live Asterisk as
 * JSON Lines until interrupted; the file replays with `switchboard replay`.
 */
import { Command } from 'commander';
import { AmiClient, parseAmiUrl } from '../ami/client.ts';
import { createRecordingWriter } from '../ami/recording.ts';
import { untilSignal } from './signals.ts';

export function recordCommand(): Command {
  return new Command('record')
    .description('record every AMI event of a live Asterisk as JSON Lines (until Ctrl-C)')
    .requiredOption('--ami <url>', 'tcp://USER:SECRET@HOST:5038 or tls://... (?auth=md5&name=NAME)')
    .requiredOption('-o, --out <file>', 'JSON Lines file to write (- for standard output)')
    .action(async (options: { ami: string; out: string }) => {
      const client = new AmiClient(parseAmiUrl(options.ami));
      const writer = createRecordingWriter(options.out === '-' ? process.stdout : options.out);
      client.on('event', (event) => writer.write(event));
      client.on('disconnect', (server, error) => {
        if (error)
          process.stderr.write(
            `switchboard: ${server}: connection lost (${error.message}); reconnecting\n`,
          );
      });
      const flushTimer = setInterval(() => {
        writer.flush().catch(() => {});
      }, 1000);
      try {
        await client.connect();
        process.stderr.write(
          `switchboard: recording ${client.name} to ${options.out} (Ctrl-C stops)\n`,
        );
        await untilSignal();
      } finally {
        clearInterval(flushTimer);
        await client.close();
        await writer.close();
        process.stderr.write(`switchboard: ${writer.count} events written\n`);
      }
    });
}
