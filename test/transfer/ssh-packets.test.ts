// ssh2's outgoing packets built in reused buffers, with padding from a pooled CSPRNG block (src/transfer/ssh-packets.ts),
// against a real OpenSSH sshd: the server accepts every packet (AES-GCM tags check out), the file arrives intact, and
// the socket sees a bounded set of packet buffers instead of one new one per packet.
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { connectSftp } from "../../src/transfer/sftp.js";
import { startSshd, type SshdServer } from "../helpers/sshd.js";

let sshd: SshdServer;

beforeAll(async () => {
  sshd = await startSshd();
  sshd.mkdirOwned("pkt");
}, 60_000);

afterAll(async () => {
  await sshd?.stop();
});

interface ClientInternals {
  _sock: Socket;
  _protocol: { _cipher: { allocPacket(n: number): Buffer; constructor: { name: string } } };
}

it("16 MiB go out in a bounded set of reused packet buffers, byte-identical at the server, padding random", async () => {
  const dest = await connectSftp({
    host: sshd.host,
    port: sshd.port,
    folder: "pkt",
    url: sshd.url("pkt"),
    auth: { username: sshd.user, privateKey: readFileSync(sshd.privateKeyPath) },
    trust: { host: sshd.host, port: sshd.port, pinnedFingerprint: sshd.hostFingerprint, knownHostsFiles: [] },
    connectTimeoutMs: 20_000,
    idleTimeoutMs: 20_000,
  });
  try {
    const client = (dest as unknown as { client: ClientInternals }).client;
    expect(client._protocol._cipher.constructor.name).toMatch(/^AESGCMCipher/);

    // Padding: random bytes, not repeated from one packet to the next.
    const pads = [0, 1].map(() => {
      const p = client._protocol._cipher.allocPacket(22); // AES-GCM aligns 1 + 22 + padding to 16: 9 bytes
      return Buffer.from(p.subarray(5 + 22, 5 + 22 + p[4]!));
    });
    expect(pads[0]!.length).toBe(9);
    expect(pads[0]!.equals(pads[1]!)).toBe(false);

    // Every buffer ssh2 hands the socket, by its memory.
    const seen = new Set<ArrayBufferLike>();
    let packets = 0;
    const sock = client._sock;
    const write = sock.write.bind(sock);
    sock.write = ((...args: Parameters<Socket["write"]>) => {
      const data = args[0];
      if (data instanceof Uint8Array && data.length > 16 * 1024) {
        seen.add(data.buffer);
        packets++;
      }
      return write(...args);
    }) as Socket["write"];

    const data = randomBytes(16 * 1024 * 1024);
    const w = await dest.openWrite(dest.pathOf("p.bin"), { truncate: true });
    const chunk = 128 * 1024;
    const writes: Array<Promise<void>> = [];
    for (let off = 0; off < data.length; off += chunk) writes.push(w.write(data.subarray(off, off + chunk), off));
    await Promise.all(writes);
    expect(await w.finish()).toBe(data.length);
    sock.write = write as Socket["write"];

    expect(createHash("sha256").update(readFileSync(join(sshd.home, "pkt", "p.bin"))).digest("hex")).toBe(createHash("sha256").update(data).digest("hex"));
    // 16 MiB is about 512 data packets; at most a channel window's worth (2 MiB, 64 packets) is unwritten at a time.
    expect(packets).toBeGreaterThanOrEqual(500);
    expect(seen.size).toBeLessThan(packets / 2);
  } finally {
    await dest.close();
  }
});
