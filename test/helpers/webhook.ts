// A local HTTP or HTTPS server receiving webhook POSTs for tests: records each request and answers with
// a scripted sequence of status codes.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { TestCert } from "./smtp.js";

/** One request the server received. */
export interface ReceivedWebhook {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  status: number;
}

/** A running webhook receiver. */
export interface TestWebhookServer {
  url: string;
  requests: ReceivedWebhook[];
  /** Status codes to answer, in order; after the list runs out, `fallback`. */
  statuses: number[];
  stop(): Promise<void>;
}

/** Start a webhook receiver on 127.0.0.1; HTTPS when `cert` is given. */
export async function startWebhookServer(opts: { statuses?: number[]; fallback?: number; cert?: TestCert; path?: string } = {}): Promise<TestWebhookServer> {
  const requests: ReceivedWebhook[] = [];
  const statuses = [...(opts.statuses ?? [])];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const status = statuses.shift() ?? opts.fallback ?? 200;
      requests.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks), status });
      res.writeHead(status, { "Content-Type": "text/plain" }).end(status < 300 ? "ok" : "no");
    });
  };
  const server = opts.cert ? createHttpsServer({ key: opts.cert.key, cert: opts.cert.cert }, handler) : createHttpServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${opts.cert ? "https" : "http"}://127.0.0.1:${port}${opts.path ?? "/hooks/scanbridge"}`,
    requests,
    statuses,
    async stop() {
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
