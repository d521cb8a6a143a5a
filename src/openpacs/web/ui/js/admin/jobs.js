// Jobs (admin): sends to and moves from remote AEs, newest first, with their state, progress,
// the server running each one and what happened to it (a job taken over from a server that
// stopped says so; a failed one says why). GET /api/jobs; refreshed while any job runs.

import { api, query } from "../api.js";
import { clear, h, message } from "../dom.js";

const PAGE = 100;
const REFRESH_MS = 2000;
const ACTIVE = new Set(["pending", "running"]);

function what(job) {
  const remote = job.params?.remote ?? "?";
  return job.kind === "move" ? `move from ${remote}` : `send to ${remote}`;
}

function target(job) {
  const level = job.params?.level ?? "study";
  return `${level} ${job.params?.uid ?? ""}`;
}

function progress(job) {
  const p = job.progress || {};
  const counted = p.total ? `${p.done}/${p.total}` : `${p.done ?? 0}`;
  return p.failed ? `${counted}, ${p.failed} failed` : counted;
}

export async function jobsPage(main, { params, navigate }) {
  document.title = "Jobs · openpacs";
  const offset = Number.parseInt(params.get("offset"), 10) || 0;
  const results = h("section", { "aria-label": "Jobs" }, h("p", { class: "muted" }, "Loading…"));
  main.append(h("div", { class: "page" }, h("h1", {}, "Jobs"), results));
  let timer = null;

  async function refresh() {
    let answer;
    try {
      answer = await api(`/api/jobs${query({ limit: PAGE, offset })}`);
    } catch (error) {
      clear(results).append(message(`Could not list the jobs: ${error.message}`, "error"));
      return;
    }
    const items = answer.items || [];
    const total = Number.isFinite(answer.total) ? answer.total : items.length;
    clear(results).append(
      h(
        "div",
        { class: "pager" },
        h("span", { "data-testid": "jobs-count" }, total ? `${offset + 1}–${offset + items.length} of ${total.toLocaleString()}` : "No jobs yet"),
        h(
          "div",
          { class: "pager-buttons" },
          h("button", { class: "secondary", disabled: offset <= 0, onclick: () => navigate(`/admin/jobs?offset=${Math.max(0, offset - PAGE)}`) }, "‹ Newer"),
          h("button", { class: "secondary", disabled: offset + PAGE >= total, onclick: () => navigate(`/admin/jobs?offset=${offset + PAGE}`) }, "Older ›"),
        ),
      ),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "grid jobs", "data-testid": "jobs-table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Created (UTC)", "Job", "What", "State", "Progress", "Server", "Reason / notes", "By"].map((label) => h("th", { scope: "col" }, label)),
            ),
          ),
          h(
            "tbody",
            {},
            items.map((job) => {
              const reason = [job.error, job.note].filter(Boolean).join(" · ");
              return h(
                "tr",
                { dataset: { job: job.id, state: job.state }, class: job.state === "failed" ? "job-failed" : "" },
                h(
                  "td",
                  { class: "nowrap", title: job.created_at },
                  String(job.created_at || "")
                    .slice(0, 19)
                    .replace("T", " "),
                ),
                h("td", { class: "nowrap" }, what(job)),
                h("td", { class: "clip uid", title: target(job) }, target(job)),
                h(
                  "td",
                  { class: `nowrap state ${job.state === "failed" ? "error" : job.state === "succeeded" ? "ok" : ""}`, "data-testid": "job-state" },
                  job.state,
                ),
                h("td", { class: "nowrap number" }, progress(job)),
                h("td", { class: "nowrap", title: "host:process of the server running it" }, job.server || "—"),
                h("td", { class: "clip", title: reason, "data-testid": "job-reason" }, reason),
                h("td", { class: "nowrap" }, job.created_by || ""),
              );
            }),
          ),
        ),
      ),
    );
    if (items.some((job) => ACTIVE.has(job.state))) timer = setTimeout(refresh, REFRESH_MS);
  }

  await refresh();
  return () => clearTimeout(timer);
}
