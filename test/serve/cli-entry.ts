// Runs the `switchboard` command from the TypeScript sources (no build needed), for the
// tests of test/serve/ that spawn serve, listen and config check as real processes.
import { main } from '../../src/cli/index.ts';

process.exitCode = await main(process.argv);
