// Cine: the frame rate a series asks for, and a loop that steps at the chosen rate.

import { number } from "../dicom.js";

export const CINE_RATES = [5, 10, 15, 20, 25, 30, 50];

/** The rate the series' metadata recommends (Frame Time, else the display or cine rate), or null. */
export function recommendedRate(meta) {
  const frameTime = number(meta, "FrameTime");
  if (frameTime) return 1000 / frameTime;
  return number(meta, "RecommendedDisplayFrameRate") || number(meta, "CineRate") || null;
}

/** The offered rate closest to `rate` (the lower one on a tie). */
export function closestRate(rate, offered = CINE_RATES) {
  return offered.reduce((best, candidate) => (Math.abs(candidate - rate) < Math.abs(best - rate) ? candidate : best));
}

/**
 * Calls `step()` at most `fps()` times a second while running, on animation frames; `ready()`
 * says whether the next image is loaded (cine waits for it rather than skip).
 */
export class CineLoop {
  constructor({ fps, ready, step }) {
    this.fps = fps;
    this.ready = ready;
    this.step = step;
    this.handle = 0;
    this.last = 0;
    this.running = false;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.last = performance.now();
    const tick = (now) => {
      if (!this.running) return;
      if (now - this.last >= 1000 / this.fps() && this.ready()) {
        this.last = now;
        this.step();
      }
      this.handle = requestAnimationFrame(tick);
    };
    this.handle = requestAnimationFrame(tick);
  }

  stop() {
    this.running = false;
    cancelAnimationFrame(this.handle);
  }
}
