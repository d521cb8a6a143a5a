// Finding studies and their series: the REST API (/api/studies: total count, server-side
// sort), or QIDO-RS (PS3.18 10.6) when the REST routes are not there, e.g. behind a
// DICOMweb-only proxy. Items come back as flat objects or DICOM JSON; dicom.js reads both.

import { ApiError, api, query } from "./api.js";
import { number, personName, value } from "./dicom.js";

const DICOM_JSON = { Accept: "application/dicom+json" };
const STUDY_FIELDS = ["StudyDescription", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances", "ModalitiesInStudy", "PatientBirthDate", "PatientSex"];
const SERIES_FIELDS = ["SeriesDescription", "NumberOfSeriesRelatedInstances"];

function qidoParams(params, fields) {
  const search = new URLSearchParams(query(params).slice(1));
  for (const field of fields) search.append("includefield", field);
  return `?${search}`;
}

function sortKey(item, key) {
  return key === "PatientName" ? personName(value(item, "PatientName")).toUpperCase() : String(value(item, key, ""));
}

/** {total, offset, items, next, previous, last, more}: one page of studies. The REST API
 * pages by cursor (`next`...); `more` is set when only QIDO-RS answered, which pages by offset. */
export async function searchStudies(params) {
  try {
    return await api(`/api/studies${query(params)}`);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
  }
  const { sort, limit, offset, cursor, q, ...keys } = params;
  if (q) throw new ApiError(400, "Searching for anything needs the REST API, which this server does not offer.");
  const items = await api(`/dicom-web/studies${qidoParams({ ...keys, limit: Number(limit) + 1, offset }, STUDY_FIELDS)}`, { headers: DICOM_JSON });
  const more = items.length > limit;
  const page = items.slice(0, limit);
  const descending = String(sort).startsWith("-");
  const key = String(sort).replace(/^-/, "");
  page.sort((a, b) => sortKey(a, key).localeCompare(sortKey(b, key)) * (descending ? -1 : 1));
  return { total: Number(offset) + page.length + (more ? 1 : 0), items: page, more };
}

/** The study's main attributes and its series, sorted by series number. */
export async function studyWithSeries(studyUid) {
  const uid = encodeURIComponent(studyUid);
  let study = null;
  try {
    study = await api(`/api/studies/${uid}`);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
  }
  if (!study) {
    const found = await api(`/dicom-web/studies${qidoParams({ StudyInstanceUID: studyUid }, [...STUDY_FIELDS, "ReferringPhysicianName", "StudyID"])}`, {
      headers: DICOM_JSON,
    });
    if (!found.length) throw new ApiError(404, "This study is not in the archive.");
    study = found[0];
  }
  let series = study.series || study.Series;
  if (!Array.isArray(series)) {
    series = await api(`/dicom-web/studies/${uid}/series${qidoParams({}, SERIES_FIELDS)}`, { headers: DICOM_JSON });
  }
  return { study, series: sortSeries(series) };
}

export function sortSeries(series) {
  return [...series].sort(
    (a, b) =>
      number(a, "SeriesNumber", 1e9) - number(b, "SeriesNumber", 1e9) ||
      String(value(a, "SeriesInstanceUID")).localeCompare(String(value(b, "SeriesInstanceUID"))),
  );
}
