// The overlay texts and the geometry between canvas and image pixels. Pure: no DOM.

/** "Image 3 / 24", with the frame of a multi-frame image. */
export function imageLabel(index, total, item) {
  const frames = item.frames > 1 ? ` · frame ${item.frame}/${item.frames}` : "";
  return `Image ${index + 1} / ${total}${frames}`;
}

/** "WC 40  WW 400", or "RGB" for a colour image shown as stored (identity window, not inverted). */
export function windowLabel(info, view) {
  if (info.colour && !view.invert && view.center === 128 && view.width === 256) return "RGB";
  return `WC ${Math.round(view.center)}  WW ${Math.round(view.width)}`;
}

export function zoomLabel(zoom, info) {
  return `Zoom ${Math.round(zoom * 100)}%  ·  ${info.columns}×${info.rows}`;
}

/** The pixel value readout: "(x, y) = value", the value rounded to two decimals. */
export function probeLabel(x, y, modality) {
  return modality === null ? `(${x}, ${y})` : `(${x}, ${y}) = ${Math.round(modality * 100) / 100}`;
}

/**
 * The image pixel (column, row) under a point of the canvas (CSS pixels from its top left), or
 * null outside the image. The image is centred, then scaled by `zoom` and moved by the pan.
 */
export function imagePixelAt(point, canvasSize, info, { zoom, panX, panY }) {
  const left = canvasSize.width / 2 - (info.columns * zoom) / 2 + panX;
  const top = canvasSize.height / 2 - (info.rows * zoom) / 2 + panY;
  const column = Math.floor((point.x - left) / zoom);
  const row = Math.floor((point.y - top) / zoom);
  if (column < 0 || row < 0 || column >= info.columns || row >= info.rows) return null;
  return { column, row };
}

/** The canvas point (CSS pixels) at the centre of image pixel (column, row): imagePixelAt's inverse. */
export function canvasPointOf(column, row, canvasSize, info, { zoom, panX, panY }) {
  return {
    x: canvasSize.width / 2 + panX + (column + 0.5 - info.columns / 2) * zoom,
    y: canvasSize.height / 2 + panY + (row + 0.5 - info.rows / 2) * zoom,
  };
}
