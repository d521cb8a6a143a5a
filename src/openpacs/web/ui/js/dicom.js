// Reading values: the REST API's flat {Keyword: value} objects and the DICOM JSON model
// (PS3.18 F.2) of QIDO-RS and /metadata, plus display formats for dates and person names.

export const TAGS = {
  PatientName: "00100010",
  PatientID: "00100020",
  PatientBirthDate: "00100030",
  PatientSex: "00100040",
  StudyInstanceUID: "0020000D",
  StudyDate: "00080020",
  StudyTime: "00080030",
  StudyDescription: "00081030",
  AccessionNumber: "00080050",
  ReferringPhysicianName: "00080090",
  StudyID: "00200010",
  ModalitiesInStudy: "00080061",
  NumberOfStudyRelatedSeries: "00201206",
  NumberOfStudyRelatedInstances: "00201208",
  SeriesInstanceUID: "0020000E",
  SeriesNumber: "00200011",
  SeriesDescription: "0008103E",
  Modality: "00080060",
  NumberOfSeriesRelatedInstances: "00201209",
  SOPInstanceUID: "00080018",
  SOPClassUID: "00080016",
  InstanceNumber: "00200013",
  Rows: "00280010",
  Columns: "00280011",
  BitsAllocated: "00280100",
  BitsStored: "00280101",
  HighBit: "00280102",
  PixelRepresentation: "00280103",
  SamplesPerPixel: "00280002",
  PhotometricInterpretation: "00280004",
  PlanarConfiguration: "00280006",
  NumberOfFrames: "00280008",
  RescaleSlope: "00281053",
  RescaleIntercept: "00281052",
  WindowCenter: "00281050",
  WindowWidth: "00281051",
  PixelSpacing: "00280030",
  SliceLocation: "00201041",
  SliceThickness: "00180050",
  ImagePositionPatient: "00200032",
  FrameTime: "00181063",
  CineRate: "00180040",
  RecommendedDisplayFrameRate: "00082144",
  SharedFunctionalGroupsSequence: "52009229",
  PerFrameFunctionalGroupsSequence: "52009230",
  PixelValueTransformationSequence: "00289145",
  FrameVOILUTSequence: "00289132",
};

/** All values of `keyword` in a DICOM JSON dataset (or a flat object), as an array. */
export function values(dataset, keyword) {
  if (!dataset) return [];
  if (keyword in dataset) {
    const value = dataset[keyword];
    if (value === null || value === undefined || value === "") return [];
    return Array.isArray(value) ? value : [value];
  }
  const element = dataset[TAGS[keyword] || keyword];
  if (!element || typeof element !== "object" || !Array.isArray(element.Value)) return [];
  return element.Value;
}

/** The first value of `keyword`, or `fallback`. */
export function value(dataset, keyword, fallback = undefined) {
  const all = values(dataset, keyword);
  return all.length ? all[0] : fallback;
}

export function number(dataset, keyword, fallback = undefined) {
  const raw = value(dataset, keyword);
  const parsed = typeof raw === "number" ? raw : Number.parseFloat(raw);
  return Number.isFinite(parsed) ? parsed : fallback;
}

/** A person name for display: "DOE^JANE" -> "DOE, JANE"; DICOM JSON {Alphabetic} accepted. */
export function personName(raw) {
  if (!raw) return "";
  const text = typeof raw === "object" ? raw.Alphabetic || raw.Ideographic || raw.Phonetic || "" : String(raw);
  const [family = "", given = "", middle = "", prefix = "", suffix = ""] = text.split("=")[0].split("^");
  const rest = [prefix, given, middle].filter(Boolean).join(" ");
  return [family, rest].filter(Boolean).join(", ") + (suffix ? ` ${suffix}` : "");
}

/** YYYYMMDD -> YYYY-MM-DD (anything else unchanged). */
export function formatDate(raw) {
  const text = raw ? String(raw) : "";
  return /^\d{8}$/.test(text) ? `${text.slice(0, 4)}-${text.slice(4, 6)}-${text.slice(6)}` : text;
}

/** HHMMSS.frac -> HH:MM:SS. */
export function formatTime(raw) {
  const text = raw ? String(raw) : "";
  const match = /^(\d{2})(\d{2})?(\d{2})?/.exec(text);
  if (!match) return text;
  return [match[1], match[2], match[3]].filter(Boolean).join(":");
}

/** A multi-valued field for display. */
export function joined(dataset, keyword, separator = ", ") {
  return values(dataset, keyword)
    .map((item) => (typeof item === "object" && item !== null ? personName(item) : String(item)))
    .join(separator);
}

/** One value as text for the tag panel (PS3.18 F.2.2 value representations). */
export function elementText(element) {
  if (!element) return "";
  if (element.InlineBinary !== undefined) return `(binary, ${Math.floor((element.InlineBinary.length * 3) / 4)} bytes)`;
  if (element.BulkDataURI !== undefined) return "(bulk data)";
  if (!Array.isArray(element.Value)) return "";
  if (element.vr === "SQ") return `${element.Value.length} item${element.Value.length === 1 ? "" : "s"}`;
  return element.Value.map((item) => {
    if (item === null) return "";
    if (element.vr === "PN") return typeof item === "object" ? item.Alphabetic || "" : String(item);
    if (element.vr === "DA") return formatDate(item);
    return String(item);
  }).join("\\");
}
