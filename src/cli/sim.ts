/**
 * `switchboard sim`: the PBX simulator (src/sim) as a command, a fake Asterisk speaking AMI
 * over TCP until Ctrl-C. See docs/simulator.md.
 *
 * ```
 * switchboard sim [--listen HOST:PORT] [--user NAME --secret S]
 *                 [--replay FILE [--loop] [--loop-gap-ms MS] [--rate EV_PER_S | --speed X]]
 *                 [--script FILE] [--config FILE] [--log-actions]
 * ```
 *
 * Prints `switchboard sim: listening on tcp://USER:***@HOST:PORT` on stderr once it accepts
 * connections (the port is the real one when `--listen` asks for port 0).
 */
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig } from '../config/load.ts';
import { listenFailure } from '../http/server.ts';
import { parseListen, simulatorOptionsFromConfig } from '../sim/config.ts';
import { loadScriptFile } from '../sim/script.ts';
import { type SimulatorOptions, startSimulator } from '../sim/simulator.ts';
import { CliError, EXIT } from './errors.ts';
import { untilSignal } from './signals.ts';

/** Options of `switchboard sim` as commander parses them. */
interface SimCliOptions {
  listen?: string;
  user?: string;
  secret?: string;
  replay?: string;
  loop?: boolean;
  loopGapMs?: number;
  rate?: number;
  speed?: number;
  script?: string;
  config?: string;
  logActions?: boolean;
}

function nonNegative(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number >= 0');
  return n;
}

function listenArg(value: string): string {
  try {
    parseListen(value);
  } catch (error) {
    throw new InvalidArgumentError(error instanceof Error ? error.message : String(error));
  }
  return value;
}

/** Builds the simulator options from the flags (which win) and the optional config file. */
export function simOptionsFromCli(options: SimCliOptions): SimulatorOptions {
  let base: SimulatorOptions = {};
  if (options.config !== undefined) {
    base = simulatorOptionsFromConfig(loadConfig({ file: options.config }).simulator);
    // A config's recording replays only when asked for (--replay or --loop).
    if (options.replay === undefined && options.loop !== true) delete base.replay;
  }
  const sim: SimulatorOptions = { ...base };
  if (options.listen !== undefined) Object.assign(sim, parseListen(options.listen));
  else if (sim.port === undefined) Object.assign(sim, { host: '127.0.0.1', port: 5038 });
  if (options.user !== undefined) sim.username = options.user;
  if (options.secret !== undefined) sim.secret = options.secret;
  if (options.replay !== undefined || base.replay !== undefined) {
    const replay = { ...base.replay, recording: options.replay ?? base.replay?.recording ?? '' };
    if (options.loop !== undefined) replay.loop = options.loop;
    if (options.loopGapMs !== undefined) replay.loopGapMs = options.loopGapMs;
    if (options.rate !== undefined || options.speed !== undefined) {
      replay.pace = {
        ...(options.rate === undefined ? {} : { eventsPerSecond: options.rate }),
        ...(options.speed === undefined ? {} : { speed: options.speed }),
      };
    }
    sim.replay = replay;
  }
  if (options.script !== undefined) {
    const file = loadScriptFile(options.script);
    sim.scripts = { ...sim.scripts, ...file.scripts };
    sim.dialplan = { ...sim.dialplan, ...file.dialplan };
  }
  return sim;
}

/** The `sim` command (commander), to be added to the `switchboard` program. */
export function simCommand(): Command {
  return new Command('sim')
    .description(
      'run a fake Asterisk speaking AMI: replays recordings, answers Originate by script',
    )
    .option('--listen <host:port>', 'address to listen on (default 127.0.0.1:5038)', listenArg)
    .option('--user <name>', 'AMI user accepted (default switchboard)')
    .option('--secret <secret>', 'its secret (default switchboard)')
    .option(
      '--replay <file>',
      'recording to stream to logged-in clients (JSON array or JSON Lines)',
    )
    .option('--loop', 'replay forever, identifiers made unique per loop (-r1, -r2, ...)')
    .option('--no-loop', 'replay once (overrides the config)')
    .option('--loop-gap-ms <ms>', 'pause between two replays (default 1000)', nonNegative)
    .option(
      '--rate <events/s>',
      'replay pace; 0 = as fast as possible (default: the recording timestamps, else one pass per ~5 s)',
      nonNegative,
    )
    .option('--speed <factor>', 'speed factor applied to the recording timestamps', nonNegative)
    .option('--script <file>', 'YAML/JSON scripts per called number (and dialplan per context)')
    .option('--config <file>', 'read the simulator section of a Switchboard config file')
    .option('--log-actions', 'print every action received on stderr (secrets hidden)')
    .action(async (options: SimCliOptions) => {
      const simOptions = simOptionsFromCli(options);
      if (options.logActions) {
        simOptions.onAction = (action) => {
          process.stderr.write(`switchboard sim: action ${JSON.stringify(action.fields)}\n`);
        };
      }
      const sim = await startSimulator(simOptions).catch((error: unknown) => {
        const address = `${simOptions.host ?? '127.0.0.1'}:${simOptions.port ?? 5038}`;
        const failure = listenFailure(
          error,
          'PBX simulator',
          address,
          '--listen (or simulator.listen in --config)',
        );
        throw failure === error ? failure : new CliError(failure.message, EXIT.failure);
      });
      const host = sim.host.includes(':') ? `[${sim.host}]` : sim.host;
      process.stderr.write(
        `switchboard sim: listening on tcp://${simOptions.username ?? 'switchboard'}:***@${host}:${sim.port}${
          simOptions.replay
            ? ` (replaying ${simOptions.replay.recording}${simOptions.replay.loop ? ' in a loop' : ''})`
            : ''
        } (Ctrl-C stops)\n`,
      );
      try {
        await untilSignal();
      } finally {
        await sim.close();
        process.stderr.write('switchboard sim: stopped\n');
      }
    });
}
