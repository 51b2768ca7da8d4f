/** Errors the `switchboard` command reports as one line on stderr with an exit code. */

/** Exit codes of the `switchboard` command. */
export const EXIT = {
  ok: 0,
  /** The work failed: bad input file, refused login, unreachable server, ... */
  failure: 1,
  /** The command line itself is wrong: unknown option, missing argument. */
  usage: 2,
} as const;

/** A failure with a one-line message meant for the user (no stack trace unless --verbose). */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = EXIT.failure, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}
