#!/usr/bin/env node
// The published binary: runs the compiled CLI (npm run build first when working from source).
// It calls runCli() itself, so it works through any path: node_modules/.bin, npx, a symlink.
import { runCli } from '../dist/cli/main.js';

await runCli();
