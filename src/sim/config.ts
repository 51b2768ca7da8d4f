/**
 * From the `simulator` config section (src/config/schema.ts) to {@link SimulatorOptions}:
 * what `serve`'s embedded demo mode and `switchboard sim --config` use.
 *
 * @module
 */
import { fileURLToPath } from 'node:url';
import type { SimulatorConfig } from '../config/schema.ts';
import type { SimScript } from './script.ts';
import type { SimulatorOptions } from './simulator.ts';

/** The shipped demo recording replayed when `simulator.recording` is empty. */
export const DEMO_RECORDING = fileURLToPath(
  new URL('../../examples/attended-transfer.json', import.meta.url),
);

/**
 * Splits `HOST:PORT` (IPv4, host name or bracketed IPv6) into host and port.
 *
 * @throws {Error} not `HOST:PORT` or port outside 0–65535.
 */
export function parseListen(value: string): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (!match || port > 65535) throw new Error(`expected HOST:PORT, got ${JSON.stringify(value)}`);
  const host = (match[1] as string).replace(/^\[(.*)\]$/, '$1');
  return { host, port };
}

/**
 * Simulator options from the validated `simulator` section: `listen`, `username`, `secret`,
 * `recording` (empty = {@link DEMO_RECORDING}), `loop`, `loopGapMs`, `scripts`,
 * `defaultScript`. The replay starts when the first client logs in, at the demo pace.
 */
export function simulatorOptionsFromConfig(section: SimulatorConfig): SimulatorOptions {
  const { host, port } = parseListen(section.listen);
  return {
    host,
    port,
    username: section.username,
    secret: section.secret,
    replay: {
      recording: section.recording === '' ? DEMO_RECORDING : section.recording,
      loop: section.loop,
      loopGapMs: section.loopGapMs,
    },
    scripts: section.scripts as Record<string, Partial<SimScript>>,
    defaultScript: section.defaultScript as Partial<SimScript>,
  };
}
