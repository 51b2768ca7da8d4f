/**
 * `switchboard jenkins-watch [--config FILE] [--once] [--announce-url URL]`: the Jenkins
 * watcher on its own (Gong's `xgong-jenkins`): polls `jenkins.url`, keeps the job states in
 * the configured database (`database.url`, table `jenkins_job`) and announces newly failed
 * jobs by posting to Gong's API of a running `switchboard serve` (`POST /messages/tts/add`).
 * `--once` polls once and exits (cron style: exit 1 when Jenkins could not be read);
 * otherwise it polls every `jenkins.intervalS` until Ctrl-C.
 */
import { Command } from 'commander';
import { createLogger, parseListen, resolveLogFormat } from '../http/server.ts';
import { httpAnnouncer } from '../jenkins/index.ts';
import { JenkinsWatcher, jenkinsMigrations } from '../jenkins/watcher.ts';
import { migrate, openDatabase } from '../store/db.ts';
import { CliError } from './errors.ts';
import { loadServeConfig } from './serve.ts';
import { untilSignal } from './signals.ts';

/** The default Gong API address: this config's `http.listen`, reached over loopback. */
export function defaultAnnounceUrl(listen: string): string {
  const { host, port } = parseListen(listen);
  const local = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${local.includes(':') ? `[${local}]` : local}:${port}`;
}

export function jenkinsWatchCommand(): Command {
  return new Command('jenkins-watch')
    .description('watch Jenkins and announce newly failed jobs on the ringer (Gong API)')
    .option('--config <file>', 'configuration file (the jenkins and database sections)')
    .option('--database <url>', 'database for the job states (overrides database.url)')
    .option('--announce-url <url>', "Gong API base URL (default: this config's http.listen)")
    .option('--once', 'poll once and exit')
    .action(
      async (flags: {
        config?: string;
        database?: string;
        announceUrl?: string;
        once?: boolean;
      }) => {
        const config = loadServeConfig({
          ...(flags.config === undefined ? {} : { config: flags.config }),
          ...(flags.database === undefined ? {} : { database: flags.database }),
        });
        if (config.jenkins.url === '') throw new CliError('jenkins.url is not configured');
        const logger = createLogger(
          config.log.level,
          process.stderr as never,
          resolveLogFormat(config.log.format as 'auto', process.stderr),
        );
        const db = await openDatabase(config.database.url, { poolSize: 2 });
        try {
          await migrate(db, [jenkinsMigrations]);
          const watcher = new JenkinsWatcher({
            config: config.jenkins,
            database: db,
            logger,
            announce: httpAnnouncer(flags.announceUrl ?? defaultAnnounceUrl(config.http.listen), {
              extension: config.jenkins.extension,
              language: config.jenkins.language,
            }),
          });
          if (flags.once) {
            const result = await watcher.poll();
            process.stdout.write(`${JSON.stringify(result)}\n`);
            if (result.status === 'jenkins_error') throw new CliError(`Jenkins: ${result.error}`);
            return;
          }
          watcher.start();
          await untilSignal();
          await watcher.stop();
        } finally {
          await db.close();
        }
      },
    );
}
