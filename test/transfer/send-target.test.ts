import { describe, expect, it } from "vitest";
import { parseDestination, parseSendTarget } from "../../src/transfer/destination.js";

describe("parseSendTarget / parseDestination (issue 12)", () => {
  it("reads mailto: with one or several addresses", () => {
    expect(parseSendTarget("mailto:intl@hospital.example", "/w")).toEqual({ kind: "email", recipients: ["intl@hospital.example"] });
    expect(parseSendTarget("MAILTO:a@x.example, B@y.example", "/w")).toEqual({ kind: "email", recipients: ["a@x.example", "b@y.example"] });
  });

  it("refuses mailto: without an address, with header fields, or with a malformed address", () => {
    for (const bad of ["mailto:", "mailto:a@x.example?subject=hi", "mailto:nobody", "mailto:a@x.example,,b"]) {
      expect(() => parseSendTarget(bad, "/w"), bad).toThrow(expect.objectContaining({ exitCode: 2 }));
    }
  });

  it("never takes a scheme or an e-mail address for a folder name", () => {
    for (const bad of ["ftp://h/in", "https://h/x", "mailt:a@x.example", "mailto:a@x.example", "smb:share", "intl@hospital.example"]) {
      expect(() => parseDestination(bad, "/w"), bad).toThrow(expect.objectContaining({ code: "BAD_DESTINATION", exitCode: 2 }));
    }
  });

  it("still reads folders, Windows drives and file:// URLs", () => {
    expect(parseDestination("./out", "/w")).toEqual({ kind: "local", folder: "/w/out" });
    expect(parseDestination("./a:b", "/w")).toEqual({ kind: "local", folder: "/w/a:b" });
    expect(parseDestination("C:\\scans", "/w").kind).toBe("local");
    expect(parseDestination("file:///srv/out", "/w")).toEqual({ kind: "local", folder: "/srv/out" });
  });

  it("reads SFTP paths as OpenSSH's sftp does: relative to the login folder, // or absolute, /~/ the home", () => {
    expect(parseDestination("sftp://u@h/incoming", "/w")).toMatchObject({ kind: "sftp", folder: "incoming" });
    expect(parseDestination("sftp://u@h/~/incoming", "/w")).toMatchObject({ folder: "incoming" });
    expect(parseDestination("sftp://u@h//srv/in", "/w")).toMatchObject({ folder: "/srv/in" });
    expect(parseDestination("sftp://u@h", "/w")).toMatchObject({ folder: "." });
    expect(parseDestination("sftp://u@h/~", "/w")).toMatchObject({ folder: "." });
  });
});
