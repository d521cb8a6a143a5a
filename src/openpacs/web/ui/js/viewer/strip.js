// The series strip: one button per series of the study (thumbnail, modality, number, count),
// the current one marked.

import { value } from "../dicom.js";
import { h } from "../dom.js";

export class SeriesStrip {
  constructor({ onOpen }) {
    this.onOpen = onOpen;
    this.element = h("ol", { class: "strip", "aria-label": "Series" });
  }

  /** Fills the strip from the study's series (DICOM JSON); returns the thumbnail jobs. */
  fill(studyUid, series) {
    const jobs = [];
    for (const item of series) {
      const uid = value(item, "SeriesInstanceUID");
      const img = h("img", { alt: "", width: 96, height: 96 });
      jobs.push({ img, studyUid, seriesUid: uid });
      const count = value(item, "NumberOfSeriesRelatedInstances", "");
      this.element.append(
        h(
          "li",
          { dataset: { uid } },
          h(
            "button",
            { class: "strip-item", title: value(item, "SeriesDescription", ""), onclick: () => this.onOpen(uid) },
            h("div", { class: "thumb" }, img),
            h("span", { class: "strip-label" }, `${value(item, "Modality", "")} #${value(item, "SeriesNumber", "–")}`),
            h("span", { class: "strip-label muted" }, `${count} img · ${value(item, "SeriesDescription", "")}`),
          ),
        ),
      );
    }
    return jobs;
  }

  /** The series UIDs in the strip's order. */
  get uids() {
    return [...this.element.children].map((entry) => entry.dataset.uid);
  }

  markCurrent(uid) {
    for (const entry of this.element.children) entry.classList.toggle("current", entry.dataset.uid === uid);
  }
}
