// The study list: search form, server-side sort and paging through /api/studies (limit,
// sort, and the cursors each page carries), so a page costs the same with a hundred studies
// or a hundred thousand, however deep. Offsets remain for the QIDO-RS fallback.

import { searchStudies } from "./catalog.js";
import { clear, h, message } from "./dom.js";
import { formatDate, joined, personName, value } from "./dicom.js";

const PAGE_SIZES = [25, 50, 100, 200];
const MODALITIES = ["", "CT", "MR", "CR", "DX", "US", "PT", "NM", "XA", "RF", "MG", "OT", "SC", "SR", "SEG", "RTSTRUCT"];
const FIELDS = ["text", "name", "id", "accession", "from", "to", "modality", "description"];

/** A free-text search: a prefix search unless the user typed a wildcard. */
function prefixed(text) {
  const trimmed = text.trim();
  if (!trimmed) return "";
  return /[*?]/.test(trimmed) ? trimmed : `${trimmed}*`;
}

function contains(text) {
  const trimmed = text.trim();
  if (!trimmed) return "";
  return /[*?]/.test(trimmed) ? trimmed : `*${trimmed}*`;
}

function dateRange(from, to) {
  const a = from.replaceAll("-", "");
  const b = to.replaceAll("-", "");
  if (!a && !b) return "";
  if (a && a === b) return a;
  return `${a}-${b}`;
}

/** The /api/studies query for the list state held in the URL. */
export function studyQuery(state) {
  return {
    PatientName: prefixed(state.name || ""),
    PatientID: (state.id || "").trim(),
    AccessionNumber: (state.accession || "").trim(),
    StudyDate: dateRange(state.from || "", state.to || ""),
    ModalitiesInStudy: state.modality || "",
    StudyDescription: contains(state.description || ""),
    q: (state.text || "").trim(),
    sort: state.sort || "-StudyDate",
    limit: state.limit || 50,
    ...(state.cursor ? { cursor: state.cursor } : { offset: state.offset || 0 }),
  };
}

