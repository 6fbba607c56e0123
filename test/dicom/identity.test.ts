import { describe, expect, it } from "vitest";
import { checkPatient, groupPatients, matchPatientName, matchPersonNames, type DicomEntry } from "../../src/dicom/identity.js";
import type { DicomHeader, PersonName } from "../../src/dicom/types.js";

const pn = (alphabetic: string, ideographic?: string, phonetic?: string): PersonName => {
  const n: PersonName = { alphabetic };
  if (ideographic !== undefined) n.ideographic = ideographic;
  if (phonetic !== undefined) n.phonetic = phonetic;
  return n;
};

const YAMADA = pn("Yamada^Tarou", "山田^太郎", "やまだ^たろう");
const ALVAREZ = pn("ÁLVAREZ NÚÑEZ^JOSÉ");

describe("matchPatientName accepts legitimate spellings", () => {
  it.each([
    ["José Álvarez Núñez", ALVAREZ],
    ["Jose Alvarez", ALVAREZ],
    ["alvarez nunez jose", ALVAREZ],
    ["ÁLVAREZ-NÚÑEZ, José", ALVAREZ],
    ["Jose Alvarez", pn("Alvarez^Jose")],
    ["José María Álvarez", pn("ALVAREZ^JOSE")],
    ["Tarou Yamada", YAMADA],
    ["YAMADA Tarou", YAMADA],
    ["山田太郎", YAMADA],
    ["山田 太郎", YAMADA],
    ["太郎 山田", YAMADA],
    ["やまだ たろう", YAMADA],
    ["ヤマダ タロウ", YAMADA],
    ["Hong Gildong", pn("Hong^Gildong", "洪^吉洞", "홍^길동")],
    ["홍길동", pn("Hong^Gildong", "洪^吉洞", "홍^길동")],
    ["Wang Xiaodong", pn("Wang^XiaoDong", "王^小东")],
    ["王小东", pn("Wang^XiaoDong", "王^小东")],
    ["Giorgos Papadopoulos", pn("Παπαδόπουλος^Γιώργος")],
    ["Ivanov Petr", pn("Иванов^Пётр")],
    ["Yamada Tarou", pn("", "山田^太郎", "やまだ^たろう")],
    ["Sean O'Brien", pn("OBRIEN^SEAN")],
    ["Sean OBrien", pn("O'BRIEN^SEAN")],
    ["Ronald McDonald", pn("MC DONALD^RONALD")],
    ["Jürgen Müller", pn("MÜLLER^JÜRGEN")],
    ["Juergen Mueller", pn("MÜLLER^JÜRGEN")],
    ["Jürgen Müller", pn("MUELLER^JUERGEN")],
    ["Łukasz Żółć", pn("ZOLC^LUKASZ")],
    ["Dr. Jane Doe", pn("Doe^Jane^^Dr")],
    ["Jane Doe", pn("DOE^JANE^MARIE")],
  ] as const)("%s ↔ %o", (given, name) => {
    expect(matchPatientName(given, name)).toBe(true);
  });
});

describe("matchPatientName rejects different people", () => {
  it.each([
    ["Maria Alvarez", pn("Alvarez^Jose")],
    ["Alvarez", pn("Alvarez^Jose")],
    ["Jose", pn("Alvarez^Jose")],
    ["Jose Alvarez", pn("Alvarez^Maria")],
    ["Jose Gonzalez", ALVAREZ],
    ["Hanako Yamada", YAMADA],
    ["山田花子", YAMADA],
    ["Maria Alvarez", pn("ALVAREZ")],
    ["John Smith", pn("SMITH^JANE")],
    ["", pn("Alvarez^Jose")],
    ["Jose Alvarez", pn("")],
    ["Jo Alvarez", pn("Alvarez^Jose")],
  ] as const)("%s ≠ %o", (given, name) => {
    expect(matchPatientName(given, name)).toBe(false);
  });
});

