// Jobs (admin): sends to and moves from remote AEs and imports, newest first, with their state,
// progress, the server running each one and what happened to it (a job taken over from a server
// that stopped says so; a failed one says why). GET /api/jobs; refreshed while any job runs.
// Imports start here: a server folder (below [archive] import_folders) or an s3:// prefix
// (POST /api/import), or a ZIP archive uploaded from this computer (POST /api/import/zip).

import { api, query } from "../api.js";
import { clear, field, h, message } from "../dom.js";

const PAGE = 100;
const REFRESH_MS = 2000;
const ACTIVE = new Set(["pending", "running"]);

function what(job) {
  if (job.kind === "import") return "import";
  const remote = job.params?.remote ?? "?";
  return job.kind === "move" ? `move from ${remote}` : `send to ${remote}`;
}

function target(job) {
  if (job.kind === "import") return job.params?.name ?? "";
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
  const status = h("div", { "data-testid": "import-status", role: "status" });
  const source = h("input", {
    type: "text",
    name: "source",
    placeholder: "/srv/intake/disk1 or s3://bucket/prefix",
    required: true,
    "data-testid": "import-source",
  });
  const upload = h("input", { type: "file", accept: ".zip,application/zip", "data-testid": "import-zip" });
  let timer = null;

  async function started(promise) {
    try {
      const job = await promise;
      clear(status).append(message(`Import started (job ${job.id.slice(0, 8)}).`, "ok"));
      clearTimeout(timer);
      await refresh();
    } catch (error) {
      clear(status).append(message(`Could not start the import: ${error.message}`, "error"));
    }
  }

  const form = h(
    "form",
    {
      class: "inline-form",
      "aria-label": "Import",
      onsubmit: (event) => {
        event.preventDefault();
        started(api("/api/import", { method: "POST", json: { source: source.value.trim() } }));
      },
    },
    field("Import a server folder or S3 prefix", source),
    h("button", { type: "submit", "data-testid": "import-start" }, "Import"),
    field("or upload a ZIP archive", upload),
  );
  upload.addEventListener("change", () => {
    const file = upload.files?.[0];
    if (!file) return;
    const path = `/api/import/zip${query({ name: file.name })}`;
    started(api(path, { method: "POST", body: file, headers: { "Content-Type": "application/zip" } }));
    upload.value = "";
  });
  main.append(h("div", { class: "page" }, h("h1", {}, "Jobs"), form, status, results));

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
