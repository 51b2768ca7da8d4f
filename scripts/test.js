// Runs the whole test suite with node:test: the spec reporter for people, then a closing
// `N passed, N failed` line. Extra arguments are test files or globs (default: every test).
import { spawnSync } from 'node:child_process';

const files = process.argv.slice(2);
const args = [
  '--test',
  // Tests that restart RabbitMQ (opt-in) must not overlap other files using the broker.
  ...(process.env.SWITCHBOARD_TEST_BROKER_RESTART === '1' ? ['--test-concurrency=1'] : []),
  '--test-timeout=120000',
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  '--test-reporter=./scripts/summary-reporter.js',
  '--test-reporter-destination=stdout',
  ...(files.length > 0 ? files : ['test/**/*.test.ts']),
];
const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exitCode = result.status ?? 1;
