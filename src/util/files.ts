/**
 * Files of a directory whose names match a pattern, with their mtime: what retention rules
 * judge (src/serve/retention.ts, the features' `retention.ts`).
 *
 * @module
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

/** One file found by {@link matchingFiles}. */
export interface MatchingFile {
  name: string;
  /** `dir` joined with `name`. */
  file: string;
  /** Last modification, epoch ms. */
  mtimeMs: number;
  match: RegExpExecArray;
}

/** Files in `dir` matching `pattern`, with their mtime (epoch ms); none when `dir` is missing. */
export async function matchingFiles(dir: string, pattern: RegExp): Promise<MatchingFile[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: MatchingFile[] = [];
  for (const name of names) {
    const match = pattern.exec(name);
    if (!match) continue;
    const file = path.join(dir, name);
    const info = await stat(file).catch(() => undefined);
    if (info?.isFile()) out.push({ name, file, mtimeMs: info.mtimeMs, match });
  }
  return out;
}
