/** Entry point of the `switchboard` command (see `bin/switchboard.js`). */
export async function main(argv: string[]): Promise<number> {
  process.stderr.write(`switchboard: not implemented yet (${argv.length})\n`);
  return 1;
}
