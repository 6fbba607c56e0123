#!/usr/bin/env node
// npm run docs:options: write the README's option table (between its markers) from the commands' option tables.
// test/config/options-doc.test.ts fails when README.md and the tables drift apart.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { commandSpecs } = await import(join(root, "dist/src/commands/registry.js"));
const { renderOptionTable, withOptionTable } = await import(join(root, "dist/src/commands/options-doc.js"));
const path = join(root, "README.md");
const before = readFileSync(path, "utf8");
const after = withOptionTable(before, renderOptionTable(commandSpecs));
if (after !== before) writeFileSync(path, after);
console.log(after === before ? "README.md option table already up to date" : "README.md option table updated");
