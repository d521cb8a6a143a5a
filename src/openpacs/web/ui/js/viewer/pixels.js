// Pixel data in the browser: the Image Pixel module (PS3.3 C.7.6.3) read from the metadata,
// frames decoded from Explicit VR Little Endian bytes, and display through the Modality LUT
// (rescale) and a linear VOI LUT (window, PS3.3 C.11.2.1.2.1) into canvas ImageData.

import { number, value, values } from "../dicom.js";

function firstItem(dataset, keyword) {
  const items = values(dataset, keyword);
  return items.length ? items[0] : null;
}

/** Functional group macro values of an enhanced multi-frame image (per-frame, then shared). */
function functional(meta, frame, group, keyword) {
  const perFrame = values(meta, "PerFrameFunctionalGroupsSequence")[frame - 1];
  for (const source of [perFrame, firstItem(meta, "SharedFunctionalGroupsSequence")]) {
    const item = source && firstItem(source, group);
    const found = item && number(item, keyword);
    if (found !== undefined && found !== null) return found;
  }
  return undefined;
}

/** What is needed to decode and display one frame of an instance. */
export function imageInfo(meta, frame = 1) {
  const photometric = String(value(meta, "PhotometricInterpretation", "MONOCHROME2"))
    .trim()
    .toUpperCase();
  const samples = number(meta, "SamplesPerPixel", 1);
  const slope = number(meta, "RescaleSlope") ?? functional(meta, frame, "PixelValueTransformationSequence", "RescaleSlope") ?? 1;
  const intercept = number(meta, "RescaleIntercept") ?? functional(meta, frame, "PixelValueTransformationSequence", "RescaleIntercept") ?? 0;
  let center = number(meta, "WindowCenter");
  let width = number(meta, "WindowWidth");
  if (center === undefined || width === undefined) {
    center = functional(meta, frame, "FrameVOILUTSequence", "WindowCenter");
    width = functional(meta, frame, "FrameVOILUTSequence", "WindowWidth");
  }
  const spacing = values(meta, "PixelSpacing").map(Number);
  return {
    rows: number(meta, "Rows", 0),
    columns: number(meta, "Columns", 0),
    bitsAllocated: number(meta, "BitsAllocated", 16),
    bitsStored: number(meta, "BitsStored", number(meta, "BitsAllocated", 16)),
    signed: number(meta, "PixelRepresentation", 0) === 1,
    samples,
    photometric,
    colour: samples === 3,
    planar: number(meta, "PlanarConfiguration", 0),
    frames: number(meta, "NumberOfFrames", 1),
    slope: slope || 1,
    intercept,
    window: center !== undefined && width !== undefined && width > 0 ? { center, width } : null,
    spacing: spacing.length === 2 && spacing.every(Number.isFinite) ? spacing : null,
  };
}

function aligned(bytes, size) {
  if (bytes.byteOffset % size === 0) return bytes;
  return new Uint8Array(bytes); // a copy starts at offset 0
}

