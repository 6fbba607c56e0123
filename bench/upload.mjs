#!/usr/bin/env node
// Benchmark: `scanbridge upload` vs OpenSSH `sftp -b` to the same loopback sshd, in the same run, several rounds;
// then both again through a userspace relay that adds 150 ms of round-trip latency (kernel netem is not
// available here). Reports MB/s, the ratio and peak RSS. Needs root (the test sshd creates a throw-away account)
// and a build (`npm run build`).
//
// Every round is printed (with the load average), not only the medians: the machine is shared. Each scanbridge
// run says how many channels it used (from its --json: lanes, and lanesAdded by the ramp). BENCH_RTT_MS=50 gives a
// shorter link, where the round trip alone picks fewer channels and the ramp adds some while sending.
//
// NODE_EXTRA_CA_CERTS: Node reads and parses that certificate file when it starts, before any of scanbridge runs
// (sftp does not). Where it is set (a proxy's CA, as on the machine this was written on), the benchmark measures
// what it costs (`node -e 0` with and without it) and runs scanbridge's loopback uploads a second time without it,
// each figure beside sftp's of the same round: the first is this machine as it is, the second what a machine
// without the setting sees.
//
//   BENCH_SIZES_MB=200,1024 BENCH_ROUNDS=2 BENCH_RELAY_SIZES_MB=50,500 BENCH_RTT_MS=150 BENCH_CONNECTIONS=8 node bench/upload.mjs
//   BENCH_KEEP_DESTINATION=1: the previous run's files stay at the destination (see fresh() below).
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync, writeSync, existsSync, copyFileSync, truncateSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { runnerImport } from "vite";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const SIZES_MB = (process.env.BENCH_SIZES_MB ?? process.env.BENCH_SIZE_MB ?? "200,1024").split(",").filter(Boolean).map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const RELAY_SIZES_MB = (process.env.BENCH_RELAY_SIZES_MB ?? process.env.BENCH_RELAY_MB ?? "50,500").split(",").filter(Boolean).map(Number);
const SIZE_MB = Math.max(1, ...SIZES_MB, ...RELAY_SIZES_MB);
const RTT_MS = Number(process.env.BENCH_RTT_MS ?? 150);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const KEEP_DESTINATION = process.env.BENCH_KEEP_DESTINATION === "1";
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

/** The environment of the runs, with `env` added; keys set to undefined are left out. */
function envWith(env) {
  const out = { ...process.env, ...env };
  for (const [k, v] of Object.entries(out)) if (v === undefined) delete out[k];
  return out;
}

