// Series thumbnails fetched with the UI's header (an <img src> would not send it) and shown
// through object URLs, a few at a time; the URLs are revoked with the page.

import { pool, request } from "./api.js";

export function thumbnailUrl(studyUid, seriesUid) {
  return `/dicom-web/studies/${encodeURIComponent(studyUid)}/series/${encodeURIComponent(seriesUid)}/thumbnail`;
}

export class Thumbnails {
  constructor() {
    this.urls = [];
    this.closed = false;
  }

  /** jobs: [{img, studyUid, seriesUid}] */
  load(jobs) {
    return pool(jobs, 3, async ({ img, studyUid, seriesUid }) => {
      if (this.closed) return;
      try {
        const response = await request(thumbnailUrl(studyUid, seriesUid), { headers: { Accept: "image/jpeg, image/png, image/*" } });
        const blob = await response.blob();
        if (this.closed) return;
        const url = URL.createObjectURL(blob);
        this.urls.push(url);
        img.src = url;
        img.classList.add("loaded");
      } catch {
        img.classList.add("failed");
        img.alt = "no preview";
      }
    });
  }

  close() {
    this.closed = true;
    for (const url of this.urls) URL.revokeObjectURL(url);
    this.urls = [];
  }
}
