/**
 * The `simulator` config section (schema and defaults, composed by `src/config/schema.ts`),
 * and from it to {@link SimulatorOptions}: what `serve`'s embedded demo mode and
 * `switchboard sim --config` use.
 *
 * @module
 */
import { fileURLToPath } from 'node:url';
import Type, { type Static } from 'typebox';
import { bool, CLOSED, formatted, int, item, oneOf, section, str } from '../config/section.ts';
import type { SimScript } from './script.ts';
import type { SimulatorOptions } from './simulator.ts';

/** What the simulated PBX does when a number is called. */
export const SimulatorScript = item(
  {
    outcome: oneOf(
      ['answer', 'busy', 'noanswer', 'congestion', 'fail'],
      'answer',
      'what happens to the call',
    ),
    answerAfterMs: int(2_000, 0, 600_000, 'ringing time before the outcome'),
    dtmf: str('', 'keys pressed after answering, e.g. "1"', { pattern: '^[0-9*#A-D]*$' }),
    dtmfAfterMs: int(1_000, 0, 600_000, 'delay between answer and the first key'),
    hangupAfterMs: int(5_000, 0, 3_600_000, 'call duration after answer'),
  },
  'scripted behaviour of one number',
);

/** `simulator`: the fake Asterisk (`switchboard sim`, and `npm start`). */
export const SimulatorSection = section(
  {
    enabled: bool(false, 'run the simulator inside serve and connect to it'),
    listen: formatted('switchboard-listen', '127.0.0.1:5038', 'HOST:PORT the fake AMI listens on'),
    username: str('switchboard', 'AMI login accepted'),
    secret: str('switchboard', 'AMI secret accepted'),
    recording: str('', 'recorded session replayed in a loop; empty = the shipped demo recording'),
    loop: bool(true, 'replay the recording forever'),
    loopGapMs: int(1_000, 0, 3_600_000, 'pause between two replays'),
    defaultScript: Type.Object(SimulatorScript.properties, {
      additionalProperties: false,
      default: {},
      description: 'behaviour of numbers not in scripts',
    }),
    scripts: Type.Record(
      Type.String({ pattern: '^[0-9+*#]+$' }),
      // default {}: Value.Default fills a map's values only when their schema has a default.
      Type.Object(SimulatorScript.properties, { additionalProperties: false, default: {} }),
      { default: {}, additionalProperties: CLOSED, description: 'behaviour per called number' },
    ),
  },
  'PBX simulator',
);

/** The `simulator` section. */
export type SimulatorConfig = Static<typeof SimulatorSection>;
/** One simulator script. */
export type SimulatorScriptConfig = Static<typeof SimulatorScript>;

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
