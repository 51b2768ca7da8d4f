/**
 * The `switchboard` command (bin/switchboard.js runs {@link main}). One file per command in
 * this folder; this file only wires them into commander and turns errors into one line on
 * stderr and an exit code.
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.ts';
import { configCommand } from './config.ts';
import { doctorCommand } from './doctor.ts';
import { CliError, EXIT } from './errors.ts';
import { jenkinsWatchCommand } from './jenkins-watch.ts';
import { listenCommand } from './listen.ts';
import { recordCommand } from './record.ts';
import { replayCommand } from './replay.ts';
import { serveCommand } from './serve.ts';
import { simCommand } from './sim.ts';
import { watchCommand } from './watch.ts';

/** Builds the commander program; exported for tests and for `--help` generation. */
export function program(): Command {
  const root = new Command('switchboard')
    .description(
      'Call events from the Asterisk Manager Interface, the XiVO message bus, alert calls, announcements and mobile wake-up',
    )
    .version(
      `switchboard ${VERSION} (Node ${process.versions.node})`,
      '-V, --version',
      'print the version and exit',
    )
    .option('-v, --verbose', 'print stack traces and debug details on errors')
    .showHelpAfterError()
    .exitOverride();
  for (const command of [
    replayCommand(),
    recordCommand(),
    watchCommand(),
    serveCommand(),
    configCommand(),
    listenCommand(),
    simCommand(),
    jenkinsWatchCommand(),
    doctorCommand(),
  ]) {
    // addCommand() does not pass these on: usage errors must throw, not exit the process.
    command.copyInheritedSettings(root);
    root.addCommand(command);
  }
  return root;
}

/**
 * Runs the command line `argv` (as `process.argv`: node, script, arguments) and resolves
 * with the exit code. Never throws: failures print `switchboard: <message>` on stderr.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const root = program();
  try {
    await root.parseAsync(argv as string[]);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander already printed its message (and help after errors).
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version')
        return EXIT.ok;
      if (error.code === 'commander.help') return EXIT.ok;
      return EXIT.usage;
    }
    const verbose = root.opts<{ verbose?: boolean }>().verbose === true;
    const message = error instanceof Error ? error.message : String(error);
    // A CliError's lines are each a problem of their own (every bad configuration key);
    // any other error is one line.
    const lines = error instanceof CliError ? message.split('\n') : [message.split('\n')[0]];
    for (const line of lines) process.stderr.write(`switchboard: ${line}\n`);
    if (verbose && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    return error instanceof CliError ? error.exitCode : EXIT.failure;
  }
}
