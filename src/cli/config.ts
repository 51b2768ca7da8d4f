/**
 * `switchboard config check [--config FILE] [--print]`: validates the configuration (file,
 * then `SWITCHBOARD_*` variables) exactly as `serve` would, without starting anything.
 * Prints every problem on stderr, one line each naming the key
 * (`config: amqp.url: expected a URL (amqp:// or amqps://)`), and exits 1; or prints `ok`
 * (and with `--print` the effective configuration as YAML, secrets replaced by `***`) and
 * exits 0.
 */
import { Command } from 'commander';
import { stringify } from 'yaml';
import { ConfigError, type ConfigProblem, loadConfig, redactConfig } from '../config/load.ts';
import { checkServiceConfig } from '../serve/service.ts';
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
        config = loadConfig(flags.config === undefined ? {} : { file: flags.config });
        problems = checkServiceConfig(config);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        problems = error.problems;
      }
      if (problems.length > 0 || config === undefined) {
        for (const p of problems) {
          process.stderr.write(
            `config: ${p.key}${p.source ? ` (from ${p.source})` : ''}: ${p.reason}\n`,
          );
        }
        throw new CliError(
          `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'})`,
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
