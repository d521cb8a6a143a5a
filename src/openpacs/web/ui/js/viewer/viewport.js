// The canvas: one frame rendered from its original values with the current window, drawn with
// zoom and pan; the pointer drags window/level, pan or zoom, the wheel scrolls the stack.

import { renderInto } from "./pixels.js";

export class Viewport {
  constructor(canvas, { onChange, onScroll, onUserWindow }) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.image = document.createElement("canvas");
    this.imageContext = this.image.getContext("2d");
    this.imageData = null;
    this.item = null;
    this.frame = null;
    this.view = { center: 40, width: 400, invert: false };
    this.zoom = 1;
    this.panX = 0;
    this.panY = 0;
    this.fitted = true;
    this.tool = "window";
    this.onChange = onChange;
    this.onScroll = onScroll;
    this.onUserWindow = onUserWindow || (() => {});
    this.pending = false;
    this.dirtyPixels = true;
    this.wheelRemainder = 0;
    this.bind();
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(canvas.parentElement);
    this.resize();
  }

  /** Shows a decoded frame; keeps the window, zoom and pan of the stack. */
  show(item, frame) {
    const sized = this.item && this.item.info.rows === item.info.rows && this.item.info.columns === item.info.columns;
    this.item = item;
    this.frame = frame;
    if (!sized) {
      this.image.width = item.info.columns;
      this.image.height = item.info.rows;
      this.imageData = this.imageContext.createImageData(item.info.columns, item.info.rows);
      if (this.fitted) this.fit(false);
    }
    this.dirtyPixels = true;
    this.draw(true);
  }

  setWindow(center, width) {
    this.view.center = center;
    this.view.width = Math.max(1, width);
    this.dirtyPixels = true;
    this.schedule();
  }

  setInvert(invert) {
    this.view.invert = invert;
    this.dirtyPixels = true;
    this.schedule();
  }

  fitScale() {
    if (!this.item) return 1;
    const { width, height } = this.cssSize();
    return Math.min(width / this.item.info.columns, height / this.item.info.rows) || 1;
  }

  fit(redraw = true) {
    this.zoom = this.fitScale();
    this.panX = 0;
    this.panY = 0;
    this.fitted = true;
    if (redraw) this.schedule();
  }

  zoomBy(factor, anchorX = null, anchorY = null) {
    const next = Math.min(40, Math.max(0.05, this.zoom * factor));
    if (anchorX !== null) {
      // keep the image point under the pointer where it is
      const { width, height } = this.cssSize();
      const dx = anchorX - width / 2 - this.panX;
      const dy = anchorY - height / 2 - this.panY;
      this.panX -= dx * (next / this.zoom - 1);
      this.panY -= dy * (next / this.zoom - 1);
    }
    this.zoom = next;
    this.fitted = false;
    this.schedule();
  }

  cssSize() {
    const rect = this.canvas.parentElement.getBoundingClientRect();
    return { width: Math.max(1, rect.width), height: Math.max(1, rect.height) };
  }

  resize() {
    const { width, height } = this.cssSize();
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(height * ratio);
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${height}px`;
    if (this.fitted) this.fit(false);
    this.draw(false);
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw(true);
    });
  }

  draw(notify) {
    const context = this.context;
    const ratio = window.devicePixelRatio || 1;
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.fillStyle = "#000";
    context.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.item || !this.frame) return;
    if (this.dirtyPixels) {
      renderInto(this.imageData, this.item.info, this.frame, this.view);
      this.imageContext.putImageData(this.imageData, 0, 0);
      this.dirtyPixels = false;
    }
    const { width, height } = this.cssSize();
    const w = this.item.info.columns * this.zoom;
    const h = this.item.info.rows * this.zoom;
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.imageSmoothingEnabled = this.zoom < 3;
    context.imageSmoothingQuality = "low";
    context.drawImage(this.image, width / 2 - w / 2 + this.panX, height / 2 - h / 2 + this.panY, w, h);
    if (notify && this.onChange) this.onChange();
  }

  /** The displayed grey level at an image pixel (for tests and the pixel probe). */
  displayedAt(column, row) {
    if (!this.imageData) return null;
    const offset = 4 * (row * this.item.info.columns + column);
    return Array.from(this.imageData.data.subarray(offset, offset + 3));
  }

  /** Stored value -> modality value at an image pixel. */
  valueAt(column, row) {
    if (!this.frame || this.item.info.colour) return null;
    const stored = this.frame.data[row * this.item.info.columns + column];
    return stored * this.item.info.slope + this.item.info.intercept;
  }

  windowStep() {
    if (!this.frame || !this.item) return 1;
    const range = Math.abs((this.frame.max - this.frame.min) * this.item.info.slope) || 255;
    return Math.max(range / 600, 0.05);
  }

  bind() {
    const canvas = this.canvas;
    let drag = null;
    canvas.addEventListener("contextmenu", (event) => event.preventDefault());
    canvas.addEventListener("pointerdown", (event) => {
      canvas.setPointerCapture(event.pointerId);
      const tool =
        event.button === 1 || (event.button === 0 && event.shiftKey) ? "pan" : event.button === 2 || (event.button === 0 && event.ctrlKey) ? "zoom" : this.tool;
      drag = {
        tool,
        x: event.clientX,
        y: event.clientY,
        center: this.view.center,
        width: this.view.width,
        panX: this.panX,
        panY: this.panY,
        zoom: this.zoom,
        step: this.windowStep(),
      };
      event.preventDefault();
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!drag) return;
      const dx = event.clientX - drag.x;
      const dy = event.clientY - drag.y;
      if (drag.tool === "window") {
        this.setWindow(drag.center + dy * drag.step, drag.width + dx * drag.step);
        this.onUserWindow();
      } else if (drag.tool === "pan") {
        this.panX = drag.panX + dx;
        this.panY = drag.panY + dy;
        this.fitted = false;
        this.schedule();
      } else if (drag.tool === "zoom") {
        this.zoom = Math.min(40, Math.max(0.05, drag.zoom * Math.exp(-dy / 200)));
        this.fitted = false;
        this.schedule();
      }
    });
    const end = (event) => {
      if (drag && canvas.hasPointerCapture(event.pointerId)) canvas.releasePointerCapture(event.pointerId);
      drag = null;
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    canvas.addEventListener("dblclick", () => this.fit());
    canvas.addEventListener(
      "wheel",
      (event) => {
        event.preventDefault();
        if (event.ctrlKey || event.metaKey) {
          const rect = canvas.getBoundingClientRect();
          this.zoomBy(Math.exp(-event.deltaY / 300), event.clientX - rect.left, event.clientY - rect.top);
          return;
        }
        // one image per wheel notch (deltaY ~100), trackpads accumulate smaller deltas
        const unit = event.deltaMode === 1 ? 3 : event.deltaMode === 2 ? 1 : 100;
        this.wheelRemainder += event.deltaY / unit;
        const steps = Math.trunc(this.wheelRemainder);
        if (steps) {
          this.wheelRemainder -= steps;
          this.onScroll(steps);
        }
      },
      { passive: false },
    );
  }

  close() {
    this.resizeObserver.disconnect();
  }
}
