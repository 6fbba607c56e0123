import type { Socket } from "node:net";

/**
 * Close an ssh2 connection for good, at once. ssh2's Client.destroy() (1.x) destroys the socket only while it is
 * writable: once the connection has been ended (our disconnect sent, our side of TCP closed), it does nothing. A
 * server that then never closes its side (a hung sshd, or a middlebox that keeps the connection) would leave the
 * socket half-open, and the process unable to exit, for ever. So the socket itself is destroyed.
 */
export function destroyConnection(client: unknown): void {
  const c = client as { _sock?: Socket; destroy?: () => void };
  if (c._sock) c._sock.destroy();
  else c.destroy?.();
}
