// The audit trail (admin): who did what to which data, filtered and paged on the server.

import { api, query } from "../api.js";
import { clear, h, message } from "../dom.js";

const PAGE = 100;

function cell(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export async function auditPage(main, { params, navigate }) {
  document.title = "Audit trail · openpacs";
  const state = Object.fromEntries(params.entries());
  const offset = Number.parseInt(state.offset, 10) || 0;
  const inputs = {
    user: h("input", { id: "a-user", value: state.user || "" }),
    action: h("input", { id: "a-action", value: state.action || "", placeholder: "e.g. login, read, store, delete" }),
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
        go({ ...Object.fromEntries(Object.entries(inputs).map(([key, input]) => [key, input.value.trim()])), offset: 0 });
      },
    },
    h("label", { for: "a-user" }, "User", inputs.user),
    h("label", { for: "a-action" }, "Action", inputs.action),
    h("label", { for: "a-since" }, "From", inputs.since),
    h("label", { for: "a-until" }, "To", inputs.until),
    h("div", { class: "search-actions" }, h("button", { class: "primary", type: "submit" }, "Filter")),
  );
  const results = h("section", { "aria-label": "Audit events" }, h("p", { class: "muted" }, "Loading…"));
  main.append(h("div", { class: "page" }, h("h1", {}, "Audit trail"), form, results));

  let answer;
  try {
    answer = await api(`/api/audit${query({ user: state.user, action: state.action, since: state.since, until: state.until, limit: PAGE, offset })}`);
  } catch (error) {
    clear(results).append(message(`Could not read the audit trail: ${error.message}`, "error"));
    return;
  }
  const items = Array.isArray(answer) ? answer : answer.items || [];
  const total = Number.isFinite(answer.total) ? answer.total : items.length;
  const columns = [...new Set(items.flatMap((item) => Object.keys(item)))].filter((key) => key !== "id");
  clear(results).append(
    h(
      "div",
      { class: "pager" },
      h("span", {}, total ? `${offset + 1}–${offset + items.length} of ${total.toLocaleString()}` : "No events match"),
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
        { class: "grid", "data-testid": "audit-table" },
        h("thead", {}, h("tr", {}, columns.map((key) => h("th", { scope: "col" }, key)))),
        h("tbody", {}, items.map((item) => h("tr", {}, columns.map((key) => h("td", {}, cell(item[key])))))),
      ),
    ),
  );
}
