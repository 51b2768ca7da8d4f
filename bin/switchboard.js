#!/usr/bin/env node
// The `switchboard` command: runs the compiled CLI (dist/, built by `npm ci` through `prepare`).
//
// Plain JavaScript that parses on old Node (nothing newer than Node 18 before the version
// check), because this file is what `/usr/bin/node`, a global install's shebang or a systemd
// `ExecStart=/usr/bin/node .../bin/switchboard.js` runs. The CLI needs Node >= 22.12
// (commander 15; better-sqlite3's binary crashes older Node without a message), so on an
// older Node this file loads nothing of the CLI: it re-executes itself under the Node 24 the
// package brings (the `node` package in node_modules), or prints one line and exits 1.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The oldest Node the CLI runs on (keep in step with package.json `engines.node`). */
const MIN = [22, 12];
/** Set in the re-executed child: a child that is still too old refuses instead of looping. */
const MARK = 'SWITCHBOARD_REEXEC_NODE';

/** True when version `v` ("20.20.2") is at least MIN. */
function newEnough(v) {
  const [major, minor] = v.split('.').map(Number);
  return major > MIN[0] || (major === MIN[0] && minor >= MIN[1]);
}

/**
 * The executable of the package's own Node (the `node` npm package, resolved from this file
 * the way `import` would: the package's node_modules, then each parent's), or undefined
 * when it is absent, not installed (its install script did not run) or too old.
 */
function projectNode() {
  const require = createRequire(import.meta.url);
  let manifest;
  try {
    manifest = require.resolve('node/package.json');
  } catch {
    return undefined;
  }
  try {
    const { version } = JSON.parse(readFileSync(manifest, 'utf8'));
    const exe = join(dirname(manifest), 'bin', process.platform === 'win32' ? 'node.exe' : 'node');
    return typeof version === 'string' && newEnough(version) && existsSync(exe) ? exe : undefined;
  } catch {
    return undefined;
  }
}

function refuse(detail) {
  process.stderr.write(
    `switchboard: Node ${process.versions.node} is too old; needs >= ${MIN.join('.')} (${detail})\n`,
  );
  process.exit(1);
}

/**
 * Runs this file again under `exe` with the same arguments and inherited stdio, forwards
 * signals, and exits as the child did. The child gets its own process group, so a signal
 * sent to ours (Ctrl-C in a terminal) reaches it exactly once: through the forwarding.
 */
function reexec(exe) {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(exe, [...process.execArgv, script, ...process.argv.slice(2)], {
    stdio: 'inherit',
    detached: process.platform !== 'win32',
    env: { ...process.env, [MARK]: exe },
  });
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  const forward = (signal) => {
    try {
      child.kill(signal);
    } catch {
      // The child is already gone; its 'exit' ends this process.
    }
  };
  for (const signal of signals) process.on(signal, forward);
  child.on('error', (error) => {
    refuse(`cannot run ${exe}: ${error.message}`);
  });
  child.on('exit', (code, signal) => {
    for (const s of signals) process.off(s, forward);
    if (signal) {
      // Die of the same signal, so whoever started us sees what the child saw (and exit
      // 128 + its number where Node keeps a handler of its own, as for SIGUSR1).
      process.exitCode = 128 + (constants.signals[signal] ?? 0);
      process.kill(process.pid, signal);
      return;
    }
    process.exit(code ?? 1);
  });
}

if (newEnough(process.versions.node)) {
  delete process.env[MARK];
  const { main } = await import('../dist/cli/index.js');
  process.exitCode = await main(process.argv);
} else if (process.env[MARK] !== undefined) {
  refuse(`${process.env[MARK]} did not start a newer Node`);
} else {
  const exe = projectNode();
  if (exe === undefined) {
    refuse(
      "the package's own Node 24, npm package `node`, is not installed: run `npm ci`, or reinstall without --omit=optional",
    );
  } else {
    reexec(exe);
  }
}
