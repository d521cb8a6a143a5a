// A small scripting surface on `window.openpacsViewer`: performance measurement and
// end-to-end tests read the viewer's state and drive it through this, never through its DOM.

import { canvasPointOf } from "./overlay.js";

/** `loader()` returns the current series' FrameLoader (or null); `go(index)` shows an image. */
export function scriptingSurface({ state, viewport, canvas, loader, go }) {
  return {
    go: (target) => go(target),
    state: () => ({
      index: state.index,
      total: state.items.length,
      loaded: loader()?.loadedCount ?? 0,
      view: { ...viewport.view },
      zoom: viewport.zoom,
      panX: viewport.panX,
      panY: viewport.panY,
      columns: state.current?.info.columns,
      rows: state.current?.info.rows,
      shown: canvas.dataset.shown === undefined ? null : Number(canvas.dataset.shown),
      series: state.seriesUid,
    }),
    /** The colour the screen shows at image pixel (column, row), read back from the canvas. */
    screenPixel(column, row) {
      const { x, y } = canvasPointOf(column, row, canvas.getBoundingClientRect(), state.current.info, viewport);
      const ratio = window.devicePixelRatio || 1;
      return Array.from(
        canvas
          .getContext("2d")
          .getImageData(Math.floor(x * ratio), Math.floor(y * ratio), 1, 1)
          .data.slice(0, 3),
      );
    },
    displayedAt: (column, row) => viewport.displayedAt(column, row),
    /** Milliseconds to window and draw the current image (mean of `times`, no network). */
    renderCost(times = 50) {
      const began = performance.now();
      for (let i = 0; i < times; i += 1) {
        viewport.dirtyPixels = true;
        viewport.draw(false);
      }
      return (performance.now() - began) / times;
    },
    /** Shows every image once, as fast as they can be drawn; resolves to frames per second. */
    async scrollThrough() {
      const began = performance.now();
      for (let i = 0; i < state.items.length; i += 1) {
        await go(i);
        await new Promise((resolve) => requestAnimationFrame(resolve));
      }
      return (state.items.length / (performance.now() - began)) * 1000;
    },
  };
}