/** Typed pixel values of one frame, with their range; sign-extends BitsStored < BitsAllocated. */
export function decodeFrame(info, bytes) {
  const count = info.rows * info.columns * info.samples;
  let data;
  if (info.bitsAllocated === 8) {
    data = info.signed ? new Int8Array(bytes.buffer, bytes.byteOffset, count) : bytes.subarray(0, count);
  } else if (info.bitsAllocated === 16) {
    const source = aligned(bytes, 2);
    data = info.signed ? new Int16Array(source.buffer, source.byteOffset, count) : new Uint16Array(source.buffer, source.byteOffset, count);
  } else if (info.bitsAllocated === 32) {
    const source = aligned(bytes, 4);
    data = info.signed ? new Int32Array(source.buffer, source.byteOffset, count) : new Uint32Array(source.buffer, source.byteOffset, count);
  } else {
    throw new Error(`${info.bitsAllocated}-bit pixels are not supported by the viewer`);
  }
  if (bytes.length < count * (info.bitsAllocated / 8)) throw new Error("frame is shorter than Rows × Columns × Samples");
  if (info.bitsStored < info.bitsAllocated && info.bitsAllocated <= 16) {
    data = data.slice(); // own copy: the masked values must not alias the response
    const shift = 32 - info.bitsStored;
    const mask = (1 << info.bitsStored) - 1;
    for (let i = 0; i < data.length; i += 1) data[i] = info.signed ? (data[i] << shift) >> shift : data[i] & mask;
  }
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < data.length; i += 1) {
    const v = data[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { data, min, max };
}

/** The window a frame opens with: the stored one, else its full range of modality values. */
export function defaultWindow(info, frame) {
  if (info.window) return { ...info.window };
  if (info.colour) return { center: 128, width: 256 }; // the identity under the linear VOI
  const a = frame.min * info.slope + info.intercept;
  const b = frame.max * info.slope + info.intercept;
  const low = Math.min(a, b);
  const high = Math.max(a, b);
  return { center: (low + high) / 2 + 0.5, width: Math.max(1, high - low + 1) };
}

/** PS3.3 C.11.2.1.2.1 linear VOI: modality value -> 0..255. */
function voi(x, center, width) {
  const c = center - 0.5;
  const w = width - 1;
  if (w <= 0) return x <= c ? 0 : 255;
  if (x <= c - w / 2) return 0;
  if (x > c + w / 2) return 255;
  return Math.round(((x - c) / w + 0.5) * 255);
}

/** A stored value -> grey level table over [min, max], or null when the range is too wide. */
function greyTable(info, frame, view) {
  const size = frame.max - frame.min + 1;
  if (size > 1 << 20) return null;
  const table = new Uint8Array(size);
  const flip = (info.photometric === "MONOCHROME1") !== Boolean(view.invert);
  for (let i = 0; i < size; i += 1) {
    const grey = voi((i + frame.min) * info.slope + info.intercept, view.center, view.width);
    table[i] = flip ? 255 - grey : grey;
  }
  return table;
}

/** Writes the displayed frame into `imageData` (same rows × columns). */
export function renderInto(imageData, info, frame, view) {
  const out = new Uint32Array(imageData.data.buffer);
  const data = frame.data;
  const pixels = info.rows * info.columns;
  if (info.colour) {
    const table = new Uint8Array(256);
    for (let i = 0; i < 256; i += 1) table[i] = view.invert ? 255 - voi(i, view.center, view.width) : voi(i, view.center, view.width);
    const ybr = info.photometric === "YBR_FULL";
    const planar = info.planar === 1;
    for (let p = 0; p < pixels; p += 1) {
      let r = planar ? data[p] : data[3 * p];
      let g = planar ? data[p + pixels] : data[3 * p + 1];
      let b = planar ? data[p + 2 * pixels] : data[3 * p + 2];
      if (ybr) {
        // PS3.3 C.7.6.3.1.2 YBR_FULL -> RGB
        const y = r;
        const cb = g - 128;
        const cr = b - 128;
        r = Math.min(255, Math.max(0, Math.round(y + 1.402 * cr)));
        g = Math.min(255, Math.max(0, Math.round(y - 0.344136 * cb - 0.714136 * cr)));
        b = Math.min(255, Math.max(0, Math.round(y + 1.772 * cb)));
      }
      out[p] = 0xff000000 | (table[b & 255] << 16) | (table[g & 255] << 8) | table[r & 255];
    }
    return;
  }
  const table = greyTable(info, frame, view);
  const flip = (info.photometric === "MONOCHROME1") !== Boolean(view.invert);
  const min = frame.min;
  for (let p = 0; p < pixels; p += 1) {
    const grey = table
      ? table[data[p] - min]
      : flip
        ? 255 - voi(data[p] * info.slope + info.intercept, view.center, view.width)
        : voi(data[p] * info.slope + info.intercept, view.center, view.width);
    out[p] = 0xff000000 | (grey << 16) | (grey << 8) | grey;
  }
}
