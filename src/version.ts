/**
 * The version of Switchboard: `version` of the package's package.json (read once, at import,
 * from the package root: `../package.json` from both `src/` and `dist/`).
 */
import { readFileSync } from 'node:fs';

function readVersion(): string {
  try {
    const manifest = JSON.parse(
      readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
    ) as { version?: unknown };
    return typeof manifest.version === 'string' ? manifest.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** The package version, e.g. `0.1.0` (`switchboard --version`, `switchboard_build_info`). */
export const VERSION: string = readVersion();