export async function studiesPage(main, { params, navigate }) {
  const state = Object.fromEntries(params.entries());
  state.limit = Number.parseInt(state.limit, 10) || 50;
  state.offset = Number.parseInt(state.offset, 10) || 0;
  state.sort = state.sort || "-StudyDate";
  document.title = "Studies · openpacs";

  const go = (changes) => {
    const next = { ...state, ...changes };
    const search = new URLSearchParams();
    for (const [key, val] of Object.entries(next)) if (val !== "" && val !== undefined && val !== null) search.set(key, val);
    navigate(`/studies?${search}`);
  };

  const inputs = {
    text: h("input", { id: "q-text", type: "search", placeholder: "a name, a word of a description, a protocol…", value: state.text || "" }),
    name: h("input", { id: "q-name", placeholder: "DOE* or doe", value: state.name || "" }),
    id: h("input", { id: "q-id", placeholder: "exact, or with *", value: state.id || "" }),
    accession: h("input", { id: "q-accession", value: state.accession || "" }),
    from: h("input", { id: "q-from", type: "date", value: formatDate(state.from || "") }),
    to: h("input", { id: "q-to", type: "date", value: formatDate(state.to || "") }),
    modality: h(
      "select",
      { id: "q-modality" },
      MODALITIES.map((m) => h("option", { value: m, selected: m === (state.modality || "") }, m || "Any")),
    ),
    description: h("input", { id: "q-description", value: state.description || "" }),
  };
  const form = h(
    "form",
    {
      class: "search",
      role: "search",
      onsubmit: (event) => {
        event.preventDefault();
        const changes = { offset: 0, cursor: "" };
        for (const key of FIELDS) changes[key] = inputs[key].value.trim();
        go(changes);
      },
    },
    h("label", { for: "q-text", class: "wide" }, "Anything", inputs.text),
    h("label", { for: "q-name" }, "Patient name", inputs.name),
    h("label", { for: "q-id" }, "Patient ID", inputs.id),
    h("label", { for: "q-accession" }, "Accession", inputs.accession),
    h("label", { for: "q-from" }, "Date from", inputs.from),
    h("label", { for: "q-to" }, "Date to", inputs.to),
    h("label", { for: "q-modality" }, "Modality", inputs.modality),
    h("label", { for: "q-description" }, "Description", inputs.description),
    h(
      "div",
      { class: "search-actions" },
      h("button", { class: "primary", type: "submit", "data-testid": "search" }, "Search"),
      h(
        "button",
        {
          class: "secondary",
          type: "button",
          onclick: () => go(Object.fromEntries([...FIELDS.map((key) => [key, ""]), ["offset", 0], ["cursor", ""]])),
        },
        "Clear",
      ),
    ),
  );

  const results = h("section", { class: "results", "aria-label": "Studies" }, h("p", { class: "muted" }, "Loading…"));
  main.append(h("div", { class: "page" }, h("h1", { class: "visually-hidden" }, "Studies"), form, results));

  let answer;
  const started = performance.now();
  try {
    answer = await searchStudies(studyQuery(state));
  } catch (error) {
    clear(results).append(message(`Search failed: ${error.message}`, "error"));
    return;
  }
  const elapsed = Math.round(performance.now() - started);
  const items = answer.items || [];
  const total = Number.isFinite(answer.total) ? answer.total : items.length;

  const sortHeader = (label, key) => {
    const ascending = state.sort === key;
    const descending = state.sort === `-${key}`;
    const next = ascending ? `-${key}` : key; // first click ascending, second descending
    return h(
      "th",
      { scope: "col", "aria-sort": ascending ? "ascending" : descending ? "descending" : "none" },
      h(
        "button",
        { class: "sort", type: "button", "data-testid": `sort-${key}`, onclick: () => go({ sort: next, offset: 0, cursor: "" }) },
        label,
        h("span", { class: "sort-mark", "aria-hidden": "true" }, ascending ? " ▲" : descending ? " ▼" : ""),
      ),
    );
  };

  const open = (uid) => navigate(`/studies/${encodeURIComponent(uid)}`);
  const rows = items.map((item) => {
    const uid = value(item, "StudyInstanceUID");
    return h(
      "tr",
      {
        tabindex: "0",
        class: "clickable",
        dataset: { uid },
        onclick: () => open(uid),
        onkeydown: (event) => {
          if (event.key === "Enter") open(uid);
        },
      },
      h("td", { class: "name" }, personName(value(item, "PatientName"))),
      h("td", {}, value(item, "PatientID", "")),
      h("td", { class: "nowrap" }, formatDate(value(item, "StudyDate", ""))),
      h("td", {}, value(item, "StudyDescription", "")),
      h("td", {}, joined(item, "ModalitiesInStudy", "/")),
      h("td", {}, value(item, "AccessionNumber", "")),
      h("td", { class: "number" }, value(item, "NumberOfStudyRelatedSeries", "")),
      h("td", { class: "number" }, value(item, "NumberOfStudyRelatedInstances", "")),
    );
  });

  const last = Math.max(0, Math.floor((total - 1) / state.limit) * state.limit);
  // The REST API answers cursors (null at either end); QIDO-RS answers none, so offsets.
  const cursors = "next" in answer;
  const start = cursors ? answer.offset || 0 : state.offset;
  const atStart = cursors ? !answer.previous : state.offset <= 0;
  const atEnd = cursors ? !answer.next : state.offset + state.limit >= total;
  const pageTo = {
    first: () => go({ offset: 0, cursor: "" }),
    previous: () => go(cursors ? { cursor: answer.previous, offset: 0 } : { offset: Math.max(0, state.offset - state.limit) }),
    next: () => go(cursors ? { cursor: answer.next, offset: 0 } : { offset: state.offset + state.limit }),
    last: () => go(cursors ? { cursor: answer.last, offset: 0 } : { offset: last }),
  };
  const pager = h(
    "div",
    { class: "pager" },
    h(
      "span",
      { "data-testid": "result-count" },
      total ? `${start + 1}–${start + items.length} of ${total.toLocaleString()}${answer.more ? "+" : ""}` : "No studies match",
      h("span", { class: "muted" }, ` · ${elapsed} ms`),
    ),
    h(
      "div",
      { class: "pager-buttons" },
      h("button", { class: "secondary", disabled: atStart, onclick: pageTo.first, "aria-label": "First page" }, "«"),
      h("button", { class: "secondary", disabled: atStart, onclick: pageTo.previous, "data-testid": "previous-page" }, "‹ Previous"),
      h("button", { class: "secondary", disabled: atEnd, onclick: pageTo.next, "data-testid": "next-page" }, "Next ›"),
      h("button", { class: "secondary", disabled: atEnd, onclick: pageTo.last, "aria-label": "Last page" }, "»"),
      h(
        "label",
        {},
        "Per page ",
        h(
          "select",
          { onchange: (event) => go({ limit: event.target.value, offset: 0, cursor: "" }) },
          PAGE_SIZES.map((size) => h("option", { value: size, selected: size === state.limit }, size)),
        ),
      ),
    ),
  );

  clear(results).append(
    pager,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "grid studies", "data-testid": "study-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            sortHeader("Patient name", "PatientName"),
            h("th", { scope: "col" }, "Patient ID"),
            sortHeader("Study date", "StudyDate"),
            h("th", { scope: "col" }, "Description"),
            h("th", { scope: "col" }, "Modality"),
            h("th", { scope: "col" }, "Accession"),
            h("th", { scope: "col", class: "number" }, "Series"),
            h("th", { scope: "col", class: "number" }, "Images"),
          ),
        ),
        h("tbody", {}, rows),
      ),
    ),
  );
}
