import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ENGINE_EVENTS } from '../../src/calls/engine.ts';

test('ENGINE_EVENTS names exactly the events CallEngine.handle switches on', () => {
  const source = readFileSync(join(import.meta.dirname, '../../src/calls/engine.ts'), 'utf8');
  const start = source.indexOf('  handle(event: AmiEvent): void {');
  assert.ok(start !== -1);
  const body = source.slice(start, source.indexOf('\n  }\n', start));
  const cases = [...body.matchAll(/case '([^']+)':/g)].map((match) => match[1]);
  assert.deepEqual([...cases].sort(), [...ENGINE_EVENTS].sort());
});
