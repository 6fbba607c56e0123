import type { AnyCommandSpec } from "./types.js";
import { auditSpec } from "./audit.command.js";
import { configSpec } from "./config.command.js";
import { initSpec } from "./init.command.js";
import { mediaSpec } from "./media.command.js";
import { notifySpec } from "./notify.command.js";
import { inspectSpec, packSpec } from "./pack.command.js";
import { reconcileSpec } from "./reconcile.command.js";
import { releaseSpec } from "./release.command.js";
import { routeSpec } from "./route.command.js";
import { sendSpec } from "./send.command.js";
import { uploadSpec } from "./upload.command.js";
import { verifySpec } from "./verify.command.js";
import { watchSpec } from "./watch.command.js";

/** Every command, in the order --help lists them. Each spec lazily imports its implementation. */
export const commandSpecs: readonly AnyCommandSpec[] = [sendSpec, packSpec, inspectSpec, uploadSpec, notifySpec, initSpec, configSpec, verifySpec, watchSpec, releaseSpec, mediaSpec, routeSpec, reconcileSpec, auditSpec];
