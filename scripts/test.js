// Runs the whole test suite with node:test: the spec reporter for people, then a closing
// `N passed, N failed` line. Extra arguments are test files or globs (default: every test).
//
// Before any test runs it checks what the tests need (scripts/preflight.js): the external
// tools, then the services the selected files use. Anything missing is one line each and
// exit 1, instead of failing tests one by one or waiting for a tool that is not there.
import { spawnSync } from 'node:child_process';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  // Type stripping (the tests are .ts files run as they are) and fs.globSync.
  console.error(
    `test: Node ${process.versions.node} cannot run the tests (needs >= 22.18); run \`npm test\`, or put node_modules/.bin first in PATH`,
  );
  process.exit(1);
}

const { expandFiles, INSTALL_TOOLS, missingTools, serviceProblems, servicesUsedBy } = await import(
  './preflight.js'
);
const patterns = process.argv.slice(2);
const selected = patterns.length > 0 ? patterns : ['test/**/*.test.ts'];

const tools = missingTools();
if (tools.length > 0) {
  console.error(`test: missing ${tools.join(', ')}; install them: ${INSTALL_TOOLS}`);
  process.exit(1);
}
const problems = await serviceProblems(servicesUsedBy(expandFiles(selected)));
if (problems.length > 0) {
  for (const line of problems) console.error(line);
  console.error(
    'test: not run; start the services above (README, Requirements), or run only the files that do not need them',
  );
  process.exit(1);
}

const args = [
  '--test',
  // Tests that restart RabbitMQ (opt-in) must not overlap other files using the broker.
  ...(process.env.SWITCHBOARD_TEST_BROKER_RESTART === '1' ? ['--test-concurrency=1'] : []),
  '--test-timeout=120000',
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  '--test-reporter=./scripts/summary-reporter.js',
  '--test-reporter-destination=stdout',
  ...selected,
];
const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exitCode = result.status ?? 1;
