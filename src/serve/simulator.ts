/**
 * The embedded PBX simulator of `serve` (`simulator.enabled`, and `npm start`): the fake
 * Asterisk of `src/sim/` started in-process, replaying a recording in a loop, and the AMI
 * client options the service uses to connect to it (server name `simulator`).
 *
 * INTEGRATION POINT: `src/sim/` (issue 3, section 4) is built separately; until it is
 * wired here, {@link startEmbeddedSimulator} throws a clear error.
 */
import type { Logger } from 'pino';
import type { AmiClientOptions } from '../ami/client.ts';
import type { SimulatorConfig } from '../config/schema.ts';

/** The shipped demo recording replayed when `simulator.recording` is empty. */
export const DEMO_RECORDING = 'examples/attended-transfer.json';

/** A running embedded simulator. */
export interface EmbeddedSimulator {
  /** The TCP port its AMI listens on. */
  port: number;
  /** Options for the service's AMI client (name `simulator`). */
  clientOptions: AmiClientOptions;
  /** Stops the simulator. */
  close(): Promise<void>;
}

/**
 * Starts the simulator of `src/sim/` as configured (`listen`, `username`, `secret`,
 * `recording` or {@link DEMO_RECORDING}, `loop`, `loopGapMs`, scripts).
 * @throws Error when the simulator cannot start (port taken, recording unreadable).
 */
export async function startEmbeddedSimulator(
  config: SimulatorConfig,
  _logger: Logger,
): Promise<EmbeddedSimulator> {
  void config;
  throw new Error(
    'the embedded PBX simulator (src/sim) is not wired in yet: set simulator.enabled to false and configure ami.servers',
  );
}
