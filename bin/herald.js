#!/usr/bin/env node
// The published binary: runs the compiled CLI (npm run build first when working from source).
import '../dist/cli/main.js';
