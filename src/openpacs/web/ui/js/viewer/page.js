// The viewer page: series strip, toolbar (presets, invert, fit, reset, cine, tags, help), the
// canvas with its overlays, the image slider, keyboard shortcuts.

import { api } from "../api.js";
import { clear, h, message } from "../dom.js";
import { formatDate, number, personName, value } from "../dicom.js";
import { studyWithSeries } from "../catalog.js";
import { Thumbnails } from "../thumbnails.js";
import { defaultWindow } from "./pixels.js";
import { FrameLoader, stackItems } from "./stack.js";
import { TagPanel } from "./tags.js";
import { Viewport } from "./viewport.js";

export const PRESETS = [
  { key: "1", id: "soft", label: "Soft tissue", center: 40, width: 400 },
  { key: "2", id: "lung", label: "Lung", center: -600, width: 1500 },
  { key: "3", id: "bone", label: "Bone", center: 300, width: 1500 },
  { key: "4", id: "brain", label: "Brain", center: 40, width: 80 },
];

const SHORTCUTS = [
  ["↓ → / wheel down", "next image"],
  ["↑ ← / wheel up", "previous image"],
  ["Page Down / Page Up", "10 images on / back"],
  ["Home / End", "first / last image"],
  ["[ / ]", "previous / next series"],
  ["drag (left button)", "window / level (or the tool chosen)"],
  ["shift-drag or middle button", "pan"],
  ["ctrl-drag, right button, ctrl-wheel", "zoom"],
  ["0", "stored (default) window"],
  ["1 2 3 4", "presets: soft tissue, lung, bone, brain"],
  ["I", "invert"],
  ["F / double-click", "fit to window"],
  ["R", "reset window, zoom and pan"],
  ["Space", "play / pause cine"],
  ["T", "show / hide the tag panel"],
  ["?", "this help"],
  ["Esc", "close help; back to the study"],
];

function fetchMetadata(studyUid, seriesUid) {
  return api(`/dicom-web/studies/${encodeURIComponent(studyUid)}/series/${encodeURIComponent(seriesUid)}/metadata`, {
    headers: { Accept: "application/dicom+json" },
  });
}

