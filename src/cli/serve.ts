/**
 * `switchboard serve`: runs the service (src/serve/service.ts) until SIGTERM or SIGINT, then
 * shuts down gracefully and exits 0. SIGHUP reloads the configuration files.
 *
 * Configuration: `--config FILE` (else `SWITCHBOARD_CONFIG`, else
 * `/etc/switchboard/switchboard.yaml` when it exists) with its `conf.d/*.yaml` overlays,
 * then `SWITCHBOARD_*` variables, then the flags (`--listen`, `--ami` repeatable, `--amqp`,
 * `--database`, `--redis`), each winning over the previous. `--simulator` runs the embedded
 * PBX simulator and connects to it; `--print-events pretty|jsonl` prints every call event on
 * stdout (logs then go to stderr).
 *
 * Signals (./signals.ts): the first SIGINT/SIGTERM stops gracefully; a repeated SIGTERM and
 * a duplicated SIGINT are ignored; a second Ctrl-C a moment later exits 1 at once; SIGHUP
 * reloads: the files are read and validated again; a bad file is logged in one line and the
 * running configuration kept; what can change at runtime is applied (`log.level`, `auth`,
 * `webhooks`), every other changed key is logged as needing a restart.
 */
import { Command, Option } from 'commander';
import {
  ConfigError,
  type ConfigOverrides,
  DEFAULT_CONFIG_FILE,
  type LoadConfigOptions,
  loadConfig,
  resolveConfigFiles,
} from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { createLogger, resolveLogFormat } from '../http/server.ts';
import { featureModules } from '../serve/modules.ts';
import { createService } from '../serve/service.ts';
import { consoleReporter, LineWriter } from '../sinks/console.ts';
import { VERSION } from '../version.ts';
import { CliError, configFailure, EXIT } from './errors.ts';
import { handleSignals } from './signals.ts';

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
  logFormat?: 'auto' | 'pretty' | 'json';
}

/** The `loadConfig` options of `serve`-like commands: the file (or the default one) and the flags. */
export function serveConfigOptions(
  flags: Pick<ServeFlags, 'config' | 'listen' | 'ami' | 'amqp' | 'database' | 'redis'>,
): LoadConfigOptions {
  const overrides: ConfigOverrides = {};
  if (flags.listen !== undefined) overrides.listen = flags.listen;
  if (flags.ami !== undefined) overrides.ami = flags.ami;
  if (flags.amqp !== undefined) overrides.amqp = flags.amqp;
  if (flags.database !== undefined) overrides.database = flags.database;
  if (flags.redis !== undefined) overrides.redis = flags.redis;
  return {
    ...(flags.config === undefined ? {} : { file: flags.config }),
    defaultFile: DEFAULT_CONFIG_FILE,
    overrides,
  };
}

/**
 * Loads the configuration for `serve`-like commands: file (and overlays), env, flags.
 * @throws ConfigError listing every problem.
 */
function readServeConfig(flags: ServeFlags): Config {
  const config = loadConfig(serveConfigOptions(flags));
  if (flags.simulator === true) config.simulator.enabled = true;
  return config;
}

/**
 * Loads the configuration for `serve`-like commands: file, env, flags.
 * @throws CliError listing every problem (one per line, naming the key), exit code 1.
 */
export function loadServeConfig(flags: ServeFlags): Config {
  try {
    return readServeConfig(flags);
  } catch (error) {
    if (error instanceof ConfigError) throw configFailure(error);
    throw error;
  }
}

