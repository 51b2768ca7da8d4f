/**
 * `switchboard doctor [--config FILE]`: checks the configuration, the external tools and
 * every configured server (src/doctor/), printing one line per check on stdout:
 * `ok    sox: SoX 14.4.2, MP3 and WAV handlers` or `FAIL  ami pbx1: ... Authentication failed`;
 * exit 1 when any check failed.
 */
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, defaultConfig, loadConfig, resolveConfigFiles } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { DOCTOR_TIMEOUT_MS, type DoctorResult, runDoctor } from '../doctor/index.ts';
import { CliError, EXIT } from './errors.ts';
import { serveConfigOptions } from './serve.ts';

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a number > 0');
  return n;
}

/** One line of output. */
export function formatResult(result: DoctorResult): string {
  return `${result.ok ? 'ok  ' : 'FAIL'}  ${result.name}: ${result.detail}`;
}

/** The `doctor` command. */
export function doctorCommand(): Command {
  return new Command('doctor')
    .description(
      'check the configuration, sox, espeak-ng and every configured server; one line per check, exit 1 on any failure',
    )
    .option('-c, --config <file>', 'YAML configuration file (default: as serve)')
    .option(
      '--timeout-ms <ms>',
      `bound of each network check (default ${DOCTOR_TIMEOUT_MS})`,
      positive,
    )
    .action(async (flags: { config?: string; timeoutMs?: number }) => {
      const options = serveConfigOptions(flags);
      const files = resolveConfigFiles(options);
      let config: Config;
      const results: DoctorResult[] = [];
      try {
        config = loadConfig(options);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        for (const problem of error.problems) {
          results.push({
            name: 'config',
            ok: false,
            detail: `${problem.key}${problem.source ? ` (from ${problem.source})` : ''}: ${problem.reason}`,
          });
        }
        // The tools are checked all the same (with the defaults); the servers cannot be.
        config = defaultConfig();
      }
      const all = await runDoctor(
        config,
        files.main === undefined ? [] : [files.main, ...files.overlays],
        flags.timeoutMs === undefined ? {} : { timeoutMs: flags.timeoutMs },
      );
      // A configuration that did not load: its problems replace the defaults' `config` line.
      const configFailed = results.length > 0;
      results.push(...all.filter((result) => !(configFailed && result.name === 'config')));
      for (const result of results) process.stdout.write(`${formatResult(result)}\n`);
      const failed = results.filter((r) => !r.ok).length;
      if (failed > 0) {
        throw new CliError(
          `${failed} of ${results.length} check${results.length === 1 ? '' : 's'} failed`,
          EXIT.failure,
        );
      }
    });
}
