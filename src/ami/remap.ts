/**
 * Identifier remapping for replaying one recording several times as distinct calls (PBX
 * simulator loops, benchmarks): the rule of the conformance corpus' `ami_replay_server.py
 * --repeat` (SCHEMA.md, "On the wire").
 */
import type { AmiEvent } from './message.ts';

function isIdentifierKey(key: string): boolean {
  return key.endsWith('Uniqueid') || key.endsWith('Linkedid');
}

/**
 * A copy of `event` in which every non-empty value whose key ends in `Uniqueid` or
 * `Linkedid` (`Uniqueid`, `DestUniqueid`, `BridgeUniqueid`, `OrigTransfererLinkedid`, ...)
 * has `suffix` appended, e.g. `-r1`. Other keys are copied unchanged; `event` is not
 * modified. An empty suffix returns `event` itself.
 */
export function remapIdentifiers(event: AmiEvent, suffix: string): AmiEvent {
  if (suffix === '') return event;
  const copy: AmiEvent = { ...event };
  for (const key in copy) {
    if (!isIdentifierKey(key)) continue;
    const value = copy[key];
    if (typeof value === 'string') {
      if (value !== '') copy[key] = value + suffix;
    } else if (value !== undefined) {
      copy[key] = value.map((item) => (item === '' ? item : item + suffix));
    }
  }
  return copy;
}
