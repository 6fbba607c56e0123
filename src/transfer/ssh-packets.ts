import { randomFillSync } from "node:crypto";
import type { Socket } from "node:net";

/**
 * The sending side of ssh2's packet layer, made cheaper per packet without changing a byte of what it sends.
 *
 * ssh2 (1.x) builds every outgoing SSH packet (at most 32 KiB of data at OpenSSH) in a fresh Buffer, fills its 4-19
 * padding bytes with a call of its own to randomFillSync, encrypts it in place and writes it to the socket on its
 * own. On a fast link that is, per 200 MB: ~6,400 buffer allocations (whose external memory drives most of the
 * process's garbage collections), ~6,400 calls into the CSPRNG, and one system call per packet. Here:
 * - writes made in one tick go to the kernel together (cork, uncork on the next tick: one writev);
 * - with AES-GCM (what ssh2 and OpenSSH agree on), packets are built in buffers that are reused once the socket
 *   has handed them to the kernel, and the padding is taken from a block of CSPRNG output drawn 4 KiB at a time
 *   (OpenSSH's own padding comes from a buffered CSPRNG the same way).
 * The packet layout is checked against ssh2's own allocPacket before it is replaced; any other cipher, or a layout
 * that differs (another ssh2 version), keeps ssh2's code.
 */

/** The ssh2 internals used here (ssh2 1.x): the socket, the protocol and its current cipher (replaced at each key exchange). */
interface Ssh2ClientInternals {
  _sock?: Socket;
  _protocol?: { _cipher?: Cipher };
}

interface Cipher {
  allocPacket(payloadLen: number): Buffer;
  constructor: { name: string };
}

/** Room for the largest data packet at OpenSSH (32 KiB of data plus headers, padding and tag). */
const PACKET_CAPACITY = 32 * 1024 + 256;
/** Free packet buffers kept for reuse (beyond this, the garbage collector takes them back). */
const MAX_FREE = 256;
const RANDOM_BLOCK = 4096;

/** Install both on a connected ssh2 Client. */
export function tuneSshPackets(client: unknown): void {
  const c = client as Ssh2ClientInternals;
  const sock = c._sock;
  if (!sock || typeof sock.cork !== "function") return;
  const pool = new PacketPool();
  coalesceWrites(sock, pool);
  const proto = c._protocol;
  if (!proto || !proto._cipher) return;
  // The cipher object is replaced at every key exchange: adopt each one as it is set.
  let current = proto._cipher;
  pool.adopt(current);
  Object.defineProperty(proto, "_cipher", {
    configurable: true,
    enumerable: true,
    get: () => current,
    set: (next: Cipher) => {
      current = next;
      pool.adopt(next);
    },
  });
}

/**
 * ssh2 writes each packet to the socket on its own. Writes made in the same tick are handed to the kernel together
 * instead (one writev); nothing waits: the data leaves at the end of the tick that produced it. A pooled packet
 * goes back to the pool once the socket reports it written (the kernel has copied it).
 */
function coalesceWrites(sock: Socket, pool: PacketPool): void {
  const write = sock.write.bind(sock) as (...args: unknown[]) => boolean;
  let corked = false;
  sock.write = ((...args: unknown[]) => {
    if (!corked) {
      corked = true;
      sock.cork();
      process.nextTick(() => {
        corked = false;
        sock.uncork();
      });
    }
    const data = args[0];
    if (args.length === 1 && pool.owns(data)) return write(data, () => pool.release(data));
    return write(...args);
  }) as typeof sock.write;
}

class PacketPool {
  private readonly free: ArrayBuffer[] = [];
  private readonly mine = new WeakSet<ArrayBuffer>();
  private readonly random = Buffer.allocUnsafeSlow(RANDOM_BLOCK);
  private randomAt = RANDOM_BLOCK;

  /** Build `cipher`'s packets here when it is AES-GCM with the layout this code writes. */
  adopt(cipher: Cipher): void {
    if (!/^AESGCMCipher/.test(cipher.constructor.name) || !sameLayout(cipher)) return;
    cipher.allocPacket = (payloadLen: number) => this.allocAesGcm(payloadLen);
  }

  owns(data: unknown): data is Buffer {
    return data instanceof Uint8Array && this.mine.has(data.buffer as ArrayBuffer);
  }

  release(data: Buffer): void {
    if (this.free.length < MAX_FREE) this.free.push(data.buffer as ArrayBuffer);
  }

  /** ssh2's AES-GCM allocPacket: length, padding length, room for the payload, random padding, room for the tag. */
  private allocAesGcm(payloadLen: number): Buffer {
    let pktLen = 4 + 1 + payloadLen;
    let padLen = 16 - ((pktLen - 4) & 15);
    if (padLen < 4) padLen += 16;
    pktLen += padLen;
    const total = pktLen + 16;
    let packet: Buffer;
    if (total <= PACKET_CAPACITY) {
      let ab = this.free.pop();
      if (!ab) {
        ab = new ArrayBuffer(PACKET_CAPACITY);
        this.mine.add(ab);
      }
      packet = Buffer.from(ab, 0, total);
    } else {
      packet = Buffer.allocUnsafe(total);
    }
    packet.writeUInt32BE(pktLen - 4, 0);
    packet[4] = padLen;
    this.fillRandom(packet, 5 + payloadLen, padLen);
    return packet;
  }

  private fillRandom(into: Buffer, at: number, n: number): void {
    if (this.randomAt + n > RANDOM_BLOCK) {
      randomFillSync(this.random);
      this.randomAt = 0;
    }
    // Each byte is used once.
    for (let i = 0; i < n; i++) into[at + i] = this.random[this.randomAt + i]!;
    this.randomAt += n;
  }
}

/** Whether ssh2's own allocPacket lays packets out as allocAesGcm does (length, header fields), for a range of sizes. */
function sameLayout(cipher: Cipher): boolean {
  for (const payloadLen of [0, 1, 11, 12, 13, 27, 28, 100, 32768 + 9]) {
    let pktLen = 4 + 1 + payloadLen;
    let padLen = 16 - ((pktLen - 4) & 15);
    if (padLen < 4) padLen += 16;
    pktLen += padLen;
    const theirs = cipher.allocPacket(payloadLen);
    if (theirs.length !== pktLen + 16 || theirs.readUInt32BE(0) !== pktLen - 4 || theirs[4] !== padLen) return false;
  }
  return true;
}
