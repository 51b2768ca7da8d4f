/**
 * The logger type, one definition: the subset of a pino logger that libraries (the bus, the
 * sinks, `listen`) need, so that they take any pino logger, or none. Modules of `serve` that
 * create child loggers take pino's own `Logger`, which satisfies this one.
 */

/** The subset of a pino logger the bus and sinks use. Default: {@link silentLogger}. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A logger that discards everything (the default). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
