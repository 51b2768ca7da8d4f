import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CallEngine } from '../../src/calls/engine.ts';
import type { CallEvent } from '../../src/calls/events.ts';
import { conformanceNames, loadFixture, loadGolden } from '../support/conformance.ts';

function replay(events: readonly Record<string, unknown>[]): {
  out: CallEvent[];
  engine: CallEngine;
} {
  const out: CallEvent[] = [];
  const engine = new CallEngine({ onCallEvent: (event) => out.push(event) });
  for (const event of events) engine.handle(event as never);
  return { out, engine };
}

describe('conformance: every shared recording replays to its golden call events', () => {
  const names = conformanceNames();
  test('the corpus has the 30 shared recordings', () => {
    assert.equal(names.length, 30);
  });
  for (const name of names) {
    test(name, () => {
      const { out } = replay(loadFixture(name));
      // Compare as parsed JSON, exactly as check.py does.
      assert.deepStrictEqual(JSON.parse(JSON.stringify(out)), loadGolden(name));
    });
  }
});
