import { it } from "vitest";

/**
 * A slow test (gigabytes, tens of thousands of entries, repeated crash runs): `npm test` and .ci/run run it;
 * `npm run test:fast` (SCANBRIDGE_FAST=1) skips it for a quick loop while working.
 */
export const slowIt = it.skipIf(process.env.SCANBRIDGE_FAST === "1");
