// Upload: files or folders dropped anywhere (or picked) go to STOW-RS (PS3.18 10.5), one
// request per file so each file gets its own result, a few at a time, with a progress bar.

import { pool, reasonOf } from "./api.js";
import { clear, formatBytes, h } from "./dom.js";
import { can } from "./session.js";

const STOW_URL = "/dicom-web/studies";
const PARALLEL = 3;
let panel = null;
let pending = null;

/**
 * Files of a drop, walking dropped folders (webkitGetAsEntry: Chromium and Firefox). The drop's
 * items are read before the first await: the browser empties them once the event is over.
 */
async function droppedFiles(dataTransfer) {
  const plain = [...dataTransfer.files].map((file) => ({ file, path: file.name }));
  const entries = [...dataTransfer.items].map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null));
  if (!entries.some((entry) => entry?.isDirectory)) return plain;
  const files = [];
  const walk = async (entry, prefix) => {
    if (!entry) return;
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      files.push({ file, path: prefix + file.name });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
      }
    }
  };
  try {
    for (const entry of entries) await walk(entry, "");
  } catch (error) {
    console.error("could not read a dropped folder", error);
  }
  return files.length ? files : plain;
}

/** Why STOW-RS refused or warned about an instance (FailureReason / WarningReason, PS3.18 10.5.3). */
function stowOutcome(body) {
  const failed = body?.["00081198"]?.Value || [];
  if (failed.length) {
    const reason = failed[0]?.["00081197"]?.Value?.[0];
    return { ok: false, text: reason !== undefined ? `refused (reason 0x${Number(reason).toString(16).toUpperCase()})` : "refused" };
  }
  const stored = body?.["00081199"]?.Value || [];
  const warning = stored[0]?.["00081196"]?.Value?.[0];
  if (warning !== undefined) return { ok: true, text: `stored with warning 0x${Number(warning).toString(16).toUpperCase()}` };
  return { ok: true, text: "stored" };
}

function multipartBody(file) {
  const boundary = `openpacs-${crypto.getRandomValues(new Uint32Array(2)).join("")}`;
  const head = `--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`;
  const tail = `\r\n--${boundary}--\r\n`;
  return { boundary, body: new Blob([head, file, tail]) };
}

async function storeFile(file) {
  const { boundary, body } = multipartBody(file);
  const response = await fetch(STOW_URL, {
    method: "POST",
    credentials: "same-origin",
    headers: {
      "X-Requested-With": "XMLHttpRequest",
      Accept: "application/dicom+json",
      "Content-Type": `multipart/related; type="application/dicom"; boundary=${boundary}`,
    },
    body,
  });
  if (response.status === 401) return { ok: false, text: "not logged in" };
  let parsed = null;
  const text = await response.clone().text();
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (parsed && (parsed["00081198"] || parsed["00081199"])) {
    const outcome = stowOutcome(parsed);
    if (!response.ok && outcome.ok) return { ok: false, text: `HTTP ${response.status}` };
    if (!response.ok || !outcome.ok) {
      const detail = parsed?.detail;
      return { ok: false, text: detail ? `${outcome.text}: ${detail}` : outcome.text };
    }
    return outcome;
  }
  if (!response.ok) return { ok: false, text: await reasonOf(response) };
  return { ok: true, text: "stored" };
}

function uploadPanel() {
  const progress = h("progress", { max: 1, value: 0, "data-testid": "upload-progress" });
  const summary = h("p", { class: "upload-summary", role: "status", "data-testid": "upload-summary" });
  const list = h("ol", { class: "upload-list", "data-testid": "upload-list" });
  return { element: h("section", { class: "upload-panel", "aria-label": "Upload results" }, progress, summary, list), progress, summary, list };
}

