// What the viewer shows: the series, its frames in order, the current one, and the window
// policy. Pure: the page draws what this state says, so its rules are testable without a canvas.

import { defaultWindow } from "./pixels.js";

export class ViewerState {
  constructor(seriesUid = null) {
    this.seriesUid = seriesUid;
    this.items = [];
    this.index = 0;
    /** Bumped at each series change: a frame that arrives for an older series is dropped. */
    this.loadToken = 0;
    /** The window of the series' first shown image (the "default" when no frame is at hand). */
    this.baseWindow = null;
    /** Images without a stored window open each at its own value range, until the user windows. */
    this.autoWindow = false;
  }

  get current() {
    return this.items[this.index];
  }

  /** Starts a new series (nothing loaded yet); returns the token of this load. */
  beginSeries(uid) {
    this.loadToken += 1;
    this.seriesUid = uid;
    this.items = [];
    this.index = 0;
    this.baseWindow = null;
    this.autoWindow = false;
    return this.loadToken;
  }

  /** The series' frames arrived: the stored window decides whether images window themselves. */
  setItems(items) {
    this.items = items;
    this.index = 0;
    this.autoWindow = Boolean(items.length) && !items[0].info.window;
  }

  /** Makes `target` (clamped to the stack) the current image; returns its index, or null. */
  moveTo(target) {
    if (!this.items.length) return null;
    this.index = Math.min(this.items.length - 1, Math.max(0, Math.trunc(target)));
    return this.index;
  }

  /** The index one on from the current, back to the first after the last (cine). */
  nextInLoop() {
    return this.items.length ? (this.index + 1) % this.items.length : 0;
  }

  /** Whether a frame requested for image `at` under `token` is still the one to show. */
  stillWanted(token, at) {
    return token === this.loadToken && this.index === at;
  }

  /** The user chose a window (drag, preset): later images keep it. */
  userWindowed() {
    this.autoWindow = false;
  }

  /**
   * The window to apply when `frame` of the current image is shown, or null to keep the one on
   * screen: the first image of a series sets the base window, and with autoWindow each image
   * opens at its own range. `first` tells the caller the series just showed its first image.
   */
  windowOnShow(frame) {
    const item = this.current;
    if (!item) return null;
    if (!this.baseWindow) {
      this.baseWindow = defaultWindow(item.info, frame);
      return { ...this.baseWindow, first: true };
    }
    if (this.autoWindow) return { ...defaultWindow(item.info, frame), first: false };
    return null;
  }

  /**
   * The "default" window for the current image ("0", reset): its stored window or the range of
   * its frame when loaded, else the base window; null when there is none yet. Images without a
   * stored window go back to windowing themselves.
   */
  defaultWindowNow(frame) {
    const item = this.current;
    this.autoWindow = Boolean(item) && !item.info.window;
    if (item && frame) return defaultWindow(item.info, frame);
    return this.baseWindow ? { ...this.baseWindow } : null;
  }
}

/** The series `step` places from `current` in `uids` (the strip's order), or null at an end. */
export function neighbourSeries(uids, current, step) {
  const at = uids.indexOf(current);
  if (at < 0) return null;
  return uids[at + step] ?? null;
}
