#!/usr/bin/env node
// Shim: run the built CLI (npm run build). Nothing else lives here.
import "../dist/src/process-setup.js"; // first: process-wide settings (memory)
import { main } from "../dist/src/cli.js";

// `scanbridge ... | head` closes stdout early: that is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
}
main(process.argv).then((code) => {
  process.exitCode = code;
});
