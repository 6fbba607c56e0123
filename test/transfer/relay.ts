// A small TCP relay for tests: forwards to a target port, and can cut connection i after N client->server bytes
// and limit the rate, to simulate a dropped hotel connection or a slow line.
import { connect, createServer, type Server, type Socket } from "node:net";

/** Options for startRelay. */
export interface RelayOptions {
  /** cuts[i]: destroy the i-th connection (0-based) after this many client->server bytes; undefined: never. */
  cuts?: Array<number | undefined>;
  /** stalls[i]: after this many client->server bytes, silently stop forwarding in both directions (a NAT drop). */
  stalls?: Array<number | undefined>;
  /** Client->server bytes per second (undefined: unlimited). */
  rate?: number;
  /** Milliseconds added to every chunk in each direction (half the round trip added), order kept. */
  delayMs?: number;
  /**
   * Once the client has closed its side (after an SSH disconnect), nothing more reaches it and its connection is
   * never closed by this end (until close()): a server that hangs while closing, or a middlebox that keeps the
   * connection. The server itself is told (its connection is ended).
   */
  holdOpen?: boolean;
}

/** A running relay. */
export interface Relay {
  port: number;
  /** Connections accepted so far. */
  connections(): number;
  /** Bytes forwarded client->server per connection. */
  forwarded(): number[];
  close(): Promise<void>;
}

/** A write function for `sock` that holds every chunk `ms` milliseconds first (in order); plain writes without. */
function delayed(sock: Socket, ms: number | undefined): (chunk: Buffer, cb?: () => void) => boolean {
  if (!ms) return (chunk, cb) => sock.write(chunk, cb);
  const queue: Array<{ at: number; chunk: Buffer; cb?: () => void }> = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    const now = Date.now();
    while (queue.length && queue[0]!.at <= now) {
      const { chunk, cb } = queue.shift()!;
      if (!sock.destroyed) sock.write(chunk, cb);
    }
    if (queue.length) timer = setTimeout(flush, queue[0]!.at - now);
  };
  return (chunk, cb) => {
    queue.push({ at: Date.now() + ms, chunk, cb });
    timer ??= setTimeout(flush, ms);
    return true;
  };
}

/** Start a relay on 127.0.0.1 to targetPort. */
export function startRelay(targetPort: number, opts: RelayOptions = {}): Promise<Relay> {
  const forwarded: number[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: opts.holdOpen === true }, (client) => {
    const index = forwarded.length;
    forwarded.push(0);
    const cut = opts.cuts?.[index];
    const stall = opts.stalls?.[index];
    let stalled = false;
    let holding = false;
    const upstream = connect(targetPort, "127.0.0.1");
    sockets.add(client);
    sockets.add(upstream);
    const kill = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", kill);
    client.on("close", kill);
    // While holding, the server's side may go; the client's stays.
    upstream.on("error", () => (holding ? upstream.destroy() : kill()));
    upstream.on("close", () => (holding ? undefined : kill()));
    if (opts.holdOpen) {
      client.on("end", () => {
        holding = true;
        upstream.end();
      });
    }
    const toClient = delayed(client, opts.delayMs);
    const toUpstream = delayed(upstream, opts.delayMs);
    upstream.on("data", (d: Buffer) => {
      if (!stalled && !holding) toClient(d);
    });
    client.on("data", (d: Buffer) => {
      if (stalled) return;
      let chunk = d;
      if (stall !== undefined && forwarded[index]! + chunk.length >= stall) {
        chunk = chunk.subarray(0, Math.max(0, stall - forwarded[index]!));
        forwarded[index]! += chunk.length;
        toUpstream(chunk);
        stalled = true;
        return;
      }
      if (cut !== undefined && forwarded[index]! + chunk.length >= cut) {
        chunk = chunk.subarray(0, Math.max(0, cut - forwarded[index]!));
        forwarded[index]! += chunk.length;
        toUpstream(chunk, () => kill());
        return;
      }
      forwarded[index]! += chunk.length;
      const ok = toUpstream(chunk);
      if (opts.rate) {
        client.pause();
        setTimeout(() => client.resume(), (chunk.length / opts.rate) * 1000);
      } else if (!ok) {
        client.pause();
        upstream.once("drain", () => client.resume());
      }
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({
        port: (server.address() as { port: number }).port,
        connections: () => forwarded.length,
        forwarded: () => [...forwarded],
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      }),
    ),
  );
}
