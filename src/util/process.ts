import { readFileSync } from "node:fs";

/** Whether a process with this pid exists on this machine (EPERM: it exists but belongs to someone else). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * When a process started, as "<boot id>:<start ticks>" (Linux /proc), so a pid reused after the owner died,
 * or after a reboot, is told apart from the owner. "" where /proc is not available.
 */
export function processStartTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    // Field 22 (starttime) counts from the field after the command name, which may itself hold spaces and ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = fields[19] ?? "";
    let boot = "";
    try {
      boot = readFileSync("/proc/sys/kernel/random/boot_id", "latin1").trim();
    } catch {
      // no boot id: ticks alone still tell a reused pid apart
    }
    return ticks ? `${boot}:${ticks}` : "";
  } catch {
    return "";
  }
}

/** Who holds something (a lock, a claim): enough to prove later whether that process still runs. */
export interface ProcessIdentity {
  host: string;
  pid: number;
  /** processStartTime(pid) when the record was made; "" when unknown. */
  start: string;
}

/**
 * Whether the process named by an owner record is certainly gone: only decidable on its own host (pid not
 * running, or running but started at another time, i.e. a reused pid). Other hosts: undefined (use a heartbeat).
 */
export function isOwnerGone(owner: ProcessIdentity, thisHost: string): boolean | undefined {
  if (owner.host !== thisHost) return undefined;
  if (!Number.isInteger(owner.pid) || owner.pid <= 0) return true;
  if (!isProcessAlive(owner.pid)) return true;
  if (owner.start) {
    const now = processStartTime(owner.pid);
    if (now && now !== owner.start) return true;
  }
  return false;
}
