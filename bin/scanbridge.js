#!/usr/bin/env node
// Shim: run the built CLI (npm run build): the one-file bundle with its code cache (bin/bundle.js), or dist/src/.
import { loadBundle } from "./bundle.js";

const cli = loadBundle() ?? (await import("../dist/src/start.js"));
cli.start(process.argv);
