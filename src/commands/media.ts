import { resolve } from "node:path";
import { UsageError } from "../errors.js";
import type { MakeMediaResult } from "../media/make.js";
import type { WatchDeps } from "../ingest/watcher.js";
import type { Medium } from "../media/profile.js";
import { formatBytes } from "../ui/format.js";
import { VERSION } from "../version.js";
import type { OptionsOf } from "../config/options.js";
import type { mediaBuildOptions, MediaCommandOptions, watchMediaOptions } from "./media.command.js";
import type { CommandContext, CommandOutput } from "./types.js";
import { limitsFromOptions } from "./verify.js";

/** Human lines of a media result (no PHI: counts, profile, paths the user gave). */
export function mediaLines(r: MakeMediaResult): string[] {
  const f = r.fileSet;
  const lines = [
    f.reportsOnly
      ? `File-set ${f.fileSetId}: no DICOM images in this delivery, reports only (${f.reports} report(s))`
      : `File-set ${f.fileSetId}: ${f.patients} patient(s), ${f.studies} study(ies), ${f.series} series, ${f.instances} images, ${f.reports} report(s), ${formatBytes(f.bytes)}`,
    `DICOMDIR profile ${f.profile}; previews for ${f.thumbnails.made} of ${f.series} series${f.thumbnails.failed ? ` (${f.thumbnails.failed} could not be decoded, said so on the page)` : ""}`,
  ];
  for (const [ts, n] of Object.entries(f.outsideProfile)) lines.push(`  kept as received, outside the profile: ${n} file(s) in ${ts}`);
  if (f.replacedDicomdirs) lines.push(`  the sender's DICOMDIR (${f.replacedDicomdirs}) replaced by a new one`);
  if (r.folder) lines.push(`Written to ${r.folder}`);
  if (r.iso) lines.push(`ISO image ${r.iso.path} (${formatBytes(r.iso.bytes)}, ISO 9660 level ${r.iso.level}, volume ${f.fileSetId})`);
  return lines;
}

/** The resolved medium options shared by media and watch --media. */
export function mediumFrom(o: Partial<OptionsOf<typeof mediaBuildOptions>>, usb: boolean): { medium: Medium; maxSize?: number } {
  const medium: Medium = usb ? "usb" : (o.medium ?? "dvd");
  return { medium, ...(o.maxSize !== undefined ? { maxSize: o.maxSize } : {}) };
}

/** Run `scanbridge media <delivery>`. */
export async function runMediaCommand(ctx: CommandContext<MediaCommandOptions>): Promise<CommandOutput> {
  const o = ctx.options;
  const abs = (v: string | undefined) => (v ? resolve(ctx.cwd, v) : undefined);
  const out = abs(o.out);
  const usb = abs(o.usb);
  const iso = abs(o.iso);
  if (out && usb) throw new UsageError("MEDIA_TWO_TARGETS", "Give either --out or --usb, not both");
  if (!out && !usb && !iso) throw new UsageError("MEDIA_NO_OUTPUT", "Nothing to write: give --out DIR, --usb DIR or --iso FILE", { hint: 'Example: scanbridge media "ready/Name" --out media/Name --iso media/Name.iso' });
  if (usb && o.medium !== undefined && o.medium !== "usb" && o.medium !== "dvd") throw new UsageError("MEDIA_MEDIUM_CONFLICT", "--usb writes a USB file-set; --medium cd does not apply");
  const [{ makeMedia }, { requireXorriso }] = await Promise.all([import("../media/make.js"), import("../media/iso.js")]);
  const xorriso = iso ? await requireXorriso(ctx.env) : undefined;
  const r = await makeMedia({
    input: resolve(ctx.cwd, ctx.args[0]!),
    out,
    usb,
    iso,
    xorriso,
    ...mediumFrom(o, usb !== undefined),
    fileSetId: o.filesetId,
    allowUnsealed: o.allowUnsealed,
    limits: limitsFromOptions(o),
    toolVersion: VERSION,
    signal: ctx.signal,
    emit: ctx.reporter.emit.bind(ctx.reporter),
  });
  const data: Record<string, unknown> = { ...r.fileSet, folder: r.folder, iso: r.iso, packageSha256: r.packageSha256, sealed: r.sealed };
  delete data.path;
  return { data, human: mediaLines(r) };
}

/**
 * The watcher's media hooks: the specialist's page (index.html) in every delivery before it is filed, and with
 * --media a file-set (and --media-iso an ISO) per filed delivery, audited. xorriso is checked before watching starts.
 */
export async function watchMediaHooks(ctx: CommandContext<OptionsOf<typeof watchMediaOptions>>): Promise<Pick<WatchDeps, "beforeFiling" | "afterFiling">> {
  const o = ctx.options;
  const dir = o.media ? resolve(ctx.cwd, o.media) : undefined;
  if (!dir && o.mediaIso) throw new UsageError("MEDIA_ISO_WITHOUT_MEDIA", "--media-iso needs --media <dir>");
  // The file-set writer and xorriso's check are loaded only with --media: the page alone does not need them.
  const xorriso = dir && o.mediaIso ? await (await import("../media/iso.js")).requireXorriso(ctx.env) : undefined;
  const medium: Medium = o.mediaMedium;
  // The page's code (DICOM headers, previews) loads while the watch opens its state folder and takes the first package.
  const pages = import("../media/ready-page.js");
  pages.catch(() => {}); // awaited where it is used
  return {
    beforeFiling: async (root, pkg) => {
      const { writeReadyPage } = await pages;
      const page = await writeReadyPage(root, { packageSha256: pkg.sha256, sealed: pkg.sealed, toolVersion: VERSION, signal: ctx.signal });
      return { instances: page.instances };
    },
    ...(dir
      ? { afterFiling: async (readyPath: string, pkg: { id: string; sha256: string }) => (await pages).makeDeliveryMedia(readyPath, pkg, { dir, iso: xorriso !== undefined, xorriso, medium, toolVersion: VERSION }, ctx.signal) }
      : {}),
  };
}
