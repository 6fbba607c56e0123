import { mkdir, open, rename, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Destination, RemoteReader, RemoteStat, RemoteWriter } from "./destination.js";
import { describeRemoteError } from "./sftp.js";

/** A local (or mounted network) folder as a destination: the embedded default, no server needed. */
export class LocalDestination implements Destination {
  readonly kind = "local" as const;
  readonly url: string;
  readonly window = { requests: 8, chunkSize: 1024 * 1024 };

  constructor(readonly folder: string) {
    this.url = pathToFileURL(folder).href;
  }

  pathOf(name: string): string {
    return join(this.folder, name);
  }

  async stat(path: string): Promise<RemoteStat | undefined> {
    try {
      const s = await stat(path);
      return { size: s.size, isDirectory: s.isDirectory() };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw describeRemoteError(err, "stat");
    }
  }

  async exists(path: string): Promise<boolean> {
    return (await this.stat(path)) !== undefined;
  }

  async mkdirp(path: string): Promise<void> {
    try {
      await mkdir(path, { recursive: true });
    } catch (err) {
      throw describeRemoteError(err, "create the destination folder");
    }
  }

  async openWrite(path: string, opts: { truncate: boolean }): Promise<RemoteWriter> {
    let fh;
    try {
      fh = await open(path, opts.truncate ? "w" : (await this.exists(path)) ? "r+" : "w");
    } catch (err) {
      throw describeRemoteError(err, "open the upload file");
    }
    const handle = fh;
    return {
      async write(data, position) {
        try {
          let off = 0;
          while (off < data.length) {
            const { bytesWritten } = await handle.write(data, off, data.length - off, position + off);
            off += bytesWritten;
          }
        } catch (err) {
          throw describeRemoteError(err, "write");
        }
      },
      async close() {
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      },
    };
  }

  async openRead(path: string): Promise<RemoteReader> {
    let fh;
    try {
      fh = await open(path, "r");
    } catch (err) {
      throw describeRemoteError(err, "open the uploaded file");
    }
    const handle = fh;
    return {
      async read(length, position) {
        const buf = Buffer.allocUnsafe(length);
        let got = 0;
        while (got < length) {
          const { bytesRead } = await handle.read(buf, got, length - got, position + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        return buf.subarray(0, got);
      },
      close: () => handle.close(),
    };
  }

  async rename(from: string, to: string): Promise<{ atomic: boolean }> {
    try {
      await rename(from, to);
      return { atomic: true };
    } catch (err) {
      throw describeRemoteError(err, "rename");
    }
  }

  async remove(path: string): Promise<void> {
    try {
      await unlink(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw describeRemoteError(err, "remove");
    }
  }

  async writeSmall(path: string, data: Buffer): Promise<void> {
    try {
      await writeFile(path, data);
    } catch (err) {
      throw describeRemoteError(err, "write the checksum file");
    }
  }

  async close(): Promise<void> {}
}