/** Run a command under GNU time; returns seconds and peak RSS in MB. */
function timed(cmd, args, env = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn("/usr/bin/time", ["-f", "RSSKB=%M", cmd, ...args], { env: envWith(env), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("exit", (code) => {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const m = /RSSKB=(\d+)/.exec(err);
      if (code !== 0) return reject(new Error(`${cmd} exited ${code}: ${err}\n${out}`));
      // scanbridge runs with --json: how many channels it used (and how many the ramp added).
      let lanes = "";
      try {
        const j = JSON.parse(out);
        if (j.lanes !== undefined) lanes = `${j.lanes} lane${j.lanes === 1 ? "" : "s"}${j.lanesAdded ? ` (${j.lanesAdded} added)` : ""}`;
      } catch {
        /* not JSON (sftp) */
      }
      resolve({ secs, rssMB: m ? Number(m[1]) / 1024 : NaN, lanes });
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

const work = mkdtempSync(join(tmpdir(), "sb-bench-"));
const sshd = await sshdHelper.startSshd({ extraConfig: ["MaxSessions 64"] });
const results = [];
const mounts = [];
try {
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
  const load = () => execFileSync("uptime", { encoding: "utf8" }).trim().replace(/.*load/, "load");
  const sftpRun = (port, dest, file) => {
    const batch = join(work, "batch");
    writeFileSync(batch, `put "${file}" ${dest}/bench.zip\n`);
    writeFileSync(join(work, "kh"), `[127.0.0.1]:${port} ${sshd.hostPublicKey}\n`);
    return timed("sftp", ["-q", "-b", batch, "-i", sshd.privateKeyPath, "-o", `UserKnownHostsFile=${join(work, "kh")}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-P", String(port), `${sshd.user}@127.0.0.1`]);
  };
  const env = { SSH_AUTH_SOCK: "" };
  // Every timed run starts from empty destination folders. Left in place, the previous run's file of the same size
  // is freed during the next run, at different moments by each tool (sftp's put truncates it as it opens it and
  // reuses those pages at once; scanbridge writes a new partial file and frees the old one when it renames over
  // it): on this machine that made scanbridge's run right after an sftp run 2.1-2.6x slower (2026-12-02, 1 GB,
  // 12 rounds: 226-274 MB/s after sftp's run, 564-607 after its own; 561-647 in each of 6 rounds once emptied).
  // A patient's upload is a new file at the destination, so neither tool gets a file to overwrite here.
  // BENCH_KEEP_DESTINATION=1 leaves the files in place, as before (to see the effect again).
  const fresh = () => {
    if (KEEP_DESTINATION) return;
    for (const d of [sbDir, sftpDir]) for (const f of readdirSync(d)) rmSync(join(d, f), { recursive: true, force: true });
  };
  const makePkg = (name, mbs) => {
    const pkg = join(work, `${name}.zip`);
    makeFile(pkg, mbs);
    execFileSync("sh", ["-c", `cd "${work}" && sha256sum "${name}.zip" > "${name}.zip.sha256"`]);
    // The package was just written: flush it now, so that the kernel's write-back of it does not run during the
    // first timed upload (scanbridge's, which goes first in every round) and not during sftp's.
    execFileSync("sync");
    return pkg;
  };
  const sbArgs = (pkg, port, extra = []) => [bin, "upload", pkg, "--to", `sftp://${sshd.user}@127.0.0.1:${port}/sb`, "--identity", sshd.privateKeyPath, "--host-fingerprint", sshd.hostFingerprint, "--force", "--json", ...extra];
  const lines = [];
  const say = (l) => {
    console.error(l);
    lines.push(l);
  };

  // What this machine's NODE_EXTRA_CA_CERTS costs each Node start (see the top of this file), every run shown.
  const extraCa = process.env.NODE_EXTRA_CA_CERTS;
  const clean = { ...env, NODE_EXTRA_CA_CERTS: undefined };
  if (extraCa) {
    const starts = async (e) => {
      const xs = [];
      for (let i = 0; i < 7; i++) xs.push((await timed("node", ["-e", "0"], e)).secs);
      return xs;
    };
    const withIt = await starts({});
    const without = await starts(clean);
    const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const ms = (xs) => xs.map((x) => (x * 1000).toFixed(0)).join(", ");
    say(`NODE_EXTRA_CA_CERTS is set here: \`node -e 0\` takes ${ms(withIt)} ms with it, ${ms(without)} ms without (medians ${(med(withIt) * 1000).toFixed(0)} and ${(med(without) * 1000).toFixed(0)} ms); ` +
      "scanbridge's loopback uploads run both ways (\"as set\" and \"without\"), sftp once");
  }

  for (const mbs of SIZES_MB) {
    const name = `Bench ${mbs}`;
    const pkg = makePkg(name, mbs);
    const size = mbs * 1024 * 1024;
    // Resume: half of the package is already at the destination as the partial.
    // The first half of the package at `path`, owned by the server's user. As for the package, it is flushed now,
    // not by the kernel during the timed resume.
    const placeHalf = (path) => {
      copyFileSync(pkg, path);
      truncateSync(path, size / 2);
      chownSync(path, sshd.uid, sshd.gid);
      execFileSync("sync");
    };
    const halfThere = () => {
      fresh();
      rmSync(join(sbDir, `${name}.zip`), { force: true });
      rmSync(join(sbDir, `${name}.zip.sha256`), { force: true });
      placeHalf(join(sbDir, `.${name}.zip.partial`));
    };
    for (let r = 0; r < ROUNDS; r++) {
      fresh();
      const a = await timed("node", sbArgs(pkg, sshd.port), env);
      fresh();
      const a2 = extraCa ? await timed("node", sbArgs(pkg, sshd.port), clean) : undefined;
      fresh();
      const b = await sftpRun(sshd.port, "sftp", pkg);
      halfThere();
      const c = await timed("node", sbArgs(pkg, sshd.port), env);
      let c2;
      if (extraCa) {
        halfThere();
        c2 = await timed("node", sbArgs(pkg, sshd.port), clean);
      }
      // sftp's own resume (reput) of the same half, for the peer figure.
      fresh();
      placeHalf(join(sftpDir, "bench.zip"));
      writeFileSync(join(work, "batch-reput"), `reput "${pkg}" sftp/bench.zip\n`);
      const d = await timed("sftp", ["-q", "-b", join(work, "batch-reput"), "-i", sshd.privateKeyPath, "-o", `UserKnownHostsFile=${join(work, "kh")}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-P", String(sshd.port), `${sshd.user}@127.0.0.1`]);
      results.push({ where: "loopback", mb: mbs, round: r + 1, sb: a.secs, sftp: b.secs, sbResume: c.secs, sftpResume: d.secs, rssSb: a.rssMB, rssSftp: b.rssMB, lanes: a.lanes, lanesResume: c.lanes, load: load(),
        ...(a2 && c2 ? { sbWithoutExtraCa: a2.secs, sbResumeWithoutExtraCa: c2.secs } : {}) });
      const without = (x, peer) => (x ? ` (without NODE_EXTRA_CA_CERTS ${x.secs.toFixed(2)} s = ${(peer.secs / x.secs).toFixed(2)}x)` : "");
      say(`loopback ${mbs} MB round ${r + 1}: scanbridge ${mb(size, a.secs).toFixed(0)} MB/s, sftp ${mb(size, b.secs).toFixed(0)} MB/s = ${(b.secs / a.secs).toFixed(2)}x${a2 ? ` (without NODE_EXTRA_CA_CERTS ${mb(size, a2.secs).toFixed(0)} MB/s = ${(b.secs / a2.secs).toFixed(2)}x)` : ""}; ` +
        `resumed half: scanbridge ${c.secs.toFixed(2)} s, sftp reput ${d.secs.toFixed(2)} s = ${(d.secs / c.secs).toFixed(2)}x${without(c2, d)}; ${a.lanes}/${c.lanes}; RSS ${a.rssMB.toFixed(0)} vs ${b.rssMB.toFixed(0)} MB; ${load()}`);
    }
    rmSync(pkg, { force: true });
  }

  const relay = await startDelayRelay(sshd.port, RTT_MS);
  for (const mbs of RELAY_SIZES_MB) {
    const name = `Relay ${mbs}`;
    const pkg = makePkg(name, mbs);
    const size = mbs * 1024 * 1024;
    for (let r = 0; r < ROUNDS; r++) {
      // The relay runs in this process: its CPU time during each run shows whether it could be the bottleneck
      // (it is not when it stays well below the run's wall time).
      const withRelayCpu = async (p) => {
        const c0 = process.cpuUsage();
        const res = await p();
        const c = process.cpuUsage(c0);
        return { ...res, relayCpu: (c.user + c.system) / 1e6 };
      };
      fresh();
      const a = await withRelayCpu(() => timed("node", sbArgs(pkg, relay.port), env));
      fresh();
      const b = await withRelayCpu(() => timed("node", sbArgs(pkg, relay.port, ["--connections", String(CONNECTIONS)]), env));
      fresh();
      const c = await withRelayCpu(() => sftpRun(relay.port, "sftp", pkg));
      results.push({ where: `relay ${RTT_MS} ms`, mb: mbs, round: r + 1, sb: a.secs, sbN: b.secs, sftp: c.secs, rssSb: a.rssMB, rssSbN: b.rssMB, lanes: a.lanes, lanesN: b.lanes, relayCpu: [a.relayCpu, b.relayCpu, c.relayCpu], load: load() });
      say(`${RTT_MS} ms RTT ${mbs} MB round ${r + 1}: scanbridge (defaults) ${mb(size, a.secs).toFixed(1)} MB/s = ${(c.secs / a.secs).toFixed(2)}x, ` +
        `--connections ${CONNECTIONS} ${mb(size, b.secs).toFixed(1)} MB/s = ${(c.secs / b.secs).toFixed(2)}x, sftp ${mb(size, c.secs).toFixed(1)} MB/s; defaults used ${a.lanes}; RSS ${a.rssMB.toFixed(0)}/${b.rssMB.toFixed(0)} MB; ` +
        `relay CPU ${a.relayCpu.toFixed(2)}/${b.relayCpu.toFixed(2)}/${c.relayCpu.toFixed(2)} s of ${a.secs.toFixed(2)}/${b.secs.toFixed(2)}/${c.secs.toFixed(2)} s; ${load()}`);
    }
    rmSync(pkg, { force: true });
  }
  relay.close();
  console.log(lines.join("\n"));
  console.log(JSON.stringify(results));
} finally {
  for (const m of mounts) execFileSync("umount", [m]);
  await sshd.stop();
  rmSync(work, { recursive: true, force: true });
}
