// Removes build output before a build: tsc never deletes a file whose source moved (src/engine.ts became
// src/engine/index.ts), and Node would load the stale dist/engine.js ahead of dist/engine/index.js.
import { rmSync } from 'node:fs';
import process from 'node:process';

for (const dir of process.argv.slice(2)) rmSync(dir, { recursive: true, force: true });
