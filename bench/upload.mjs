#!/usr/bin/env node
// Benchmark: `scanbridge upload` vs OpenSSH `sftp -b` to the same loopback sshd, in the same run, several rounds;
// then both again through a userspace relay that adds 150 ms of round-trip latency (kernel netem is not
// available here). Reports MB/s, the ratio and peak RSS. Needs root (the test sshd creates a throw-away account)
// and a build (`npm run build`).
//
//   BENCH_SIZE_MB=1024 BENCH_ROUNDS=3 BENCH_RELAY_MB=256 BENCH_RTT_MS=150 BENCH_CONNECTIONS=8 node bench/upload.mjs
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync, existsSync, copyFileSync, truncateSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { runnerImport } from "vite";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const SIZE_MB = Number(process.env.BENCH_SIZE_MB ?? 1024);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RELAY_MB = Number(process.env.BENCH_RELAY_MB ?? 256);
const RTT_MS = Number(process.env.BENCH_RTT_MS ?? 150);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const bin = join(root, "bin", "scanbridge.js");
if (!existsSync(join(root, "dist", "src", "cli.js"))) {
  console.error("Build first: npm run build");
  process.exit(2);
}

// The test helper is TypeScript; Vite (already a dev dependency through vitest) loads it.
const { module: sshdHelper } = await runnerImport(join(root, "test", "helpers", "sshd.ts"));

function makeFile(path, mb) {
  const fd = openSync(path, "w");
  const block = randomBytes(4 * 1024 * 1024);
  for (let i = 0; i < mb / 4; i++) {
    block.writeUInt32BE(i, 0); // No two blocks alike.
    writeSync(fd, block);
  }
  closeSync(fd);
}

/** Run a command under GNU time; returns seconds and peak RSS in MB. */
function timed(cmd, args, env = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn("/usr/bin/time", ["-f", "RSSKB=%M", cmd, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("exit", (code) => {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const m = /RSSKB=(\d+)/.exec(err);
      if (code !== 0) return reject(new Error(`${cmd} exited ${code}: ${err}\n${out}`));
      resolve({ secs, rssMB: m ? Number(m[1]) / 1024 : NaN });
    });
  });
}

/** A TCP relay that delays every chunk by rtt/2 in each direction, keeping order. */
function startDelayRelay(targetPort, rttMs) {
  const oneWay = rttMs / 2;
  const pipeDelayed = (from, to) => {
    const queue = [];
    let timer = null;
    const flush = () => {
      timer = null;
      const now = Date.now();
      while (queue.length && queue[0].at <= now) to.write(queue.shift().buf);
      if (queue.length) timer = setTimeout(flush, queue[0].at - now);
    };
    from.on("data", (buf) => {
      queue.push({ at: Date.now() + oneWay, buf });
      if (!timer) timer = setTimeout(flush, oneWay);
    });
    from.on("end", () => setTimeout(() => to.end(), oneWay + 5));
    from.on("error", () => to.destroy());
  };
  const server = createServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    pipeDelayed(client, upstream);
    pipeDelayed(upstream, client);
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ port: server.address().port, close: () => server.close() })));
}

