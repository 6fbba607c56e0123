/**
 * A real Orthanc (Debian packages orthanc + orthanc-dicomweb) on loopback for DICOMweb tests: its own
 * configuration, storage folder and free port; DICOM networking off; stopped and removed after.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./sshd.js";

const ORTHANC = "/usr/sbin/Orthanc";

/** The DICOMweb plugin's shared library, as installed by orthanc-dicomweb. */
export function dicomwebPluginPath(): string | undefined {
  const listed = spawnSync("dpkg", ["-L", "orthanc-dicomweb"], { encoding: "utf8" });
  const fromDpkg = listed.status === 0 ? listed.stdout.split("\n").find((l) => /libOrthancDicomWeb\.so/.test(l) && existsSync(l)) : undefined;
  return fromDpkg ?? ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"].find(existsSync);
}

/** A free TCP port on loopback (shared with the sshd helper). */
export { freePort };

/** A running (or stopped, restartable) Orthanc. */
export interface OrthancServer {
  port: number;
  /** REST root, e.g. http://127.0.0.1:PORT */
  rest: string;
  /** DICOMweb root, e.g. http://127.0.0.1:PORT/dicom-web */
  dicomweb: string;
  user?: string;
  password?: string;
  /** GET a REST path (with the credentials) and parse JSON. */
  get<T = unknown>(path: string): Promise<T>;
  stop(): Promise<void>;
  /** Start again with the same configuration and storage (same port). */
  start(): Promise<void>;
  /** Stop and remove its folder. */
  dispose(): Promise<void>;
}

/** Start Orthanc with a private configuration; `auth` turns on HTTP basic authentication. */
export async function startOrthanc(opts: { auth?: { user: string; password: string } } = {}): Promise<OrthancServer> {
  const dir = mkdtempSync(join(tmpdir(), "sb-orthanc-"));
  const port = await freePort();
  mkdirSync(join(dir, "db"));
  const config = {
    Name: "scanbridge-test",
    HttpPort: port,
    DicomServerEnabled: false,
    StorageDirectory: join(dir, "db"),
    IndexDirectory: join(dir, "db"),
    RemoteAccessAllowed: false,
    AuthenticationEnabled: Boolean(opts.auth),
    ...(opts.auth ? { RegisteredUsers: { [opts.auth.user]: opts.auth.password } } : {}),
    Plugins: [dicomwebPluginPath()],
    DicomWeb: { Enable: true, Root: "/dicom-web/", EnableWado: true, Ssl: false },
    HttpTimeout: 30,
    StableAge: 1,
  };
  const configPath = join(dir, "orthanc.json");
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  let child: ChildProcess | undefined;
  let log = "";
  const rest = `http://127.0.0.1:${port}`;
  const authHeader: Record<string, string> = opts.auth ? { Authorization: `Basic ${Buffer.from(`${opts.auth.user}:${opts.auth.password}`).toString("base64")}` } : {};
  const get = async <T>(path: string): Promise<T> => {
    const r = await fetch(`${rest}${path}`, { headers: authHeader });
    if (!r.ok) throw new Error(`Orthanc GET ${path}: HTTP ${r.status}`);
    return (await r.json()) as T;
  };
  const start = async () => {
    child = spawn(ORTHANC, [configPath], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (d) => (log += d));
    child.stderr!.on("data", (d) => (log += d));
    const t0 = Date.now();
    while (true) {
      if (child.exitCode !== null) throw new Error(`Orthanc exited (${child.exitCode}):\n${log.slice(-4000)}`);
      try {
        await get("/system");
        return;
      } catch {
        if (Date.now() - t0 > 30_000) throw new Error(`Orthanc did not start in 30 s:\n${log.slice(-4000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((res) => {
      c.once("exit", () => res());
      c.kill("SIGTERM");
      setTimeout(() => c.kill("SIGKILL"), 10_000).unref();
    });
  };
  await start();
  return {
    port,
    rest,
    dicomweb: `${rest}/dicom-web`,
    user: opts.auth?.user,
    password: opts.auth?.password,
    get,
    stop,
    start,
    dispose: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
