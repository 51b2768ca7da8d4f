/**
 * Kanji → kana for offline Japanese speech. espeak-ng's Japanese voice reads kana but says
 * "Chinese letter" for every kanji, so Japanese text is first run through kuromoji (a
 * morphological analyser with the IPADIC dictionary shipped in `kuromoji/dict`) and every
 * Japanese token is replaced by its katakana pronunciation (`障害` → `ショーガイ`, the
 * particle `は` → `ワ`). Latin words, digits and punctuation are kept as written.
 *
 * The tokenizer takes about a second to build and ~100 MB; it is built once per process, on
 * first use (or by {@link warmUpJapanese}), and shared.
 *
 * @module
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import kuromoji from 'kuromoji';
import { MediaError } from '../errors.ts';

type Tokenizer = kuromoji.Tokenizer<kuromoji.IpadicFeatures>;

let tokenizer: Promise<Tokenizer> | undefined;

/** Directory of kuromoji's IPADIC dictionary (`node_modules/kuromoji/dict`). */
export function kuromojiDictionaryPath(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('kuromoji/package.json')), 'dict');
}

/**
 * The shared kuromoji tokenizer (built on first call; a failed build is retried next call).
 *
 * @throws {MediaError} `TOOL_FAILED` when the dictionary cannot be loaded.
 */
export function getTokenizer(): Promise<Tokenizer> {
  tokenizer ??= new Promise<Tokenizer>((resolve, reject) => {
    kuromoji.builder({ dicPath: kuromojiDictionaryPath() }).build((error, built) => {
      if (error) {
        tokenizer = undefined;
        reject(new MediaError('TOOL_FAILED', 'cannot load the kuromoji dictionary', String(error)));
      } else resolve(built);
    });
  });
  return tokenizer;
}

/** Builds the tokenizer ahead of the first Japanese synthesis (call at start-up). */
export async function warmUpJapanese(): Promise<void> {
  await getTokenizer();
}

const JAPANESE = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\u3005\u30fc\uff10-\uff5a]/u;
/** Kanji (CJK ideographs) and the iteration mark 々. */
export const KANJI = /[\p{Script=Han}\u3005]/u;

/**
 * Rewrites Japanese text with katakana readings instead of kanji, for espeak-ng. Tokens
 * without a dictionary reading keep their surface form (so a very rare kanji may remain).
 */
export async function toKana(text: string): Promise<string> {
  const tokens = (await getTokenizer()).tokenize(text);
  let out = '';
  for (const token of tokens) {
    const surface = token.surface_form;
    const reading = [token.pronunciation, token.reading].find(
      (candidate) => candidate !== undefined && candidate !== '' && candidate !== '*',
    );
    out += JAPANESE.test(surface) && reading !== undefined ? reading : surface;
  }
  return out;
}
