// The audit trail (admin): who did what to which data, newest first, filtered and paged on
// the server (GET /api/audit: actor, action, outcome, channel, patient_id, study_uid, since, until).

import { api, query } from "../api.js";
import { clear, h, message } from "../dom.js";

const PAGE = 100;
const ACTIONS = ["", "login", "query", "view", "download", "store", "delete", "send", "move"];
const OUTCOMES = ["", "success", "failure", "denied", "cancelled"];
const CHANNELS = ["", "http", "dimse"];
const COLUMNS = [
  ["at", "Time (UTC)"],
  ["channel", "Channel"],
  ["actor", "User / AE"],
  ["peer", "From"],
  ["action", "Action"],
  ["outcome", "Outcome"],
  ["patient_id", "Patient ID"],
  ["study_uid", "Study"],
  ["resource", "Resource"],
  ["detail", "Detail"],
];
const FILTERS = ["actor", "action", "outcome", "channel", "patient_id", "study_uid", "since", "until"];

function choice(id, options, selected) {
  return h(
    "select",
    { id },
    options.map((option) => h("option", { value: option, selected: option === selected }, option || "any")),
  );
}

/** A "to" date includes its whole day. */
function untilParam(date) {
  return date ? `${date}T23:59:59.999` : "";
}

export async function auditPage(main, { params, navigate }) {
  document.title = "Audit trail · openpacs";
  const state = Object.fromEntries(params.entries());
  const offset = Number.parseInt(state.offset, 10) || 0;
  const inputs = {
    actor: h("input", { id: "a-user", value: state.actor || "", placeholder: "user name or AE title" }),
    action: choice("a-action", ACTIONS, state.action || ""),
    outcome: choice("a-outcome", OUTCOMES, state.outcome || ""),
    channel: choice("a-channel", CHANNELS, state.channel || ""),
    patient_id: h("input", { id: "a-patient", value: state.patient_id || "" }),
    study_uid: h("input", { id: "a-study", value: state.study_uid || "", pattern: "[0-9.]+", title: "a study instance UID" }),
    since: h("input", { id: "a-since", type: "date", value: state.since || "" }),
    until: h("input", { id: "a-until", type: "date", value: state.until || "" }),
  };
  const go = (changes) => {
    const next = new URLSearchParams();
    for (const [key, val] of Object.entries({ ...state, ...changes })) if (val !== "" && val !== undefined) next.set(key, val);
    navigate(`/admin/audit?${next}`);
  };
  const form = h(
    "form",
    {
      class: "search",
      onsubmit: (event) => {
        event.preventDefault();
        go({ ...Object.fromEntries(FILTERS.map((key) => [key, inputs[key].value.trim()])), offset: 0 });
      },
    },
    h("label", { for: "a-user" }, "User / AE", inputs.actor),
    h("label", { for: "a-action" }, "Action", inputs.action),
    h("label", { for: "a-outcome" }, "Outcome", inputs.outcome),
    h("label", { for: "a-channel" }, "Channel", inputs.channel),
    h("label", { for: "a-patient" }, "Patient ID", inputs.patient_id),
    h("label", { for: "a-study" }, "Study UID", inputs.study_uid),
    h("label", { for: "a-since" }, "From", inputs.since),
    h("label", { for: "a-until" }, "To", inputs.until),
    h("div", { class: "search-actions" }, h("button", { class: "primary", type: "submit" }, "Filter")),
  );
  const results = h("section", { "aria-label": "Audit events" }, h("p", { class: "muted" }, "Loading…"));
  main.append(h("div", { class: "page" }, h("h1", {}, "Audit trail"), form, results));

  let answer;
  try {
    const filters = Object.fromEntries(FILTERS.map((key) => [key, state[key]]));
    filters.until = untilParam(state.until);
    answer = await api(`/api/audit${query({ ...filters, limit: PAGE, offset })}`);
  } catch (error) {
    clear(results).append(message(`Could not read the audit trail: ${error.message}`, "error"));
    return;
  }
  const items = Array.isArray(answer) ? answer : answer.items || [];
  const total = Number.isFinite(answer.total) ? answer.total : items.length;
  clear(results).append(
    h(
      "div",
      { class: "pager" },
      h("span", { "data-testid": "audit-count" }, total ? `${offset + 1}–${offset + items.length} of ${total.toLocaleString()}` : "No events match"),
      h(
        "div",
        { class: "pager-buttons" },
        h("button", { class: "secondary", disabled: offset <= 0, onclick: () => go({ offset: Math.max(0, offset - PAGE) }) }, "‹ Newer"),
        h("button", { class: "secondary", disabled: offset + PAGE >= total, onclick: () => go({ offset: offset + PAGE }) }, "Older ›"),
      ),
    ),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "grid audit", "data-testid": "audit-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            COLUMNS.map(([, label]) => h("th", { scope: "col" }, label)),
          ),
        ),
        h(
          "tbody",
          {},
          items.map((item) =>
            h(
              "tr",
              { class: item.outcome && item.outcome !== "success" ? "audit-problem" : "" },
              COLUMNS.map(([key]) => {
                const text = item[key] === null || item[key] === undefined ? "" : String(item[key]);
                if (key === "at") return h("td", { class: "nowrap", title: text }, text.slice(0, 19).replace("T", " "));
                const long = key === "study_uid" || key === "resource" || key === "detail";
                return h("td", { class: long ? "clip" : "nowrap", title: long ? text : false }, text);
              }),
            ),
          ),
        ),
      ),
    ),
  );
}