export async function viewerPage(main, { args, navigate }) {
  const [studyUid, requestedSeries] = args;
  const startedAt = performance.now();
  const thumbnails = new Thumbnails();
  let loader = null;
  let viewport = null;
  let items = [];
  let index = 0;
  let seriesUid = requestedSeries;
  let cine = null;
  let tagsVisible = window.innerWidth >= 1500;
  let loadToken = 0;
  let baseWindow = null;
  // Images without a stored window open each at its own value range, until the user windows.
  let autoWindow = false;

  const canvas = h("canvas", {
    class: "view-canvas",
    "data-testid": "viewer-canvas",
    tabindex: "0",
    "aria-label": "Image; use the arrow keys to scroll, ? for help",
  });
  const overlay = {
    patient: h("div", { "data-testid": "overlay-patient" }),
    series: h("div", { "data-testid": "overlay-series" }),
    image: h("div", { "data-testid": "overlay-image" }),
    window: h("div", { "data-testid": "overlay-window" }),
    zoom: h("div", { "data-testid": "overlay-zoom" }),
    loading: h("div", { class: "muted", "data-testid": "overlay-loading" }),
    probe: h("div", { class: "muted" }),
  };
  const status = h("div", { class: "viewer-status", role: "status" });
  const stage = h(
    "div",
    { class: "viewport" },
    canvas,
    h("div", { class: "overlay top-left" }, overlay.patient),
    h("div", { class: "overlay top-right" }, overlay.series, overlay.image),
    h("div", { class: "overlay bottom-left" }, overlay.window, overlay.probe),
    h("div", { class: "overlay bottom-right" }, overlay.zoom, overlay.loading),
    status,
  );
  const slider = h("input", { type: "range", min: 0, max: 0, value: 0, class: "slider", "aria-label": "Image number", "data-testid": "slider" });
  const strip = h("ol", { class: "strip", "aria-label": "Series" });
  const tagsPanel = h("aside", { class: "tags-panel", "aria-label": "Tags" });
  const tagPanel = new TagPanel(tagsPanel);
  const help = h(
    "dialog",
    { class: "dialog help", "aria-labelledby": "help-title", "data-testid": "help" },
    h("h2", { id: "help-title" }, "Keyboard and mouse"),
    h(
      "table",
      { class: "shortcuts" },
      h(
        "tbody",
        {},
        SHORTCUTS.map(([keys, what]) => h("tr", {}, h("th", { scope: "row" }, keys), h("td", {}, what))),
      ),
    ),
    h("form", { method: "dialog", class: "dialog-actions" }, h("button", { class: "primary" }, "Close")),
  );

  const toolButtons = {};
  const tool = (id, label, title) => {
    toolButtons[id] = h("button", { class: "tool", "aria-pressed": id === "window" ? "true" : "false", title, onclick: () => chooseTool(id) }, label);
    return toolButtons[id];
  };
  const invertButton = h(
    "button",
    { class: "tool", "aria-pressed": "false", title: "Invert (I)", "data-testid": "invert", onclick: () => toggleInvert() },
    "Invert",
  );
  const playButton = h("button", { class: "tool", title: "Play / pause (Space)", "data-testid": "play", onclick: () => toggleCine() }, "▶ Play");
  const fpsSelect = h(
    "select",
    { "aria-label": "Cine frames per second", title: "Frames per second" },
    [5, 10, 15, 20, 25, 30, 50].map((fps) => h("option", { value: fps, selected: fps === 10 }, `${fps} fps`)),
  );
  const tagsButton = h(
    "button",
    { class: "tool", "aria-pressed": String(tagsVisible), title: "Tags (T)", "data-testid": "toggle-tags", onclick: () => toggleTags() },
    "Tags",
  );
  const toolbar = h(
    "div",
    { class: "toolbar", role: "toolbar", "aria-label": "Viewer tools" },
    h("a", { class: "button secondary", href: `#/studies/${encodeURIComponent(studyUid)}`, title: "Back to the study (Esc)" }, "‹ Study"),
    h("span", { class: "tool-group" }, tool("window", "W/L", "Drag: window / level"), tool("pan", "Pan", "Drag: pan"), tool("zoom", "Zoom", "Drag: zoom")),
    h(
      "span",
      { class: "tool-group", "aria-label": "Window presets" },
      h("button", { class: "tool", title: "Stored window (0)", "data-testid": "preset-default", onclick: () => applyDefault() }, "Default"),
      PRESETS.map((preset) =>
        h(
          "button",
          {
            class: "tool",
            title: `${preset.label} ${preset.center}/${preset.width} (${preset.key})`,
            "data-testid": `preset-${preset.id}`,
            onclick: () => applyPreset(preset),
          },
          preset.label,
        ),
      ),
    ),
    h(
      "span",
      { class: "tool-group" },
      invertButton,
      h("button", { class: "tool", title: "Fit (F)", "data-testid": "fit", onclick: () => viewport.fit() }, "Fit"),
      h("button", { class: "tool", title: "Reset (R)", "data-testid": "reset", onclick: () => reset() }, "Reset"),
    ),
    h("span", { class: "tool-group" }, playButton, fpsSelect),
    h(
      "span",
      { class: "tool-group push" },
      tagsButton,
      h("button", { class: "tool", title: "Help (?)", "data-testid": "help-button", onclick: () => help.showModal() }, "?"),
    ),
  );
  const layout = h(
    "div",
    { class: `viewer ${tagsVisible ? "with-tags" : ""}`, "data-testid": "viewer" },
    h("nav", { class: "strip-wrap", "aria-label": "Series of the study" }, strip),
    h("section", { class: "stage", "aria-label": "Image" }, toolbar, stage, h("div", { class: "slider-row" }, slider)),
    tagsPanel,
    help,
  );
  clear(main).append(layout);

  viewport = new Viewport(canvas, {
    onChange: () => updateOverlay(),
    onScroll: (steps) => go(index + steps),
    onUserWindow: () => {
      autoWindow = false;
    },
  });

  function chooseTool(id) {
    viewport.tool = id;
    for (const [key, button] of Object.entries(toolButtons)) button.setAttribute("aria-pressed", String(key === id));
  }

  function toggleInvert() {
    viewport.setInvert(!viewport.view.invert);
    invertButton.setAttribute("aria-pressed", String(viewport.view.invert));
  }

  function toggleTags() {
    tagsVisible = !tagsVisible;
    layout.classList.toggle("with-tags", tagsVisible);
    tagsButton.setAttribute("aria-pressed", String(tagsVisible));
    if (tagsVisible && items[index]) tagPanel.show(items[index].meta);
  }

  function applyPreset(preset) {
    autoWindow = false;
    viewport.setWindow(preset.center, preset.width);
  }

  function applyDefault() {
    const item = items[index];
    const frame = item && loader.peek(index);
    autoWindow = Boolean(item) && !item.info.window;
    if (frame) {
      const window = defaultWindow(item.info, frame);
      viewport.setWindow(window.center, window.width);
    } else if (baseWindow) viewport.setWindow(baseWindow.center, baseWindow.width);
  }

  function reset() {
    if (viewport.view.invert) toggleInvert();
    applyDefault();
    viewport.fit();
  }

  function updateOverlay() {
    const item = items[index];
    if (!item) return;
    const frames = item.frames > 1 ? ` · frame ${item.frame}/${item.frames}` : "";
    overlay.image.textContent = `Image ${index + 1} / ${items.length}${frames}`;
    overlay.image.dataset.index = String(index + 1);
    overlay.image.dataset.total = String(items.length);
    overlay.window.textContent =
      item.info.colour && !viewport.view.invert && viewport.view.center === 128 && viewport.view.width === 256
        ? "RGB"
        : `WC ${Math.round(viewport.view.center)}  WW ${Math.round(viewport.view.width)}`;
    overlay.window.dataset.center = String(viewport.view.center);
    overlay.window.dataset.width = String(viewport.view.width);
    overlay.zoom.textContent = `Zoom ${Math.round(viewport.zoom * 100)}%  ·  ${item.info.columns}×${item.info.rows}`;
    canvas.dataset.shown = String(index);
  }

  function updateLoading() {
    if (!loader) return;
    const loaded = loader.loadedCount;
    overlay.loading.textContent = loaded < items.length ? `Loaded ${loaded} / ${items.length}` : "";
  }

  /** Shows image `target` (clamped): at once when loaded, else as soon as it arrives. */
  async function go(target) {
    if (!items.length) return;
    const next = Math.min(items.length - 1, Math.max(0, target));
    index = next;
    slider.value = String(next);
    loader.focus(next);
    const ready = loader.peek(next);
    const token = loadToken;
    if (ready) return display(next, ready);
    status.replaceChildren();
    try {
      const frame = await loader.get(next);
      if (token === loadToken && index === next) display(next, frame);
    } catch (error) {
      if (token === loadToken && index === next) status.replaceChildren(message(`Image ${next + 1} could not be loaded: ${error.message}`, "error"));
    }
  }

  function display(at, frame) {
    const item = items[at];
    if (!baseWindow) {
      baseWindow = defaultWindow(item.info, frame);
      viewport.view.center = baseWindow.center;
      viewport.view.width = baseWindow.width;
      performance.mark("openpacs-first-image");
      firstShown();
      layout.dataset.firstImageMs = String(Math.round(performance.now() - startedAt));
    } else if (autoWindow) {
      const window = defaultWindow(item.info, frame);
      viewport.view.center = window.center;
      viewport.view.width = window.width;
      viewport.dirtyPixels = true;
    }
    status.replaceChildren();
    viewport.show(item, frame);
    if (tagsVisible) tagPanel.show(item.meta);
  }

  async function openSeries(uid) {
    stopCine();
    loadToken += 1;
    const token = loadToken;
    if (loader) loader.close();
    loader = null;
    items = [];
    index = 0;
    baseWindow = null;
    autoWindow = false;
    seriesUid = uid;
    for (const entry of strip.children) entry.classList.toggle("current", entry.dataset.uid === uid);
    history.replaceState(null, "", `#/viewer/${encodeURIComponent(studyUid)}/${encodeURIComponent(uid)}`);
    status.replaceChildren(message("Loading series…"));
    let metadata;
    try {
      metadata = await fetchMetadata(studyUid, uid);
    } catch (error) {
      if (token === loadToken) status.replaceChildren(message(`Could not load the series: ${error.message}`, "error"));
      return;
    }
    if (token !== loadToken) return;
    items = stackItems(metadata);
    if (!items.length) {
      status.replaceChildren(message("This series has no images to show.", "error"));
      return;
    }
    loader = new FrameLoader(studyUid, uid, items, { onLoaded: () => updateLoading() });
    autoWindow = !items[0].info.window;
    slider.max = String(items.length - 1);
    const first = items[0];
    overlay.patient.replaceChildren(
      h("div", { class: "strong" }, personName(value(first.meta, "PatientName"))),
      h("div", {}, value(first.meta, "PatientID", "")),
      h("div", {}, `${formatDate(value(first.meta, "StudyDate", ""))} ${value(first.meta, "StudyDescription", "")}`),
    );
    overlay.series.textContent = `Series ${value(first.meta, "SeriesNumber", "–")} · ${value(first.meta, "Modality", "")} · ${value(first.meta, "SeriesDescription", "")}`;
    const frameTime = number(first.meta, "FrameTime");
    const rate = frameTime ? 1000 / frameTime : number(first.meta, "RecommendedDisplayFrameRate") || number(first.meta, "CineRate");
    if (rate) {
      const closest = [...fpsSelect.options].reduce((best, option) => (Math.abs(option.value - rate) < Math.abs(best.value - rate) ? option : best));
      fpsSelect.value = closest.value;
    }
    updateLoading();
    await go(0);
    if (first.frames > 1 && token === loadToken) overlay.loading.textContent ||= "multi-frame: Space plays";
  }

  function stopCine() {
    if (cine) cancelAnimationFrame(cine.handle);
    cine = null;
    playButton.textContent = "▶ Play";
    playButton.setAttribute("aria-pressed", "false");
  }

  function toggleCine() {
    if (cine) return stopCine();
    if (items.length < 2) return;
    cine = { last: performance.now(), handle: 0 };
    playButton.textContent = "❚❚ Pause";
    playButton.setAttribute("aria-pressed", "true");
    const tick = (now) => {
      if (!cine) return;
      const interval = 1000 / Number(fpsSelect.value);
      if (now - cine.last >= interval && loader.peek((index + 1) % items.length)) {
        cine.last = now;
        go((index + 1) % items.length);
      }
      cine.handle = requestAnimationFrame(tick);
    };
    cine.handle = requestAnimationFrame(tick);
  }

  function switchSeries(step) {
    const entries = [...strip.children];
    const at = entries.findIndex((entry) => entry.dataset.uid === seriesUid);
    const next = entries[at + step];
    if (next) openSeries(next.dataset.uid);
  }

  const onKey = (event) => {
    if (help.open) return;
    const target = event.target;
    if (target instanceof HTMLInputElement && target.type !== "range") return;
    if (target instanceof HTMLSelectElement || target instanceof HTMLTextAreaElement) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const preset = PRESETS.find((candidate) => candidate.key === event.key);
    const actions = {
      ArrowDown: () => go(index + 1),
      ArrowRight: () => go(index + 1),
      ArrowUp: () => go(index - 1),
      ArrowLeft: () => go(index - 1),
      PageDown: () => go(index + 10),
      PageUp: () => go(index - 10),
      Home: () => go(0),
      End: () => go(items.length - 1),
      "[": () => switchSeries(-1),
      "]": () => switchSeries(1),
      0: () => applyDefault(),
      i: () => toggleInvert(),
      I: () => toggleInvert(),
      f: () => viewport.fit(),
      F: () => viewport.fit(),
      r: () => reset(),
      R: () => reset(),
      " ": () => toggleCine(),
      t: () => toggleTags(),
      T: () => toggleTags(),
      "?": () => help.showModal(),
      Escape: () => navigate(`/studies/${encodeURIComponent(studyUid)}`),
    };
    const action = preset ? () => applyPreset(preset) : actions[event.key];
    if (!action) return;
    if (target instanceof HTMLButtonElement && (event.key === " " || event.key === "Enter")) return;
    event.preventDefault();
    action();
  };
  document.addEventListener("keydown", onKey);
  slider.addEventListener("input", () => go(Number(slider.value)));
  slider.addEventListener("keydown", (event) => event.stopPropagation()); // the range handles its own keys
  canvas.addEventListener("pointermove", (event) => {
    const item = items[index];
    if (!item || !viewport.frame) return;
    const rect = canvas.getBoundingClientRect();
    const w = item.info.columns * viewport.zoom;
    const hgt = item.info.rows * viewport.zoom;
    const x = Math.floor((event.clientX - rect.left - (rect.width / 2 - w / 2 + viewport.panX)) / viewport.zoom);
    const y = Math.floor((event.clientY - rect.top - (rect.height / 2 - hgt / 2 + viewport.panY)) / viewport.zoom);
    if (x < 0 || y < 0 || x >= item.info.columns || y >= item.info.rows) {
      overlay.probe.textContent = "";
      return;
    }
    const modality = viewport.valueAt(x, y);
    overlay.probe.textContent = modality === null ? `(${x}, ${y})` : `(${x}, ${y}) = ${Math.round(modality * 100) / 100}`;
  });

  // A small scripting surface: performance measurement and end-to-end tests.
  window.openpacsViewer = {
    go: (target) => go(target),
    state: () => ({
      index,
      total: items.length,
      loaded: loader ? loader.loadedCount : 0,
      view: { ...viewport.view },
      zoom: viewport.zoom,
      panX: viewport.panX,
      panY: viewport.panY,
      columns: items[index]?.info.columns,
      rows: items[index]?.info.rows,
      shown: canvas.dataset.shown === undefined ? null : Number(canvas.dataset.shown),
      series: seriesUid,
    }),
    /** The colour the screen shows at image pixel (column, row), read back from the canvas. */
    screenPixel(column, row) {
      const item = items[index];
      const rect = canvas.getBoundingClientRect();
      const ratio = window.devicePixelRatio || 1;
      const x = rect.width / 2 + viewport.panX + (column + 0.5 - item.info.columns / 2) * viewport.zoom;
      const y = rect.height / 2 + viewport.panY + (row + 0.5 - item.info.rows / 2) * viewport.zoom;
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
      for (let i = 0; i < items.length; i += 1) {
        await go(i);
        await new Promise((resolve) => requestAnimationFrame(resolve));
      }
      return (items.length / (performance.now() - began)) * 1000;
    },
  };

  // The series asked for starts loading at once; the strip follows, and its thumbnails wait
  // for the first image so they do not compete with it for connections.
  let firstShown;
  const firstImage = new Promise((resolve) => {
    firstShown = resolve;
  });
  if (requestedSeries) openSeries(requestedSeries);
  let seriesList;
  try {
    seriesList = await studyWithSeries(studyUid);
  } catch (error) {
    status.replaceChildren(message(`Could not load the study: ${error.message}`, "error"));
    return () => thumbnails.close();
  }
  const jobs = [];
  for (const item of seriesList.series) {
    const uid = value(item, "SeriesInstanceUID");
    const img = h("img", { alt: "", width: 96, height: 96 });
    jobs.push({ img, studyUid, seriesUid: uid });
    const count = value(item, "NumberOfSeriesRelatedInstances", "");
    strip.append(
      h(
        "li",
        { dataset: { uid } },
        h(
          "button",
          { class: "strip-item", title: value(item, "SeriesDescription", ""), onclick: () => openSeries(uid) },
          h("div", { class: "thumb" }, img),
          h("span", { class: "strip-label" }, `${value(item, "Modality", "")} #${value(item, "SeriesNumber", "–")}`),
          h("span", { class: "strip-label muted" }, `${count} img · ${value(item, "SeriesDescription", "")}`),
        ),
      ),
    );
  }
  document.title = `${personName(value(seriesList.study, "PatientName"))} · viewer · openpacs`;
  for (const entry of strip.children) entry.classList.toggle("current", entry.dataset.uid === seriesUid);
  if (!requestedSeries) {
    const initial = value(seriesList.series[0] || {}, "SeriesInstanceUID");
    if (!initial) status.replaceChildren(message("This study has no series.", "error"));
    else openSeries(initial);
  }
  canvas.focus();
  Promise.race([firstImage, new Promise((resolve) => setTimeout(resolve, 3000))]).then(() => thumbnails.load(jobs));

  return () => {
    loadToken += 1;
    stopCine();
    document.removeEventListener("keydown", onKey);
    if (loader) loader.close();
    viewport.close();
    thumbnails.close();
    delete window.openpacsViewer;
  };
}
