import { connect, type Socket } from "node:net";

/**
 * The TCP connection to an SFTP server, opened before the command's own modules (ssh2 among them, about 50 ms of
 * compiling) are loaded: the connect and the server's start-up (sshd forks a process per connection before it
 * sends its banner) overlap with that loading instead of following it. Nothing is sent on it here, so nothing is
 * trusted yet: ssh2 takes it over as it is and does the whole handshake, host key check included, on it.
 *
 * Only `upload` opens one (`send` packs first, which can take minutes). A socket not taken within EARLY_MAX_AGE_MS,
 * closed, or failed is dropped, and the connection is made the usual way (which then reports any error itself).
 */
const EARLY_MAX_AGE_MS = 5000;

interface Early {
  key: string;
  sock: Socket;
  at: number;
  failed: boolean;
  received: Buffer[];
}

let early: Early | undefined;

const keyOf = (host: string, port: number) => `${host}\0${port}`;

/** Start connecting to host:port now. The socket does not keep the process alive until it is taken. */
export function openEarlyConnection(host: string, port: number): void {
  dropEarlyConnection();
  const sock = connect({ host, port, noDelay: true });
  const entry: Early = { key: keyOf(host, port), sock, at: performance.now(), failed: false, received: [] };
  // What the server sends before the handshake starts (its banner) is kept and put back when the socket is taken;
  // reading it is also how a close by the server is noticed.
  sock.on("data", (chunk: Buffer) => entry.received.push(chunk));
  sock.once("end", () => (entry.failed = true));
  sock.once("error", () => (entry.failed = true));
  sock.once("close", () => (entry.failed = true));
  sock.unref();
  early = entry;
}

/** The early connection to host:port, if there is a usable one (it is then the caller's, referenced again). */
export function takeEarlyConnection(host: string, port: number): Socket | undefined {
  const e = early;
  if (!e || e.key !== keyOf(host, port)) return undefined;
  early = undefined;
  if (e.failed || e.sock.destroyed || !e.sock.writable || performance.now() - e.at > EARLY_MAX_AGE_MS) {
    e.sock.destroy();
    return undefined;
  }
  e.sock.pause();
  for (const name of ["data", "end", "error", "close"] as const) e.sock.removeAllListeners(name);
  for (const chunk of e.received.reverse()) e.sock.unshift(chunk);
  e.sock.ref();
  return e.sock;
}

/** Whether a usable early connection to host:port is waiting (without taking it). */
export function hasEarlyConnection(host: string, port: number): boolean {
  return early !== undefined && early.key === keyOf(host, port) && !early.failed && !early.sock.destroyed;
}

/** Close an early connection nobody took. */
export function dropEarlyConnection(): void {
  early?.sock.destroy();
  early = undefined;
}
