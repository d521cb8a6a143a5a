// The study page: patient and study details, the series as thumbnails, and the actions
// (viewer, ZIP download, send to a remote AE with progress, delete for administrators), and
// the study's labels (administrators add and remove them: labels decide what users whose
// visibility rules name labels see).

import { api } from "./api.js";
import { confirmDialog, h, message } from "./dom.js";
import { formatDate, formatTime, joined, number, personName, value, values } from "./dicom.js";
import { can } from "./session.js";
import { Thumbnails } from "./thumbnails.js";
import { studyWithSeries } from "./catalog.js";

export async function studyPage(main, { args, navigate }) {
  const [studyUid] = args;
  const thumbnails = new Thumbnails();
  let polling = null;
  const cleanup = () => {
    thumbnails.close();
    if (polling) clearTimeout(polling);
  };

  let study;
  let series;
  try {
    ({ study, series } = await studyWithSeries(studyUid));
  } catch (error) {
    main.append(
      h(
        "div",
        { class: "page" },
        message(error.status === 404 ? "This study is not in the archive." : `Could not load the study: ${error.message}`, "error"),
        h("a", { href: "#/studies" }, "Back to the list"),
      ),
    );
    return cleanup;
  }
  const patient = personName(value(study, "PatientName"));
  document.title = `${patient || "Study"} · openpacs`;

  const details = [
    ["Patient", patient],
    ["Patient ID", value(study, "PatientID", "")],
    ["Birth date", formatDate(value(study, "PatientBirthDate", ""))],
    ["Sex", value(study, "PatientSex", "")],
    ["Study date", `${formatDate(value(study, "StudyDate", ""))} ${formatTime(value(study, "StudyTime", ""))}`.trim()],
    ["Description", value(study, "StudyDescription", "")],
    ["Accession", value(study, "AccessionNumber", "")],
    ["Study ID", value(study, "StudyID", "")],
    ["Referring physician", personName(value(study, "ReferringPhysicianName"))],
    ["Modalities", joined(study, "ModalitiesInStudy", "/") || [...new Set(series.map((s) => value(s, "Modality")).filter(Boolean))].join("/")],
    [
      "Series / images",
      `${series.length} / ${value(
        study,
        "NumberOfStudyRelatedInstances",
        series.reduce((sum, s) => sum + number(s, "NumberOfSeriesRelatedInstances", 0), 0),
      )}`,
    ],
    ["Study UID", studyUid],
  ];

  const viewerLink = (seriesUid) => `#/viewer/${encodeURIComponent(studyUid)}${seriesUid ? `/${encodeURIComponent(seriesUid)}` : ""}`;
  const actionStatus = h("div", { class: "action-status", "aria-live": "polite" });

  const actions = h(
    "div",
    { class: "actions" },
    h(
      "a",
      { class: "button primary", href: viewerLink(series.length ? value(series[0], "SeriesInstanceUID") : ""), "data-testid": "open-viewer" },
      "Open in viewer",
    ),
    h(
      "a",
      { class: "button secondary", href: `/api/studies/${encodeURIComponent(studyUid)}/archive`, download: `${studyUid}.zip`, "data-testid": "download" },
      "Download ZIP",
    ),
  );

  const sendBox = h("div", { class: "send" });
  (can("admin") ? api("/api/remotes", { quiet401: true }) : Promise.resolve([]))
    .then((answer) => {
      const remotes = Array.isArray(answer) ? answer : answer.items || [];
      if (!remotes.length) return;
      const select = h(
        "select",
        { id: "send-target", "aria-label": "Remote AE" },
        remotes.map((remote) => h("option", { value: remote.aet }, `${remote.aet} (${remote.host}:${remote.port})`)),
      );
      const progress = h("progress", { max: 1, value: 0, hidden: true, "data-testid": "send-progress" });
      const button = h(
        "button",
        {
          class: "secondary",
          "data-testid": "send",
          onclick: async () => {
            button.disabled = true;
            progress.hidden = false;
            progress.removeAttribute("value");
            actionStatus.replaceChildren(message(`Sending to ${select.value}…`));
            try {
              const job = await api(`/api/remotes/${encodeURIComponent(select.value)}/store`, { method: "POST", json: { level: "study", uid: studyUid } });
              await followJob(job, progress, actionStatus, select.value);
            } catch (error) {
              actionStatus.replaceChildren(message(`Send failed: ${error.message}`, "error"));
            } finally {
              button.disabled = false;
            }
          },
        },
        "Send",
      );
      sendBox.append(h("label", { for: "send-target" }, "Send to "), select, button, progress);
    })
    .catch(() => {});

  async function followJob(job, progress, status, target) {
    let current = job;
    while (current && (current.state === "pending" || current.state === "running")) {
      show(current);
      await new Promise((resolve) => {
        polling = setTimeout(resolve, 500);
      });
      current = await api(`/api/jobs/${encodeURIComponent(current.id)}`);
    }
    show(current);
    const p = current.progress || {};
    if (current.state === "succeeded")
      status.replaceChildren(message(`Sent ${p.done ?? ""} image(s) to ${target}${p.failed ? `, ${p.failed} failed` : ""}.`, p.failed ? "error" : "ok"));
    else status.replaceChildren(message(`Send to ${target} failed: ${current.error || current.state}`, "error"));

    function show(state) {
      const prog = state.progress || {};
      if (prog.total) {
        progress.max = prog.total;
        progress.value = prog.done + (prog.failed || 0);
        status.replaceChildren(message(`Sending to ${target}: ${prog.done}/${prog.total}${prog.failed ? `, ${prog.failed} failed` : ""}`));
      }
    }
  }

  if (can("delete")) {
    actions.append(
      h(
        "button",
        {
          class: "danger",
          "data-testid": "delete-study",
          onclick: async () => {
            const ok = await confirmDialog({
              title: "Delete this study?",
              body: `${patient} · ${formatDate(value(study, "StudyDate", ""))} · ${value(study, "StudyDescription", "")}: all ${series.length} series and their images are removed from the archive. This cannot be undone.`,
              confirm: "Delete study",
              danger: true,
            });
            if (!ok) return;
            try {
              await api(`/api/studies/${encodeURIComponent(studyUid)}`, { method: "DELETE" });
              navigate("/studies");
            } catch (error) {
              actionStatus.replaceChildren(message(`Delete failed: ${error.message}`, "error"));
            }
          },
        },
        "Delete study",
      ),
    );
  }

  const jobs = [];
  const cards = series.map((item) => {
    const seriesUid = value(item, "SeriesInstanceUID");
    const img = h("img", { alt: "", width: 128, height: 128, loading: "lazy" });
    jobs.push({ img, studyUid, seriesUid });
    const count = value(item, "NumberOfSeriesRelatedInstances", "?");
    return h(
      "li",
      {},
      h(
        "a",
        { class: "series-card", href: viewerLink(seriesUid), dataset: { uid: seriesUid } },
        h("div", { class: "thumb" }, img),
        h("div", { class: "series-title" }, value(item, "SeriesDescription", "") || "(no description)"),
        h(
          "div",
          { class: "muted" },
          `#${value(item, "SeriesNumber", "–")} · ${values(item, "Modality").join("/") || "?"} · ${count} image${count === 1 ? "" : "s"}`,
        ),
      ),
    );
  });

  const labels = labelEditor(studyUid);

  main.append(
    h(
      "div",
      { class: "page study-page" },
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/studies" }, "Studies"), " › ", patient),
      h("h1", {}, patient || "(no name)", h("span", { class: "muted" }, ` ${value(study, "StudyDescription", "")}`)),
      h(
        "div",
        { class: "study-top" },
        h("dl", { class: "details" }, [...details.map(([label, text]) => [h("dt", {}, label), h("dd", {}, text || "–")]), h("dt", {}, "Labels"), labels]),
        h("div", { class: "study-actions" }, actions, sendBox, actionStatus),
      ),
      h("h2", {}, `Series (${series.length})`),
      series.length ? h("ul", { class: "series-grid", "data-testid": "series-grid" }, cards) : message("This study has no series."),
    ),
  );
  thumbnails.load(jobs);
  return cleanup;
}

