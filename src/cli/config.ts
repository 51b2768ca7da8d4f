/**
 * `switchboard config check [--config FILE] [--print]`: validates the configuration (file,
 * then `SWITCHBOARD_*` variables) exactly as `serve` would, without starting anything.
 * The file: `--config`, else `SWITCHBOARD_CONFIG`, else `/etc/switchboard/switchboard.yaml`
 * when it exists, with its `conf.d/` overlays. Prints every problem on stderr, one line each
 * naming the key (`switchboard: config: amqp.url: expected a URL (amqp:// or amqps://)`),
 * and exits 1; or prints `ok`
 * (and with `--print` the effective configuration as YAML, secrets replaced by `***`) and
 * exits 0.
 */
import { Command } from 'commander';
import { stringify } from 'yaml';
import {
  ConfigError,
  type ConfigProblem,
  DEFAULT_CONFIG_FILE,
  loadConfig,
} from '../config/load.ts';
import { checkServiceConfig } from '../serve/service.ts';
import { redactConfig } from '../util/redact.ts';
import { CliError, EXIT } from './errors.ts';

/** The `config` command and its `check` subcommand. */
export function configCommand(): Command {
  const check = new Command('check')
    .description('validate the configuration without starting; exit 1 naming every bad key')
    .option('-c, --config <file>', 'YAML configuration file (default: $SWITCHBOARD_CONFIG)')
    .option('--print', 'print the effective configuration (secrets redacted) when valid')
    .exitOverride()
    .showHelpAfterError()
    .action((flags: { config?: string; print?: boolean }) => {
      let problems: ConfigProblem[];
      let config: ReturnType<typeof loadConfig> | undefined;
      try {
        config = loadConfig({
          ...(flags.config === undefined ? {} : { file: flags.config }),
          defaultFile: DEFAULT_CONFIG_FILE,
        });
        problems = checkServiceConfig(config);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        problems = error.problems;
      }
      if (problems.length > 0 || config === undefined) {
        // One line per problem, naming the key: `switchboard: config: http.listen: ...`.
        throw new CliError(
          problems
            .map((p) => `config: ${p.key}${p.source ? ` (from ${p.source})` : ''}: ${p.reason}`)
            .join('\n'),
          EXIT.failure,
        );
      }
      if (flags.print === true) process.stdout.write(stringify(redactConfig(config)));
      else process.stdout.write('ok\n');
    });
  return new Command('config')
    .description('configuration tools')
    .exitOverride()
    .showHelpAfterError()
    .addCommand(check);
}
