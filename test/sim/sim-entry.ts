// Runs `switchboard sim` from src/cli/sim.ts alone (the command is wired into the CLI elsewhere).
import { simCommand } from '../../src/cli/sim.ts';

await simCommand().parseAsync(process.argv);
