import type { CommandSpec } from "./types.js";
import { auditSpec } from "./audit.spec.js";
import { configSpec } from "./config.spec.js";
import { initSpec } from "./init.spec.js";
import { notifySpec } from "./notify.spec.js";
import { inspectSpec, packSpec } from "./pack.spec.js";
import { reconcileSpec } from "./reconcile.spec.js";
import { routeSpec } from "./route.spec.js";
import { sendSpec } from "./send.spec.js";
import { uploadSpec } from "./upload.spec.js";
import { verifySpec } from "./verify.spec.js";
import { watchSpec } from "./watch.spec.js";

/** Every command, in the order --help lists them. Each spec lazily imports its implementation. */
export const commandSpecs: readonly CommandSpec[] = [sendSpec, packSpec, inspectSpec, uploadSpec, notifySpec, initSpec, configSpec, verifySpec, watchSpec, routeSpec, reconcileSpec, auditSpec];