const LABEL = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/;

function labelEditor(studyUid) {
  const box = h("dd", { class: "labels", "data-testid": "labels" });
  const base = `/api/studies/${encodeURIComponent(studyUid)}/labels`;
  const status = h("span", { class: "muted", "aria-live": "polite" });
  const show = (labels) => {
    const chips = labels.map((label) =>
      h(
        "span",
        { class: "label-chip", "data-testid": "label" },
        label,
        can("admin")
          ? h(
              "button",
              { type: "button", class: "secondary", title: `Remove ${label}`, "aria-label": `Remove label ${label}`, onclick: () => change("DELETE", label) },
              "×",
            )
          : null,
      ),
    );
    const parts = [...chips];
    if (!labels.length) parts.push(h("span", { class: "muted" }, "–"));
    if (can("admin")) {
      const input = h("input", { "aria-label": "New label", placeholder: "add a label", maxlength: 64, "data-testid": "new-label" });
      const form = h(
        "form",
        {
          class: "label-form",
          onsubmit: (event) => {
            event.preventDefault();
            const label = input.value.trim();
            if (!LABEL.test(label)) {
              status.textContent = "Letters, digits, space, dot, underscore and hyphen only.";
              return;
            }
            change("PUT", label);
          },
        },
        input,
        h("button", { type: "submit", class: "secondary" }, "Add"),
      );
      parts.push(form);
    }
    parts.push(status);
    box.replaceChildren(...parts);
  };
  const change = async (method, label) => {
    try {
      const answer = await api(`${base}/${encodeURIComponent(label)}`, { method });
      show(answer.labels);
    } catch (error) {
      status.textContent = `Could not change the labels: ${error.message}`;
    }
  };
  api(base)
    .then((answer) => show(answer.labels))
    .catch((error) => {
      box.replaceChildren(h("span", { class: "muted" }, `Labels unavailable: ${error.message}`));
    });
  return box;
}
