import { mkdir, open, readdir, rename, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Destination, DownloadResult, RemoteEntry, RemoteReader, RemoteStat, RemoteWriter } from "./destination.js";
import { RemoteVerificationError } from "../errors.js";
import { msg } from "../i18n/index.js";
import { readFully } from "../util/read-fully.js";
import { readerToFile } from "./download.js";
import { UPLOAD_DIR_MODE, UPLOAD_FILE_MODE, describeRemoteError } from "./sftp.js";

/** A local (or mounted network) folder as a destination: the embedded default, no server needed. */
export class LocalDestination implements Destination {
  readonly kind = "local" as const;
  readonly url: string;
  readonly window = { requests: 8, chunkSize: 1024 * 1024 };
  /** A local folder has no connection to lose. */
  readonly connectionFailure = undefined;

  constructor(readonly folder: string) {
    this.url = pathToFileURL(folder).href;
  }

  pathOf(name: string): string {
    return join(this.folder, name);
  }

  async stat(path: string): Promise<RemoteStat | undefined> {
    try {
      const s = await stat(path);
      return { size: s.size, isDirectory: s.isDirectory(), mtimeMs: s.mtimeMs };
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
      await mkdir(path, { recursive: true, mode: UPLOAD_DIR_MODE });
    } catch (err) {
      throw describeRemoteError(err, "create the destination folder");
    }
  }

  async openWrite(path: string, opts: { truncate: boolean }): Promise<RemoteWriter> {
    let fh;
    try {
      fh = await open(path, opts.truncate ? "w" : (await this.exists(path)) ? "r+" : "w", UPLOAD_FILE_MODE);
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
      async finish() {
        try {
          await handle.sync();
          return (await handle.stat()).size;
        } catch (err) {
          throw describeRemoteError(err, "close the upload file");
        } finally {
          await handle.close();
        }
      },
      close: () => handle.close(),
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
      read: (length, position) => readFully(handle, Buffer.allocUnsafe(length), position),
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

  async list(folder: string): Promise<RemoteEntry[]> {
    let names: string[];
    try {
      names = await readdir(folder);
    } catch (err) {
      throw describeRemoteError(err, "list the folder");
    }
    const out: RemoteEntry[] = [];
    for (const name of names) {
      try {
        const s = await stat(join(folder, name));
        out.push({ name, size: s.size, mtimeMs: s.mtimeMs, isFile: s.isFile(), isDirectory: s.isDirectory() });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw describeRemoteError(err, "list the folder");
      }
    }
    return out;
  }

  async download(remotePath: string, localPath: string, opts: { signal?: AbortSignal } = {}): Promise<DownloadResult> {
    const st = await this.stat(remotePath);
    if (!st || st.isDirectory) throw describeRemoteError(Object.assign(new Error("not found"), { code: "ENOENT" }), "download");
    const r = await this.openRead(remotePath);
    try {
      return await readerToFile(r, st.size, localPath, this.window, opts.signal);
    } finally {
      await r.close().catch(() => {});
    }
  }

  async writeSmall(path: string, data: Buffer): Promise<void> {
    try {
      await writeFile(path, data, { mode: UPLOAD_FILE_MODE, flush: true });
    } catch (err) {
      throw describeRemoteError(err, "write the checksum file");
    }
    if ((await this.stat(path))?.size !== data.length) throw new RemoteVerificationError("REMOTE_SIZE_MISMATCH", msg("upload.markerWrongSize"));
  }

  async close(): Promise<void> {}
}
