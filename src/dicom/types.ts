/** A DICOM Person Name with its three component groups (alphabetic = ideographic = phonetic), decoded to Unicode. */
export interface PersonName {
  alphabetic: string;
  ideographic?: string;
  phonetic?: string;
}

/** What scanbridge reads from one DICOM file's header (never the pixel data). */
export interface DicomHeader {
  isDicomdir: boolean;
  transferSyntaxUid?: string;
  sopClassUid?: string;
  sopInstanceUid?: string;
  specificCharacterSet?: string[];
  patientName?: PersonName;
  patientId?: string;
  issuerOfPatientId?: string;
  patientBirthDate?: string;
  patientSex?: string;
  studyInstanceUid?: string;
  studyDate?: string;
  /** (0008,0030), and Study ID (0020,0010): keys of a DICOMDIR STUDY record. */
  studyTime?: string;
  studyId?: string;
  studyDescription?: string;
  accessionNumber?: string;
  seriesInstanceUid?: string;
  seriesDescription?: string;
  seriesNumber?: string;
  modality?: string;
  bodyPartExamined?: string;
  instanceNumber?: string;
  institutionName?: string;
  referringPhysicianName?: PersonName;
  /** With tolerateTruncation: the file ends early, inside this part (e.g. "pixel data"); the header is complete. */
  truncated?: string;
  /** How many bytes of the file were read to get this header. */
  bytesRead: number;
}

/** One patient found in a package. */
export interface PatientSummary {
  name?: PersonName;
  id?: string;
  /** Every Patient ID of this person when there are several (scans from more than one hospital). */
  ids?: string[];
  birthDate?: string;
  sex?: string;
  /** Number of DICOM files of this patient. */
  files: number;
}

/** One study found in a package. */
export interface StudySummary {
  studyInstanceUid: string;
  date?: string;
  description?: string;
  modalities: string[];
  series: number;
  images: number;
}

/** Patients and studies of a package, as put in manifest.json `dicom`. */
export interface PackageDicomSummary {
  patients: PatientSummary[];
  studies: StudySummary[];
}
