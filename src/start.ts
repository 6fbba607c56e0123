// The executable's entry: bin/scanbridge.js calls start(), from the one-file bundle dist/scanbridge.cjs (made by
// `npm run build`, loaded with V8's code cache) or, without it, from dist/src/. Tests that call main() in their own
// process do not load this module.
import "./process-setup.js"; // first: process-wide settings (memory)
import { main } from "./cli.js";

export { main } from "./cli.js";
export { commandSpecs } from "./commands/registry.js";
export { V8_START_FLAGS } from "./util/heap.js";

/** Run the CLI with this process's arguments; sets process.exitCode. */
export function start(argv: string[] = process.argv): void {
  // `scanbridge ... | head` closes stdout early: that is not an error.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
      throw err;
    });
  }
  void main(argv).then((code) => {
    process.exitCode = code;
  });
}
