/** The conformance corpus shipped in test/fixtures/conformance (see its README.md). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AmiEvent } from '../../src/ami/message.ts';

export const CONFORMANCE_DIR = join(import.meta.dirname, '..', 'fixtures', 'conformance');

/** Names of the shared recordings, e.g. `simple/ab_a_cancel`. */
export function conformanceNames(): string[] {
  return readFileSync(join(CONFORMANCE_DIR, 'shared.txt'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

export function fixturePath(name: string): string {
  return join(CONFORMANCE_DIR, 'fixtures', `${name}.json`);
}

/** The recorded AMI events of one fixture. */
export function loadFixture(name: string): AmiEvent[] {
  return JSON.parse(readFileSync(fixturePath(name), 'utf8')) as AmiEvent[];
}

/** The expected call events of one fixture, parsed. */
export function loadGolden(name: string): unknown[] {
  return readFileSync(join(CONFORMANCE_DIR, 'golden', `${name}.jsonl`), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as unknown);
}

/** The AMI events of every shared recording, in order, without FullyBooted (a reset marker). */
export function conformanceEvents(): AmiEvent[] {
  return conformanceNames().flatMap((name) =>
    loadFixture(name).filter((event) => event.Event !== 'FullyBooted'),
  );
}