/** Sends `files` ([{file, path}]) and reports into `view` (an uploadPanel()). */
export async function upload(files, view, { onDone } = {}) {
  const total = files.reduce((sum, entry) => sum + entry.file.size, 0);
  let bytesDone = 0;
  let stored = 0;
  let failed = 0;
  view.progress.max = Math.max(1, total);
  view.progress.value = 0;
  clear(view.list);
  const rows = files.map((entry) => {
    const result = h("span", { class: "upload-result muted" }, "waiting");
    const row = h("li", {}, h("span", { class: "upload-name" }, entry.path), h("span", { class: "muted" }, ` ${formatBytes(entry.file.size)} `), result);
    view.list.append(row);
    return { row, result };
  });
  const show = () => {
    view.summary.textContent = `${stored + failed} / ${files.length} files · ${stored} stored${failed ? ` · ${failed} failed` : ""}`;
  };
  show();
  await pool(files, PARALLEL, async (entry, at) => {
    rows[at].result.textContent = "sending…";
    let outcome;
    try {
      outcome = await storeFile(entry.file);
    } catch (error) {
      outcome = { ok: false, text: error.message };
    }
    bytesDone += entry.file.size;
    view.progress.value = bytesDone;
    if (outcome.ok) stored += 1;
    else failed += 1;
    rows[at].row.classList.add(outcome.ok ? "ok" : "failed");
    rows[at].result.className = `upload-result ${outcome.ok ? "ok" : "error"}`;
    rows[at].result.textContent = outcome.ok ? `✓ ${outcome.text}` : `✗ ${outcome.text}`;
    show();
  });
  view.summary.textContent += " · done";
  if (onDone) onDone({ stored, failed });
}

export async function uploadPage(main) {
  document.title = "Upload · openpacs";
  const view = uploadPanel();
  const pick = h("input", { type: "file", multiple: true, id: "upload-files", "data-testid": "upload-input", class: "visually-hidden" });
  const pickFolder = h("input", { type: "file", multiple: true, webkitdirectory: true, id: "upload-folder", class: "visually-hidden" });
  const start = (input) => {
    const files = [...input.files].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
    input.value = "";
    if (files.length) upload(files, view, { onDone: resultLink });
  };
  const after = h("div");
  const resultLink = ({ stored }) => {
    after.replaceChildren(stored && can("read") ? h("a", { href: "#/studies", class: "button secondary" }, "See the studies") : "");
  };
  pick.addEventListener("change", () => start(pick));
  pickFolder.addEventListener("change", () => start(pickFolder));
  main.append(
    h(
      "div",
      { class: "page" },
      h("h1", {}, "Upload DICOM files"),
      h(
        "div",
        { class: "dropzone", "data-testid": "dropzone" },
        h("p", {}, "Drop DICOM files or folders anywhere on this page, or"),
        h(
          "div",
          { class: "actions" },
          h(
            "label",
            { for: "upload-files", class: "button primary", tabindex: "0", onkeydown: (e) => (e.key === "Enter" || e.key === " ") && pick.click() },
            "Choose files…",
          ),
          h(
            "label",
            { for: "upload-folder", class: "button secondary", tabindex: "0", onkeydown: (e) => (e.key === "Enter" || e.key === " ") && pickFolder.click() },
            "Choose a folder…",
          ),
        ),
        pick,
        pickFolder,
      ),
      view.element,
      after,
    ),
  );
  panel = { view, after: resultLink };
  if (pending) {
    upload(pending, view, { onDone: resultLink });
    pending = null;
  }
  return () => {
    panel = null;
  };
}

/** Drag and drop onto any page: the files are uploaded in a floating panel (or the upload page). */
export function installDropTarget({ navigate }) {
  let depth = 0;
  const veil = h("div", { class: "drop-veil", hidden: true }, h("p", {}, "Drop to upload to openpacs"));
  document.body.append(veil);
  const hasFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
  window.addEventListener("dragenter", (event) => {
    if (!hasFiles(event) || !can("store")) return;
    depth += 1;
    veil.hidden = false;
  });
  window.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) veil.hidden = true;
  });
  window.addEventListener("dragover", (event) => {
    if (hasFiles(event)) event.preventDefault();
  });
  window.addEventListener("drop", async (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth = 0;
    veil.hidden = true;
    if (!can("store")) return;
    const files = await droppedFiles(event.dataTransfer);
    if (!files.length) return;
    if (panel) upload(files, panel.view, { onDone: panel.after });
    else {
      pending = files; // the upload page takes them when it opens
      navigate("/upload");
    }
  });
}
