import { describe, expect, it } from "vitest";
import { detectViewer } from "../../src/dicom/viewer.js";

const DATA = ["DICOMDIR", "DICOM/ST000001/SE000001/IM000001", "DICOM/ST000001/SE000001/IM000002", "REPORTS/report.pdf", "README.TXT"];

describe("detectViewer", () => {
  it.each([
    ["RadiAnt", ["autorun.inf", "RadiAnt/RadiAntViewer.exe", "RadiAnt/RadiAntViewer.dll", "RadiAnt/lang/de.lng"]],
    ["OsiriX Lite", ["OsiriX Lite.app/Contents/MacOS/OsiriX Lite", "OsiriX Lite.app/Contents/Info.plist"]],
    ["Horos", ["Horos.app/Contents/MacOS/Horos"]],
    ["eFilm", ["eFilmLite/eFilmLt.exe", "eFilmLite/Help/index.htm", "autorun.inf"]],
    ["GE Centricity", ["Centricity/CDViewer.exe", "Centricity/bin/x.dll"]],
    ["Carestream Vue Motion", ["VueMotion/index.html", "VueMotion/lib/app.js", "VueMotion/launch.exe"]],
    ["Sectra", ["Sectra/UniView.exe", "Sectra/data/app.dat"]],
    ["Philips DICOM Viewer", ["Philips DICOM Viewer/DicomViewer.exe", "Philips DICOM Viewer/res/a.png"]],
    ["Agfa IMPAX", ["IMPAX/impax.exe", "IMPAX/dlls/x.dll"]],
    ["Fujifilm Synapse", ["SynapseViewer/Synapse.exe", "SynapseViewer/help.chm"]],
    ["Weasis", ["weasis/weasis-launcher.jar", "weasis/jre/bin/java.exe", "weasis/conf/config.properties"]],
    ["MicroDicom", ["MicroDicom/mDicom.exe", "MicroDicom/mDicom.chm"]],
  ] as const)("recognises %s and leaves the images and reports in", (name, viewerFiles) => {
    const r = detectViewer([...DATA, ...viewerFiles]);
    expect(r.found).toBe(true);
    expect(r.name).toBe(name);
    expect(new Set(r.viewerPaths)).toEqual(new Set(viewerFiles));
  });

  it("recognises an unknown viewer by its folder and programs, with Windows separators", () => {
    const viewer = ["Viewer\\viewer.exe", "Viewer\\Qt5Core.dll", "Viewer\\platforms\\qwindows.dll", "Viewer\\translations\\fr.qm", "setup.exe", "autorun.inf", "jre\\lib\\rt.jar", "jre\\bin\\java.exe"];
    const r = detectViewer([...DATA, ...viewer]);
    expect(r.found).toBe(true);
    expect(r.name).toBeUndefined();
    expect(new Set(r.viewerPaths)).toEqual(new Set(viewer));
  });

  it("treats a top-level folder holding programs as viewer software, including its data files", () => {
    const r = detectViewer([...DATA, "Program/start.exe", "Program/skins/dark.xml"]);
    expect(new Set(r.viewerPaths)).toEqual(new Set(["Program/start.exe", "Program/skins/dark.xml"]));
  });

  it("finds nothing in a clean export", () => {
    expect(detectViewer(DATA)).toEqual({ found: false, viewerPaths: [] });
    expect(detectViewer(["IM00001", "IM00002", "scan.pdf"])).toEqual({ found: false, viewerPaths: [] });
  });

  it("never counts DICOMDIR, .dcm files, reports or the DICOM folder as viewer software", () => {
    const r = detectViewer(["RadiAnt/RadiAntViewer.exe", "RadiAnt/sample.dcm", "report.pdf", "REPORTS/letter.pdf", "DICOM/viewer.exe", "dicomdir"]);
    expect(r.viewerPaths).toEqual(["RadiAnt/RadiAntViewer.exe"]);
  });

  it("counts the viewer's own manual and settings (Viewer/manual.pdf, Viewer/viewer.ini) as viewer software (issue 12)", () => {
    const r = detectViewer(["Viewer/viewer.exe", "Viewer/manual.pdf", "Viewer/viewer.ini", "RadiAnt/help.pdf", "RadiAnt/RadiAntViewer.exe", "report.pdf"]);
    expect(r.viewerPaths.sort()).toEqual(["RadiAnt/RadiAntViewer.exe", "RadiAnt/help.pdf", "Viewer/manual.pdf", "Viewer/viewer.exe", "Viewer/viewer.ini"]);
  });
});
