// One series as a stack of frames: the order (instance number, then frame), and a loader that
// fetches each frame once through WADO-RS in Explicit VR Little Endian, nearest first, while
// the user looks at the current one.

import { request } from "../api.js";
import { number, value } from "../dicom.js";
import { responseParts } from "./multipart.js";
import { decodeFrame, imageInfo } from "./pixels.js";

export const FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1';
const CONCURRENCY = 6; // what a browser opens to one origin over HTTP/1.1
const MEMORY_BUDGET = 768 * 1024 * 1024;

function isImage(meta) {
  return number(meta, "Rows", 0) > 0 && number(meta, "Columns", 0) > 0;
}

/** The series metadata (PS3.18 10.4.1.1.2) as frames in display order. */
export function stackItems(metadata) {
  const images = metadata.filter(isImage);
  images.sort(
    (a, b) =>
      number(a, "InstanceNumber", 1e9) - number(b, "InstanceNumber", 1e9) ||
      String(value(a, "SOPInstanceUID")).localeCompare(String(value(b, "SOPInstanceUID"))),
  );
  const items = [];
  for (const meta of images) {
    const frames = Math.max(1, number(meta, "NumberOfFrames", 1));
    for (let frame = 1; frame <= frames; frame += 1) {
      items.push({ meta, frame, frames, sopUid: value(meta, "SOPInstanceUID"), info: imageInfo(meta, frame) });
    }
  }
  return items;
}

export class FrameLoader {
  constructor(studyUid, seriesUid, items, { onLoaded } = {}) {
    this.base = `/dicom-web/studies/${encodeURIComponent(studyUid)}/series/${encodeURIComponent(seriesUid)}/instances/`;
    this.items = items;
    this.cache = new Map();
    this.waiting = new Map();
    this.failed = new Map();
    this.inFlight = new Set();
    this.current = 0;
    this.active = 0;
    this.closed = false;
    this.onLoaded = onLoaded || (() => {});
    this.controller = new AbortController();
    const first = items[0]?.info;
    const frameBytes = first ? first.rows * first.columns * first.samples * Math.max(1, first.bitsAllocated / 8) : 1;
    this.window = Math.max(8, Math.floor(MEMORY_BUDGET / frameBytes / 2)); // frames kept each side
  }

  get loadedCount() {
    return this.cache.size;
  }

  /** Resolves to the decoded frame at `index` (fetched now if not yet there). */
  get(index) {
    if (this.cache.has(index)) return Promise.resolve(this.cache.get(index));
    if (this.failed.has(index)) return Promise.reject(this.failed.get(index));
    return new Promise((resolve, reject) => {
      const list = this.waiting.get(index) || [];
      list.push({ resolve, reject });
      this.waiting.set(index, list);
      this.pump();
    });
  }

  peek(index) {
    return this.cache.get(index);
  }

  /** The user moved to `index`: fetch around it, nearest first, a little ahead rather than behind. */
  focus(index) {
    this.current = index;
    this.evict();
    this.pump();
  }

  nextWanted() {
    if (this.waiting.size) {
      let best = null;
      for (const index of this.waiting.keys()) {
        if (this.inFlight.has(index)) continue;
        if (best === null || Math.abs(index - this.current) < Math.abs(best - this.current)) best = index;
      }
      if (best !== null) return best;
    }
    for (let distance = 0; distance <= this.window; distance += 1) {
      for (const index of [this.current + distance, this.current - distance]) {
        if (index < 0 || index >= this.items.length) continue;
        if (this.cache.has(index) || this.inFlight.has(index) || this.failed.has(index)) continue;
        return index;
      }
    }
    return null;
  }

  pump() {
    while (!this.closed && this.active < CONCURRENCY) {
      const index = this.nextWanted();
      if (index === null) return;
      this.active += 1;
      this.inFlight.add(index);
      this.fetchFrame(index)
        .then((frame) => {
          this.cache.set(index, frame);
          this.settle(index, (waiter) => waiter.resolve(frame));
          this.onLoaded(index);
        })
        .catch((error) => {
          if (this.closed) return;
          this.failed.set(index, error);
          this.settle(index, (waiter) => waiter.reject(error));
          this.onLoaded(index);
        })
        .finally(() => {
          this.active -= 1;
          this.inFlight.delete(index);
          this.pump();
        });
    }
  }

  settle(index, call) {
    const list = this.waiting.get(index) || [];
    this.waiting.delete(index);
    list.forEach(call);
  }

  evict() {
    for (const index of this.cache.keys()) {
      if (Math.abs(index - this.current) > this.window) this.cache.delete(index);
    }
  }

  async fetchFrame(index) {
    const item = this.items[index];
    const url = `${this.base}${encodeURIComponent(item.sopUid)}/frames/${item.frame}`;
    const response = await request(url, { headers: { Accept: FRAME_ACCEPT }, signal: this.controller.signal });
    const parts = await responseParts(response);
    if (!parts.length) throw new Error("the server sent no frame");
    return decodeFrame(item.info, parts[0].body);
  }

  close() {
    this.closed = true;
    this.controller.abort();
    this.cache.clear();
    this.waiting.clear();
  }
}