describe("matchPersonNames", () => {
  it("treats spellings of one person in two files as the same", () => {
    expect(matchPersonNames(pn("DOE^JOHN"), pn("Doe^John^^^"))).toBe(true);
    expect(matchPersonNames(pn("ALVAREZ NUNEZ^JOSE"), pn("ALVAREZ^JOSE"))).toBe(true);
    expect(matchPersonNames(pn("Yamada^Tarou"), YAMADA)).toBe(true);
  });
  it("tells two people apart", () => {
    expect(matchPersonNames(pn("DOE^JOHN"), pn("DOE^JANE"))).toBe(false);
  });
});

function entry(path: string, h: Partial<DicomHeader>): DicomEntry {
  return { path, header: { isDicomdir: false, bytesRead: 1, ...h } };
}

describe("groupPatients", () => {
  it("splits two patients", () => {
    const groups = groupPatients([
      entry("a/1", { patientId: "P1", patientName: pn("DOE^JOHN"), patientBirthDate: "19700101" }),
      entry("a/2", { patientId: "P1", patientName: pn("DOE^JOHN"), patientBirthDate: "19700101" }),
      entry("b/1", { patientId: "P2", patientName: pn("ROE^RICHARD"), patientBirthDate: "19800202" }),
    ]);
    expect(groups).toHaveLength(2);
    expect(groups[0]!.paths).toEqual(["a/1", "a/2"]);
    expect(groups[0]!.patient).toMatchObject({ id: "P1", files: 2, birthDate: "19700101" });
    expect(groups[1]!.paths).toEqual(["b/1"]);
  });

  it("splits the same name with different birth dates, and the same ID with different names", () => {
    expect(
      groupPatients([
        entry("1", { patientId: "P1", patientName: pn("DOE^JOHN"), patientBirthDate: "19700101" }),
        entry("2", { patientId: "P1", patientName: pn("DOE^JOHN"), patientBirthDate: "19710101" }),
      ]),
    ).toHaveLength(2);
    expect(
      groupPatients([
        entry("1", { patientId: "P1", patientName: pn("DOE^JOHN") }),
        entry("2", { patientId: "P1", patientName: pn("ROE^MARY") }),
      ]),
    ).toHaveLength(2);
  });

  it("does not split on a missing value or on spelling differences of one name", () => {
    const groups = groupPatients([
      entry("1", { patientId: "P1", patientName: pn("Álvarez^José"), patientBirthDate: "19800214" }),
      entry("2", { patientId: "P1", patientName: pn("ALVAREZ^JOSE") }),
      entry("3", { patientName: pn("ALVAREZ NUNEZ^JOSE"), patientBirthDate: "19800214" }),
      entry("4", {}),
      entry("DICOMDIR", { isDicomdir: true, patientId: "OTHER" }),
    ]);
    expect(groups).toHaveLength(1);
    expect(groups[0]!.paths).toEqual(["1", "2", "3", "4"]);
    expect(groups[0]!.patient.files).toBe(4);
  });
});

describe("checkPatient", () => {
  const one = [
    entry("1", { patientId: "P1", patientName: YAMADA, patientBirthDate: "19700101" }),
    entry("2", { patientId: "P1", patientName: pn("YAMADA^TAROU") }),
  ];
  it("accepts a matching name", () => {
    expect(checkPatient("Tarou Yamada", one)).toMatchObject({ ok: true });
    expect(checkPatient("山田太郎", one).ok).toBe(true);
  });
  it("refuses a different name", () => {
    expect(checkPatient("Hanako Yamada", one)).toMatchObject({ ok: false, reason: "name-mismatch" });
  });
  it("refuses a mix of patients even when the name matches one of them", () => {
    const mixed = [...one, entry("3", { patientId: "P9", patientName: pn("SUZUKI^ICHIRO") })];
    const r = checkPatient("Tarou Yamada", mixed);
    expect(r).toMatchObject({ ok: false, reason: "multiple-patients" });
    expect(r.groups).toHaveLength(2);
  });
  it("says when no name could be checked", () => {
    expect(checkPatient("Tarou Yamada", [entry("1", { patientId: "P1" })])).toEqual({
      ok: true,
      unverified: true,
      groups: [{ patient: { id: "P1", files: 1 }, paths: ["1"] }],
    });
    expect(checkPatient("Tarou Yamada", [])).toEqual({ ok: true, groups: [] });
  });
});
