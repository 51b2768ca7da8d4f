/**
 * A disk cache in front of any {@link SpeechEngine}: the same (engine, language, text) is
 * synthesized once, then copied. Alert calls repeat the same head/foot texts for every
 * person and every attempt, so most syntheses become a file copy.
 *
 * Key: SHA-256 of `[engine name, variant, normalized language, cleaned text]`; file
 * `<cacheDir>/<key>.wav` (8 kHz mono, without leading silence). Concurrent requests for the
 * same key share one synthesis. Entries are never evicted here: {@link pruneSpeechCache}
 * removes entries not used for a given time and caps the directory's size (`serve` runs it
 * periodically: `retention.*`, src/serve/retention.ts).
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, stat, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { type AudioInfo, convertForAsterisk, readWavInfo, writeAtomically } from '../audio.ts';
import { MediaError } from '../errors.ts';
import {
  cleanText,
  normalizeLanguage,
  type SpeechEngine,
  type SynthesizeOptions,
} from './engine.ts';

/** Options of {@link CachedEngine}. */
export interface CacheOptions {
  /** Directory of the cache (created when missing). */
  dir: string;
  /** Extra key part, e.g. a hash of the engine's settings (voice, speed). Default ''. */
  variant?: string;
}

/** Cache key of a request (hex SHA-256). */
export function speechCacheKey(
  engine: string,
  language: string,
  text: string,
  variant = '',
): string {
  const parts = [engine, variant, normalizeLanguage(language), cleanText(text)];
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/** A {@link SpeechEngine} with a disk cache; `name` is the inner engine's. */
export class CachedEngine implements SpeechEngine {
  readonly name: string;
  /** Requests answered from the cache / synthesized, since construction. */
  readonly stats = { hits: 0, misses: 0 };
  readonly #inner: SpeechEngine;
  readonly #dir: string;
  readonly #variant: string;
  readonly #inflight = new Map<string, Promise<string>>();

  constructor(inner: SpeechEngine, options: CacheOptions) {
    this.#inner = inner;
    this.name = inner.name;
    this.#dir = options.dir;
    this.#variant = options.variant ?? '';
  }

  /** Path of the cached file for a request (whether or not it exists yet). */
  pathFor(text: string, language: string): string {
    return path.join(this.#dir, `${speechCacheKey(this.name, language, text, this.#variant)}.wav`);
  }

  #cached(text: string, language: string, options: SynthesizeOptions): Promise<string> {
    const file = this.pathFor(text, language);
    const pending = this.#inflight.get(file);
    if (pending) {
      this.stats.hits++;
      return pending;
    }
    // registered synchronously, so concurrent requests for one key share this lookup
    const work = (async () => {
      const exists = await stat(file).then(
        (s) => s.isFile() && s.size > 44,
        () => false,
      );
      if (exists) {
        this.stats.hits++;
        const now = new Date();
        await utimes(file, now, now).catch(() => undefined); // last use, for prune()
        return file;
      }
      this.stats.misses++;
      await mkdir(this.#dir, { recursive: true });
      await this.#inner.synthesize(text, language, file, {
        ...(options.signal ? { signal: options.signal } : {}),
      });
      return file;
    })();
    this.#inflight.set(file, work);
    const cleanup = (): void => {
      this.#inflight.delete(file);
    };
    work.then(cleanup, cleanup);
    return work;
  }

  /** See {@link SpeechEngine.synthesize}; the output is a copy the caller owns. */
  async synthesize(
    text: string,
    language: string,
    outPath: string,
    options: SynthesizeOptions = {},
  ): Promise<AudioInfo> {
    const cached = await this.#cached(text, language, options);
    const silenceS = options.leadingSilenceS ?? 0;
    // The entry is checked like any input (format from its content; a copy must be a PCM WAV
    // by its header) before a file takes the caller's name: an entry that is not what this
    // cache wrote never reaches Asterisk, and is removed so the next request synthesizes.
    const output =
      silenceS > 0
        ? convertForAsterisk(cached, outPath, { leadingSilenceS: silenceS })
        : writeAtomically(outPath, async (temp) => {
            await copyFile(cached, temp);
            return { ...(await readWavInfo(temp)), path: outPath };
          });
    return output.catch(async (error: unknown) => {
      if (error instanceof MediaError && ['NOT_AUDIO', 'UNSUPPORTED_FORMAT'].includes(error.code)) {
        await unlink(cached).catch(() => undefined);
      }
      throw error;
    });
  }

  /** Removes cache entries not used for `maxAgeMs`; resolves with how many were removed. */
  async prune(maxAgeMs: number): Promise<number> {
    return (await pruneSpeechCache(this.#dir, { maxAgeMs })).removed;
  }
}

/** Options of {@link pruneSpeechCache}. */
export interface PruneCacheOptions {
  /** Entries not used (read or written) for longer than this go, in ms. None: no age limit. */
  maxAgeMs?: number;
  /** Largest total size of the entries, in bytes: the least recently used go first. None: no cap. */
  maxBytes?: number;
  /** Entries used more recently than this are never removed for the size cap, in ms. Default 600000. */
  keepRecentMs?: number;
  /** The clock, epoch ms (tests). */
  nowMs?: number;
}

/**
 * Prunes a speech cache directory (the files of {@link CachedEngine}: `<sha256>.wav`; other
 * files are left alone): entries not used for `maxAgeMs`, then, while the rest is larger
 * than `maxBytes`, the least recently used (an entry's mtime is its last use). Never throws
 * for a missing directory or a file removed meanwhile.
 * @returns how many entries were removed, their bytes, and the bytes kept.
 */
export async function pruneSpeechCache(
  dir: string,
  options: PruneCacheOptions,
): Promise<{ removed: number; removedBytes: number; keptBytes: number }> {
  const now = options.nowMs ?? Date.now();
  const names = await readdir(dir).catch(() => [] as string[]);
  const entries: { file: string; size: number; usedMs: number }[] = [];
  for (const name of names) {
    if (!/^[0-9a-f]{64}\.wav$/.test(name)) continue;
    const file = path.join(dir, name);
    const info = await stat(file).catch(() => undefined);
    if (info?.isFile()) entries.push({ file, size: info.size, usedMs: info.mtimeMs });
  }
  let removed = 0;
  let removedBytes = 0;
  const remove = async (entry: { file: string; size: number }) => {
    await unlink(entry.file).catch(() => undefined);
    removed++;
    removedBytes += entry.size;
  };
  const kept: typeof entries = [];
  for (const entry of entries) {
    if (options.maxAgeMs !== undefined && entry.usedMs < now - options.maxAgeMs) {
      await remove(entry);
    } else kept.push(entry);
  }
  let keptBytes = kept.reduce((sum, e) => sum + e.size, 0);
  if (options.maxBytes !== undefined && keptBytes > options.maxBytes) {
    const recent = now - (options.keepRecentMs ?? 600_000);
    kept.sort((a, b) => a.usedMs - b.usedMs);
    for (const entry of kept) {
      if (keptBytes <= options.maxBytes || entry.usedMs >= recent) break;
      await remove(entry);
      keptBytes -= entry.size;
    }
  }
  return { removed, removedBytes, keptBytes };
}
