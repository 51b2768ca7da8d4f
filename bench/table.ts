/** One measured figure and the table `npm run bench` prints. */
export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  /** The target, if any; `higherIsBetter` decides how it is compared. */
  target?: number;
  higherIsBetter?: boolean;
  note?: string;
}

/**
 * The `p`-th percentile (0–100) of ascending `sorted` values (nearest rank, rounded down);
 * NaN when there are none.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

function formatNumber(value: number): string {
  if (value >= 100) return Math.round(value).toLocaleString('en');
  return value.toFixed(2);
}

/** A Markdown table of `results` (also readable on a terminal). */
export function formatTable(results: readonly BenchResult[]): string {
  const rows = results.map((result) => {
    const higher = result.higherIsBetter ?? true;
    let target = '';
    if (result.target !== undefined) {
      const met = higher ? result.value >= result.target : result.value <= result.target;
      target = `${higher ? '>=' : '<='} ${formatNumber(result.target)} ${met ? '(met)' : '(NOT met)'}`;
    }
    return [result.name, `${formatNumber(result.value)} ${result.unit}`, target, result.note ?? ''];
  });
  const header = ['benchmark', 'result', 'target', 'notes'];
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => row[i]?.length ?? 0)),
  );
  const line = (cells: string[]): string =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join(
    '\n',
  );
}