const mb = (bytes, secs) => bytes / 1e6 / secs;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const work = mkdtempSync(join(tmpdir(), "sb-bench-"));
const sshd = await sshdHelper.startSshd({ extraConfig: ["MaxSessions 64"] });
const results = [];
const mounts = [];
try {
  const pkg = join(work, "Bench Patient.zip");
  console.error(`creating ${SIZE_MB} MB package ...`);
  makeFile(pkg, SIZE_MB);
  const size = SIZE_MB * 1024 * 1024;
  execFileSync("sh", ["-c", `cd "${work}" && sha256sum "Bench Patient.zip" > "Bench Patient.zip.sha256"`]);
  const sbDir = sshd.mkdirOwned("sb");
  const sftpDir = sshd.mkdirOwned("sftp");
  // Both land on RAM disks when mounting is allowed, so the server's disk does not add noise to the comparison.
  for (const d of [sbDir, sftpDir]) {
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", `size=${Math.ceil((SIZE_MB * 2.2) / 1024) + 1}g`, "tmpfs", d]);
      chownSync(d, sshd.uid, sshd.gid);
      mounts.push(d);
    } catch {
      console.error("(could not mount a tmpfs; the server writes to disk)");
    }
  }
  const sbArgs = (port, dest, extra = []) => [bin, "upload", pkg, "--to", `sftp://${sshd.user}@127.0.0.1:${port}/${dest}`, "--identity", sshd.privateKeyPath, "--host-fingerprint", sshd.hostFingerprint, "--force", "--quiet", ...extra];
  const sftpRun = (port, dest, file) => {
    const batch = join(work, "batch");
    writeFileSync(batch, `put "${file}" ${dest}/bench.zip\n`);
    writeFileSync(join(work, "kh"), `[127.0.0.1]:${port} ${sshd.hostPublicKey}\n`);
    return timed("sftp", ["-q", "-b", batch, "-i", sshd.privateKeyPath, "-o", `UserKnownHostsFile=${join(work, "kh")}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-P", String(port), `${sshd.user}@127.0.0.1`]);
  };
  const env = { SSH_AUTH_SOCK: "" };

  console.error(`loopback, ${ROUNDS} rounds of ${SIZE_MB} MB ...`);
  const loop = { sb: [], sbResume: [], sftp: [], rssSb: [], rssSftp: [] };
  for (let r = 0; r < ROUNDS; r++) {
    const a = await timed("node", sbArgs(sshd.port, "sb"), env);
    loop.sb.push(mb(size, a.secs));
    loop.rssSb.push(a.rssMB);
    const b = await sftpRun(sshd.port, "sftp", pkg);
    loop.sftp.push(mb(size, b.secs));
    loop.rssSftp.push(b.rssMB);
    // Resume: half of the package is already at the destination as the partial.
    rmSync(join(sbDir, "Bench Patient.zip"), { force: true });
    rmSync(join(sbDir, "Bench Patient.zip.sha256"), { force: true });
    const partial = join(sbDir, ".Bench Patient.zip.partial");
    copyFileSync(pkg, partial);
    truncateSync(partial, size / 2);
    chownSync(partial, sshd.uid, sshd.gid);
    const c = await timed("node", sbArgs(sshd.port, "sb"), env);
    loop.sbResume.push(mb(size / 2, c.secs));
    console.error(`  round ${r + 1}: scanbridge ${loop.sb[r].toFixed(0)} MB/s, resumed half ${loop.sbResume[r].toFixed(0)} MB/s, sftp ${loop.sftp[r].toFixed(0)} MB/s`);
  }

  console.error(`through a relay adding ${RTT_MS} ms RTT, ${RELAY_MB} MB ...`);
  const small = join(work, "Relay Patient.zip");
  makeFile(small, RELAY_MB);
  const relay = await startDelayRelay(sshd.port, RTT_MS);
  const relaySize = RELAY_MB * 1024 * 1024;
  const wan = { sb1: [], sbN: [], sftp: [], rssSbN: [] };
  const sbRelayArgs = (extra) => [bin, "upload", small, "--to", `sftp://${sshd.user}@127.0.0.1:${relay.port}/sb`, "--identity", sshd.privateKeyPath, "--host-fingerprint", sshd.hostFingerprint, "--force", "--quiet", ...extra];
  const wanRounds = Math.max(1, Math.min(ROUNDS, 2));
  for (let r = 0; r < wanRounds; r++) {
    const a = await timed("node", sbRelayArgs([]), env);
    wan.sb1.push(mb(relaySize, a.secs));
    const b = await timed("node", sbRelayArgs(["--connections", String(CONNECTIONS)]), env);
    wan.sbN.push(mb(relaySize, b.secs));
    wan.rssSbN.push(b.rssMB);
    const c = await sftpRun(relay.port, "sftp", small);
    wan.sftp.push(mb(relaySize, c.secs));
    console.error(`  round ${r + 1}: scanbridge ${wan.sb1[r].toFixed(1)} MB/s, scanbridge --connections ${CONNECTIONS} ${wan.sbN[r].toFixed(1)} MB/s, sftp ${wan.sftp[r].toFixed(1)} MB/s`);
  }
  relay.close();

  const summary = {
    loopback: {
      sizeMB: SIZE_MB,
      rounds: ROUNDS,
      scanbridgeMBps: +median(loop.sb).toFixed(1),
      scanbridgeResumedMBps: +median(loop.sbResume).toFixed(1),
      sftpMBps: +median(loop.sftp).toFixed(1),
      ratio: +(median(loop.sb) / median(loop.sftp)).toFixed(2),
      resumedRatio: +(median(loop.sbResume) / median(loop.sftp)).toFixed(2),
      peakRssMB: { scanbridge: +Math.max(...loop.rssSb).toFixed(0), sftp: +Math.max(...loop.rssSftp).toFixed(0) },
    },
    latency: {
      rttMs: RTT_MS,
      sizeMB: RELAY_MB,
      rounds: wanRounds,
      scanbridgeMBps: +median(wan.sb1).toFixed(1),
      scanbridgeParallelMBps: +median(wan.sbN).toFixed(1),
      connections: CONNECTIONS,
      sftpMBps: +median(wan.sftp).toFixed(1),
      ratio: +(median(wan.sbN) / median(wan.sftp)).toFixed(2),
      peakRssMB: { scanbridgeParallel: +Math.max(...wan.rssSbN).toFixed(0) },
    },
    note:
      "Medians of the rounds. scanbridge times are whole CLI runs (Node start-up, connect, upload, rename, .sha256 marker); " +
      "the package's .sha256 (as pack writes it) is its checksum, so there is no separate local hash pass. " +
      "Resumed: half of the package already at the destination as the partial; rate = bytes sent / run time.",
  };
  results.push(summary);
  console.log(JSON.stringify(summary, null, 2));
} finally {
  for (const m of mounts) execFileSync("umount", [m]);
  await sshd.stop();
  rmSync(work, { recursive: true, force: true });
}
