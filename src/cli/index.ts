/**
 * The `switchboard` command (bin/switchboard.js runs {@link main}). One file per command in
 * this folder; this file only wires them into commander and turns errors into one line on
 * stderr and an exit code.
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.ts';
import { CliError, EXIT } from './errors.ts';

/**
 * The commands, in help order: each one's modules load only when it runs (or its help is
 * asked for), so that `switchboard --help` and a small `replay` start fast. `description`
 * is the line of the root help; it is the command's own (a test checks they agree).
 */
export const COMMANDS: Record<string, { description: string; load: () => Promise<Command> }> = {
  replay: {
    description: 'replay a recorded AMI session and print its call events',
    load: async () => (await import('./replay.ts')).replayCommand(),
  },
  record: {
    description: 'record every AMI event of a live Asterisk as JSON Lines (until Ctrl-C)',
    load: async () => (await import('./record.ts')).recordCommand(),
  },
  watch: {
    description: 'print live call events from one or more Asterisk servers (until Ctrl-C)',
    load: async () => (await import('./watch.ts')).watchCommand(),
  },
  serve: {
    description:
      'run the service: AMI → call events → message bus, webhooks, HTTP APIs (until SIGTERM/Ctrl-C; SIGHUP reloads)',
    load: async () => (await import('./serve.ts')).serveCommand(),
  },
  config: {
    description: 'configuration tools',
    load: async () => (await import('./config.ts')).configCommand(),
  },
  listen: {
    description: 'print bus messages as they arrive, one JSON line each (until Ctrl-C)',
    load: async () => (await import('./listen.ts')).listenCommand(),
  },
  sim: {
    description:
      'run a fake Asterisk speaking AMI: replays recordings, answers Originate by script',
    load: async () => (await import('./sim.ts')).simCommand(),
  },
  'jenkins-watch': {
    description: 'watch Jenkins and announce newly failed jobs on the ringer (Gong API)',
    load: async () => (await import('./jenkins-watch.ts')).jenkinsWatchCommand(),
  },
  doctor: {
    description:
      'check the configuration, sox, espeak-ng and every configured server; one line per check, exit 1 on any failure',
    load: async () => (await import('./doctor.ts')).doctorCommand(),
  },
};

/**
 * Builds the commander program. The commands named in `load` (default: every command) are
 * the real ones; the others are placeholders with their name and description only (enough
 * for the root help, `help`, and commander's unknown-command suggestions).
 */
export async function program(load: readonly string[] = Object.keys(COMMANDS)): Promise<Command> {
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
  for (const [name, spec] of Object.entries(COMMANDS)) {
    const command = load.includes(name)
      ? await spec.load()
      : new Command(name).description(spec.description);
    // addCommand() does not pass these on: usage errors must throw, not exit the process.
    command.copyInheritedSettings(root);
    root.addCommand(command);
  }
  return root;
}

/**
 * The commands a command line runs or asks help for: its first two words that are not
 * options (`watch ...`, `help watch`). The root's own options take no value.
 */
function commandsOf(argv: readonly string[]): string[] {
  return argv
    .slice(2)
    .filter((arg) => !arg.startsWith('-'))
    .slice(0, 2)
    .filter((arg) => Object.hasOwn(COMMANDS, arg));
}

/**
 * Runs the command line `argv` (as `process.argv`: node, script, arguments) and resolves
 * with the exit code. Never throws: failures print `switchboard: <message>` on stderr.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const root = await program(commandsOf(argv));
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
