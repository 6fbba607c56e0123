/**
 * The watcher's state folder: the one place `watch` trusts. Claims, the forward queue, notification receipts and
 * outboxes, staff reconciliations, locks and the keyed audit log live here, outside the drop folder that
 * uploaders write. It is created 0700 (0750 with a staff group) and refused when anyone else could write to it.
 */
import { forEachConcurrent } from "../util/concurrency.js";
import { execFileSync } from "node:child_process";
import { constants } from "node:fs";
import { chmod, chown, lstat, mkdir, open, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { UsageError } from "../errors.js";

/** File and folder modes for everything holding patient data, and the staff group that may read it. */
export interface PrivateModes {
  file: number;
  dir: number;
  gid?: number;
}

/** Owner-only modes (no staff group). */
export const OWNER_ONLY: PrivateModes = { file: 0o600, dir: 0o700 };

/** Modes for `--group NAME`: 0640 / 0750 and that group; owner-only without a group. */
export function privateModes(group?: string): PrivateModes {
  if (!group) return OWNER_ONLY;
  return { file: 0o640, dir: 0o750, gid: groupId(group) };
}

/** The gid of a group name (or a number). */
export function groupId(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  try {
    const line = execFileSync("getent", ["group", group], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const gid = Number(line.split(":")[2]);
    if (Number.isInteger(gid)) return gid;
  } catch {
    // not found: below
  }
  throw new UsageError("GROUP_NOT_FOUND", `No group named ${group} on this machine`, { hint: "Give the staff group that may read ready/ (see `getent group`), or leave --group out for owner-only files." });
}

/** The sub-folders of a state folder. */
export interface StateDirs {
  root: string;
  claims: string;
  queue: string;
  notifications: string;
  reconcile: string;
  archive: string;
  quarantine: string;
  /** Local drop of a remote inbox (written only by this watcher). */
  remoteDrop: string;
}

/** The folders inside a state folder. */
export function stateDirs(root: string): StateDirs {
  return {
    root,
    claims: join(root, "claims"),
    queue: join(root, "forward-queue"),
    notifications: join(root, "notifications"),
    reconcile: join(root, "reconcile"),
    archive: join(root, "archive"),
    quarantine: join(root, "quarantine"),
    remoteDrop: join(root, "remote-drop"),
  };
}

/** Default state folder: `scanbridge-state` beside the ready folder. */
export function defaultStateDir(ready: string): string {
  return join(dirname(ready), "scanbridge-state");
}

/**
 * Create (0700, or 0750 with a staff group) or check the state folder: it must be a real folder (not a link),
 * owned by the user running the watcher, and writable by nobody else. Anything else is refused, never used.
 */
export async function openStateDir(root: string, modes: PrivateModes): Promise<StateDirs> {
  await mkdirPrivate(root, modes);
  await checkPrivateDir(root, "state folder");
  const d = stateDirs(root);
  for (const p of [d.claims, d.queue, d.notifications, d.reconcile]) await mkdirPrivate(p, modes);
  return d;
}

/** Refuse a folder that is a link, belongs to someone else, or that group or others can write to. */
export async function checkPrivateDir(path: string, what: string): Promise<void> {
  const st = await lstat(path);
  const uid = process.getuid?.();
  if (!st.isDirectory()) throw new UsageError("STATE_UNSAFE", `The ${what} is not a folder (a link or a file): ${path}`, { hint: "Give a real folder only this service account can write." });
  if (uid !== undefined && st.uid !== uid) {
    throw new UsageError("STATE_UNSAFE", `The ${what} belongs to another user (uid ${st.uid}, watch runs as ${uid}): ${path}`, { hint: `Run watch as its owner, or: chown ${uid} '${path}'` });
  }
  if (st.mode & 0o022) {
    throw new UsageError("STATE_UNSAFE", `Others can write to the ${what} (mode ${(st.mode & 0o777).toString(8)}): ${path}`, { hint: `Make it private: chmod go-w '${path}'` });
  }
}

/** mkdir with the private mode pinned (the umask may not widen or narrow it) when the folder is new. */
export async function mkdirPrivate(path: string, modes: PrivateModes): Promise<void> {
  const made = await mkdir(path, { recursive: true, mode: modes.dir });
  if (made === undefined) return;
  // mkdir -p created `made` and everything below it down to `path`: pin each.
  for (let p = path; ; p = dirname(p)) {
    if (modes.gid !== undefined) await chown(p, -1, modes.gid).catch(() => {});
    await chmod(p, modes.dir);
    if (p === made || dirname(p) === p) break;
  }
}

/**
 * Give an extracted tree its private modes (files 0600/0640, folders 0700/0750, the staff group), never
 * following a link; returns every relative path seen (for the control-file check). Paths in `done` (from an
 * earlier call on the same root) are not touched again, so a hook that adds a page costs only the page's files.
 * The modes are set a few at a time (each is an open, chmod and close on the thread pool).
 */
export async function makeTreePrivate(root: string, modes: PrivateModes, done?: ReadonlySet<string>): Promise<string[]> {
  const seen: string[] = [];
  const todo: Array<{ path: string; dir: boolean }> = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      seen.push(r);
      if (e.isSymbolicLink()) continue;
      if (e.isDirectory()) await walk(p, r);
      if (!done?.has(r)) todo.push({ path: p, dir: e.isDirectory() });
    }
  };
  await walk(root, "");
  await forEachConcurrent(todo, 8, (t) => setMode(t.path, t.dir ? modes.dir : modes.file, modes.gid));
  await setMode(root, modes.dir, modes.gid);
  return seen;
}

/** chmod (and chgrp) one file or folder through a descriptor opened without following links. */
export async function setMode(path: string, mode: number, gid?: number): Promise<void> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    if (gid !== undefined) await fh.chown(-1, gid);
    await fh.chmod(mode);
  } finally {
    await fh.close();
  }
}

/** Names that are scanbridge's own control files: a package carrying one is quarantined, never obeyed. */
export function isControlFileName(name: string): boolean {
  return /^\.scanbridge/i.test(name) || /^scanbridge-(state|reconcile|route|config)/i.test(name);
}

/** What a watch of an older version left in the drop folder, and the exact commands to move it. */
export async function legacyStateIn(drop: string, state: StateDirs): Promise<{ found: string[]; commands: string[] }> {
  const moves: Array<[string, string]> = [
    ["audit.jsonl", join(state.root, "audit-before-state-folder.jsonl")],
    ["archive", state.archive],
    ["quarantine", state.quarantine],
    ["forward-queue", state.queue],
    ["notifications", state.notifications],
    ["processing", ""],
  ];
  const names = new Set(await readdir(drop).catch(() => [] as string[]));
  const found: string[] = [];
  const commands: string[] = [];
  for (const [name, to] of moves) {
    if (!names.has(name)) continue;
    found.push(name);
    const from = join(drop, name);
    if (name === "processing" || name === "forward-queue" || name === "notifications") {
      // Uploaders could write these: copying them into the state folder would make planted entries trusted.
      commands.push(`# ${from}: old watcher state that uploaders could have planted; review it by hand, never copy it into the state folder, then: rm -r '${from}'`);
    } else if (name === "audit.jsonl") commands.push(`mv '${from}' '${to}'   # keep it; check it with: scanbridge audit verify '${to}'`);
    else commands.push(`mkdir -p '${to}' && mv '${from}'/* '${to}'/ && rmdir '${from}'   # patient data: keep it out of the uploaders' folder`);
  }
  return { found, commands };
}