/** The `serve` command. */
export function serveCommand(): Command {
  return new Command('serve')
    .description(
      'run the service: AMI → call events → message bus, webhooks, HTTP APIs (until SIGTERM/Ctrl-C; SIGHUP reloads)',
    )
    .option(
      '-c, --config <file>',
      `YAML configuration file (default: $SWITCHBOARD_CONFIG, else ${DEFAULT_CONFIG_FILE} if it exists)`,
    )
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
    .addOption(
      new Option(
        '--log-format <format>',
        'log lines: pretty (readable), json, or auto: pretty on a terminal (log.format)',
      ).choices(['auto', 'pretty', 'json']),
    )
    .action(async (flags: ServeFlags) => {
      // Listen for signals before anything starts: none ever finds serve without a listener.
      let requestStop: (signal: NodeJS.Signals) => void = () => {};
      const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
        requestStop = resolve;
      });
      let reload: () => void = () => {};
      let force = (): void => process.exit(EXIT.failure);
      const disposeSignals = handleSignals({
        stop: (signal) => requestStop(signal),
        force: () => force(),
        reload: () => reload(),
      });
      try {
        await run(flags, stopSignal, {
          onReload: (fn) => {
            reload = fn;
          },
          onForce: (fn) => {
            force = fn;
          },
        });
      } finally {
        disposeSignals();
      }
    });
}

async function run(
  flags: ServeFlags,
  stopSignal: Promise<NodeJS.Signals>,
  hooks: { onReload(fn: () => void): void; onForce(fn: () => void): void },
): Promise<void> {
  const config = loadServeConfig(flags);
  const printing = flags.printEvents !== undefined;
  const destination = printing ? process.stderr : process.stdout;
  const format = resolveLogFormat(
    flags.logFormat ?? (config.log.format as 'auto' | 'pretty' | 'json'),
    destination,
  );
  const logger = createLogger(config.log.level, printing ? process.stderr : undefined, format);
  const writer = new LineWriter(process.stdout, 1);
  let service: ReturnType<typeof createService>;
  try {
    service = createService({
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
  } catch (error) {
    throw new CliError((error as Error).message, EXIT.failure, { cause: error });
  }
  const log = logger.child({ component: 'serve' });
  const files = resolveConfigFiles(serveConfigOptions(flags));
  log.info(
    {
      version: VERSION,
      node: process.versions.node,
      config: files.main === undefined ? [] : [files.main, ...files.overlays],
    },
    files.main === undefined
      ? `switchboard ${VERSION}: no configuration file (defaults, environment and flags)`
      : `switchboard ${VERSION}: configuration from ${[files.main, ...files.overlays].join(', ')}`,
  );

  hooks.onForce(() => {
    log.warn('second Ctrl-C: exiting now, without finishing the shutdown');
    process.exit(EXIT.failure);
  });
  hooks.onReload(() => {
    let next: Config;
    try {
      next = readServeConfig(flags);
    } catch (error) {
      const problems =
        error instanceof ConfigError
          ? error.message.split('\n').join('; ')
          : (error as Error).message;
      log.error(
        { reloaded: false },
        `SIGHUP: configuration not reloaded, the running one is kept: ${problems}`,
      );
      return;
    }
    try {
      const { applied, restartRequired } = service.reload(next);
      log.info(
        { reloaded: true, applied, restartRequired },
        applied.length === 0
          ? 'SIGHUP: configuration reloaded; nothing that can change at runtime changed'
          : `SIGHUP: configuration reloaded; applied: ${applied.join(', ')}`,
      );
      if (restartRequired.length > 0) {
        log.warn(
          { restartRequired },
          `SIGHUP: changed but not applied until a restart: ${restartRequired.join(', ')}`,
        );
      }
    } catch (error) {
      log.error(
        { reloaded: false },
        `SIGHUP: configuration not reloaded, the running one is kept: ${(error as Error).message.split('\n').join('; ')}`,
      );
    }
  });

  try {
    await service.start();
  } catch (error) {
    throw new CliError(
      `cannot start: ${error instanceof Error ? error.message : String(error)}`,
      EXIT.failure,
      { cause: error },
    );
  }
  const received = await stopSignal;
  log.info({ signal: received }, `${received} received; shutting down`);
  await service.stop();
  await writer.flush();
}
