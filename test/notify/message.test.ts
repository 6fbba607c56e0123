import { describe, expect, it } from "vitest";
import { destinationFolderOf, factsFromReceipt, renderMessage } from "../../src/notify/message.js";
import { makeReceipt, PATIENT, SHA } from "./receipt-fixture.js";

const sender = { role: "clinic" as const, name: "Clínica Sol", email: "admin@clinica.example", phone: "+34 600 000 000" };

describe("notification message", () => {
  it("has a searchable subject with the package ID, file count and size, and no patient name", () => {
    const m = renderMessage(factsFromReceipt(makeReceipt(), { includePatientName: false, sender }));
    expect(m.subject).toBe("[scanbridge] New imaging package 3f2a9c1b0d4e (412 files, 1.2 GB)");
  });

  it("carries checksum, size, counts, modalities, dates, folder and sender, but no PHI by default", () => {
    const m = renderMessage(factsFromReceipt(makeReceipt(), { includePatientName: false, sender }));
    for (const part of [m.text, m.html]) {
      expect(part).toContain(SHA);
      expect(part).toContain("3f2a9c1b0d4e");
      expect(part).toContain("1234567890 bytes");
      expect(part).toContain("409 dicom");
      expect(part).toContain("2024-01-31");
      expect(part).toContain("2024-02-02");
      expect(part).toContain("MR/SR");
      expect(part).toContain("sftp://upload.example.org:22/incoming");
      expect(part).toContain("+34 600 000 000");
      expect(part).not.toContain("José");
      expect(part).not.toContain("Álvarez");
      // The SFTP user name and the free-text study description are left out too.
      expect(part).not.toContain("jose@");
      expect(part).not.toContain("follow-up");
    }
    expect(m.html).toContain("Clínica Sol");
    expect(JSON.stringify(m.facts)).not.toContain("Álvarez");
  });

  it("names the patient and the package file only with includePatientName, escaped in HTML", () => {
    const r = makeReceipt({ package: "<i>Ann & Bo<i>.zip", remotePath: "/in/x.zip" });
    const m = renderMessage(factsFromReceipt(r, { includePatientName: true, sender: {} }));
    expect(m.subject).toContain("<i>Ann & Bo<i>");
    expect(m.text).toContain("<i>Ann & Bo<i>.zip");
    expect(m.html).toContain("&lt;i&gt;Ann &amp; Bo&lt;");
    expect(m.html).not.toContain("<i>Ann");
    const named = renderMessage(factsFromReceipt(makeReceipt(), { includePatientName: true, sender: {} }));
    expect(named.subject).toContain(PATIENT);
    expect(named.text).toContain(`${PATIENT}.zip`);
  });

  it("never puts the patient-named file in the destination folder", () => {
    expect(destinationFolderOf(makeReceipt())).toBe("sftp://upload.example.org:22/incoming");
    expect(destinationFolderOf({ destination: "file:///srv/outbox", remotePath: `/srv/outbox/${PATIENT}.zip`, package: `${PATIENT}.zip` })).toBe("file:///srv/outbox");
    expect(destinationFolderOf({ destination: "/srv/out", remotePath: `/srv/out/${PATIENT}.zip`, package: `${PATIENT}.zip` })).toBe("/srv/out");
  });
});
