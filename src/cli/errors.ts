/** Errors the `switchboard` command reports as one line on stderr with an exit code. */
import type { ConfigError } from '../config/load.ts';

/** Exit codes of the `switchboard` command. */
export const EXIT = {
  ok: 0,
  /** The work failed: bad input file, refused login, unreachable server, ... */
  failure: 1,
  /** The command line itself is wrong: unknown option, missing argument. */
  usage: 2,
} as const;

/**
 * A failure with a message meant for the user (no stack trace unless --verbose): one line, or
 * one line per problem (each printed as `switchboard: <line>`).
 */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = EXIT.failure, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/**
 * A {@link ConfigError} as the command's error: one line per problem, naming the key
 * (`switchboard: config: http.listen: expected HOST:PORT ...`), exit code 1.
 */
export function configFailure(error: ConfigError): CliError {
  return new CliError(error.message, EXIT.failure, { cause: error });
}
