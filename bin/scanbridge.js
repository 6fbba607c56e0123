#!/usr/bin/env node
// Shim: run the built CLI. Build with `npm run build`.
import { main } from "../dist/src/cli.js";
main(process.argv).then((code) => { process.exitCode = code; });
