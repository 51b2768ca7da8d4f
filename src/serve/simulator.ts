/**
 * The embedded PBX simulator of `serve` (`simulator.enabled`, `serve --simulator`, and
 * `npm start`): the fake Asterisk of `src/sim/` started in-process on `simulator.listen`,
 * replaying `simulator.recording` (default: the shipped demo recording
 * `examples/attended-transfer.json`) in a loop, and the AMI client options the service
 * connects to it with (server name `simulator`).
 */
import type { Logger } from 'pino';
import type { AmiClientOptions } from '../ami/client.ts';
import type { SimulatorConfig } from '../config/schema.ts';
import { simulatorOptionsFromConfig } from '../sim/config.ts';
import { startSimulator } from '../sim/simulator.ts';

/** Name of the embedded simulator's AMI server in logs, metrics and readiness. */
export const SIMULATOR_SERVER_NAME = 'simulator';

/** A running embedded simulator. */
export interface EmbeddedSimulator {
  /** The TCP port its AMI listens on. */
  port: number;
  /** Options for the service's AMI client (name {@link SIMULATOR_SERVER_NAME}). */
  clientOptions: AmiClientOptions;
  /** Stops the simulator. */
  close(): Promise<void>;
}

/**
 * Starts the simulator of `src/sim/` as configured (`listen`, `username`, `secret`,
 * `recording`, `loop`, `loopGapMs`, `scripts`, `defaultScript`).
 * @throws Error when the simulator cannot start (port taken, recording unreadable).
 */
export async function startEmbeddedSimulator(
  config: SimulatorConfig,
  logger: Logger,
): Promise<EmbeddedSimulator> {
  const options = simulatorOptionsFromConfig(config);
  const log = logger.child({ component: 'simulator' });
  const simulator = await startSimulator({
    ...options,
    onAction: (action) => log.debug({ action: action.name }, 'simulator action'),
  });
  const host =
    options.host === undefined || options.host === '0.0.0.0' ? '127.0.0.1' : options.host;
  return {
    port: simulator.port,
    clientOptions: {
      host: host === '::' ? '::1' : host,
      port: simulator.port,
      username: config.username,
      secret: config.secret,
      name: SIMULATOR_SERVER_NAME,
      pingIntervalMs: 0,
    },
    close: () => simulator.close(),
  };
}
