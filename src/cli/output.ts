/** Choosing the output format of `replay` and `watch`. */
import { Option } from 'commander';
import type { OutputFormat } from '../sinks/console.ts';

/** `--format` of `replay` and `watch`: `pretty` on a terminal, `jsonl` otherwise. */
export function formatOption(): Option {
  return new Option(
    '-f, --format <format>',
    'output format (default: pretty on a terminal, jsonl otherwise)',
  ).choices(['jsonl', 'pretty']);
}

/** The format asked for, or the default: `pretty` when stdout is a terminal, else `jsonl`. */
export function resolveFormat(format: string | undefined): OutputFormat {
  if (format === 'jsonl' || format === 'pretty') return format;
  return process.stdout.isTTY ? 'pretty' : 'jsonl';
}
