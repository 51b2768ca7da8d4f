#!/usr/bin/env node
// The `switchboard` command: runs the compiled CLI (dist/, built by `npm ci` through `prepare`).
import { main } from '../dist/cli/index.js';

process.exitCode = await main(process.argv);
