/**
 * `switchboard serve`: runs the service (src/serve/service.ts) until SIGTERM or SIGINT, then
 * shuts down gracefully and exits 0.
 *
 * Configuration: `--config FILE` (or `SWITCHBOARD_CONFIG`), then `SWITCHBOARD_*` variables,
 * then the flags (`--listen`, `--ami` repeatable, `--amqp`, `--database`, `--redis`), each
 * winning over the previous. `--simulator` runs the embedded PBX simulator and connects to
 * it; `--print-events pretty|jsonl` prints every call event on stdout (logs then go to
 * stderr).
 */
import { Command, Option } from 'commander';
import { ConfigError, type ConfigOverrides, loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { createLogger } from '../http/server.ts';
import { featureModules } from '../serve/modules.ts';
import { createService } from '../serve/service.ts';
import { consoleReporter, LineWriter } from '../sinks/console.ts';
import { CliError, EXIT } from './errors.ts';
import { untilSignal } from './signals.ts';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Options of `serve` as commander parses them. */
interface ServeFlags {
  config?: string;
  listen?: string;
  ami?: string[];
  amqp?: string;
  database?: string;
  redis?: string;
  simulator?: boolean;
  printEvents?: 'pretty' | 'jsonl';
}

/**
 * Loads the configuration for `serve`-like commands: file, env, flags.
 * @throws CliError listing every problem (one per line, naming the key), exit code 1.
 */
export function loadServeConfig(flags: ServeFlags): Config {
  const overrides: ConfigOverrides = {};
  if (flags.listen !== undefined) overrides.listen = flags.listen;
  if (flags.ami !== undefined) overrides.ami = flags.ami;
  if (flags.amqp !== undefined) overrides.amqp = flags.amqp;
  if (flags.database !== undefined) overrides.database = flags.database;
  if (flags.redis !== undefined) overrides.redis = flags.redis;
  try {
    const config = loadConfig({
      ...(flags.config === undefined ? {} : { file: flags.config }),
      overrides,
    });
    if (flags.simulator === true) config.simulator.enabled = true;
    return config;
  } catch (error) {
    if (error instanceof ConfigError) {
      // main() prints the first line only: print them all, then a summary.
      process.stderr.write(`${error.message}\n`);
      throw new CliError(
        `invalid configuration (${error.problems.length} problem${error.problems.length === 1 ? '' : 's'})`,
        EXIT.failure,
      );
    }
    throw error;
  }
}

/** The `serve` command. */
export function serveCommand(): Command {
  return new Command('serve')
    .description(
      'run the service: AMI → call events → message bus, webhooks, HTTP APIs (until SIGTERM/Ctrl-C)',
    )
    .option('-c, --config <file>', 'YAML configuration file (default: $SWITCHBOARD_CONFIG)')
    .option('--listen <host:port>', 'HTTP address (http.listen)')
    .option('--ami <url>', 'Asterisk AMI URL tcp://USER:SECRET@HOST:5038; repeatable', collect)
    .option('--amqp <url>', 'RabbitMQ URL amqp://USER:PASS@HOST:5672/ (amqp.url)')
    .option('--database <url>', 'SQLite file or postgres:// URL (database.url)')
    .option('--redis <url>', 'Redis URL (redis.url)')
    .option('--simulator', 'run the embedded PBX simulator and connect to it')
    .addOption(
      new Option(
        '--print-events <format>',
        'print call events on stdout (logs go to stderr)',
      ).choices(['pretty', 'jsonl']),
    )
    .action(async (flags: ServeFlags) => {
      const config = loadServeConfig(flags);
      const printing = flags.printEvents !== undefined;
      const logger = createLogger(config.log.level, printing ? process.stderr : undefined);
      const writer = new LineWriter(process.stdout, 1);
      const service = createService({
        config,
        logger,
        modules: featureModules(),
        ...(printing
          ? {
              reporter: consoleReporter(writer, {
                format: flags.printEvents ?? 'pretty',
                showTime: flags.printEvents === 'pretty',
                showServer: config.ami.servers.length + (config.simulator.enabled ? 1 : 0) > 1,
              }),
            }
          : {}),
      });
      // Listen for signals before starting, so a SIGTERM during start stops cleanly too.
      const signal = untilSignal();
      try {
        await service.start();
      } catch (error) {
        throw new CliError(
          `cannot start: ${error instanceof Error ? error.message : String(error)}`,
          EXIT.failure,
          { cause: error },
        );
      }
      const received = await signal;
      logger.info({ signal: received }, 'signal received; shutting down');
      // A second signal while stopping exits at once.
      const force = (): void => process.exit(EXIT.failure);
      process.once('SIGINT', force);
      process.once('SIGTERM', force);
      try {
        await service.stop();
        await writer.flush();
      } finally {
        process.off('SIGINT', force);
        process.off('SIGTERM', force);
      }
    });
}
