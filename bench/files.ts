/** Big benchmark inputs, written once under .bench/ (git-ignored) and reused. */

import { once } from 'node:events';
import { createWriteStream, existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { AmiEvent } from '../src/ami/message.ts';
import { streamEvents } from './corpus.ts';

export const BENCH_DIR = join(import.meta.dirname, '..', '.bench');

/** Writes `lines` to `path` atomically unless it exists already; returns its size in bytes. */
async function writeOnce(path: string, lines: Iterable<string>): Promise<number> {
  if (existsSync(path)) return statSync(path).size;
  mkdirSync(BENCH_DIR, { recursive: true });
  const temp = `${path}.tmp`;
  const out = createWriteStream(temp);
  let chunk: string[] = [];
  let size = 0;
  for (const line of lines) {
    chunk.push(line);
    size += line.length;
    if (size > 1 << 20) {
      if (!out.write(chunk.join(''))) await once(out, 'drain');
      chunk = [];
      size = 0;
    }
  }
  out.end(chunk.join(''));
  await once(out, 'finish');
  renameSync(temp, path);
  return statSync(path).size;
}

/** A recording in the fixtures' JSON array format (one event per line), `repeat` passes. */
export async function jsonArrayRecording(
  repeat: number,
): Promise<{ path: string; events: number; bytes: number }> {
  const path = join(BENCH_DIR, `recording-${repeat}.json`);
  let events = 0;
  function* lines(): Generator<string> {
    yield '[\n';
    let first = true;
    for (const event of streamEvents(repeat)) {
      yield `${first ? '' : ',\n'}  ${pythonStyle(event)}`;
      first = false;
    }
    yield '\n]\n';
  }
  const bytes = await writeOnce(path, lines());
  for (const _ of streamEvents(repeat)) events++;
  return { path, events, bytes };
}

/** `json.dumps` layout (`", "` and `": "` separators), as in the conformance fixtures. */
function pythonStyle(event: AmiEvent): string {
  return JSON.stringify(event).replaceAll('","', '", "').replaceAll('":"', '": "');
}
