// The viewer page: wires the series strip, the toolbar, the canvas with its overlays, the
// image slider and the keyboard to one ViewerState and a FrameLoader per series.

import { api } from "../api.js";
import { studyWithSeries } from "../catalog.js";
import { formatDate, personName, value } from "../dicom.js";
import { clear, h, message } from "../dom.js";
import { Thumbnails } from "../thumbnails.js";
import { CineLoop, closestRate, recommendedRate } from "./cine.js";
import { imageLabel, imagePixelAt, probeLabel, windowLabel, zoomLabel } from "./overlay.js";
import { scriptingSurface } from "./scripting.js";
import { keyCommand } from "./shortcuts.js";
import { FrameLoader, stackItems } from "./stack.js";
import { neighbourSeries, ViewerState } from "./state.js";
import { SeriesStrip } from "./strip.js";
import { TagPanel } from "./tags.js";
import { helpDialog, Toolbar } from "./toolbar.js";
import { Viewport } from "./viewport.js";

function fetchMetadata(studyUid, seriesUid) {
  return api(`/dicom-web/studies/${encodeURIComponent(studyUid)}/series/${encodeURIComponent(seriesUid)}/metadata`, {
    headers: { Accept: "application/dicom+json" },
  });
}

/** Keys typed into a field (but the slider) are the field's, not the viewer's. */
function typingIn(target) {
  if (target instanceof HTMLInputElement) return target.type !== "range";
  return target instanceof HTMLSelectElement || target instanceof HTMLTextAreaElement;
}

export async function viewerPage(main, { args, navigate }) {
  const [studyUid, requestedSeries] = args;
  const startedAt = performance.now();
  const state = new ViewerState(requestedSeries);
  const thumbnails = new Thumbnails();
  let loader = null;
  let tagsVisible = window.innerWidth >= 1500;

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
  const strip = new SeriesStrip({ onOpen: (uid) => openSeries(uid) });
  const tagsPanel = h("aside", { class: "tags-panel", "aria-label": "Tags" });
  const tagPanel = new TagPanel(tagsPanel);
  const help = helpDialog();
  const toolbar = new Toolbar({ studyUid, tagsVisible, run: (command) => run(command) });
  const layout = h(
    "div",
    { class: `viewer ${tagsVisible ? "with-tags" : ""}`, "data-testid": "viewer" },
    h("nav", { class: "strip-wrap", "aria-label": "Series of the study" }, strip.element),
    h("section", { class: "stage", "aria-label": "Image" }, toolbar.element, stage, h("div", { class: "slider-row" }, slider)),
    tagsPanel,
    help,
  );
  clear(main).append(layout);

  const viewport = new Viewport(canvas, {
    onChange: () => updateOverlay(),
    onScroll: (steps) => go(state.index + steps),
    onUserWindow: () => state.userWindowed(),
  });
  const cine = new CineLoop({
    fps: () => toolbar.fps,
    ready: () => Boolean(loader?.peek(state.nextInLoop())),
    step: () => go(state.nextInLoop()),
  });

  /** Carries out a command of the keyboard (shortcuts.js) or of the toolbar. */
  function run(command) {
    const actions = {
      step: () => go(state.index + command.by),
      first: () => go(0),
      last: () => go(state.items.length - 1),
      series: () => switchSeries(command.by),
      tool: () => chooseTool(command.tool),
      preset: () => applyWindow(command.preset),
      defaultWindow: () => applyDefault(),
      invert: () => toggleInvert(),
      fit: () => viewport.fit(),
      reset: () => reset(),
      cine: () => toggleCine(),
      tags: () => toggleTags(),
      help: () => help.showModal(),
      back: () => navigate(`/studies/${encodeURIComponent(studyUid)}`),
    };
    actions[command.name]();
  }

  function chooseTool(id) {
    viewport.tool = id;
    toolbar.showTool(id);
  }

  function toggleInvert() {
    viewport.setInvert(!viewport.view.invert);
    toolbar.showInvert(viewport.view.invert);
  }

  function toggleTags() {
    tagsVisible = !tagsVisible;
    layout.classList.toggle("with-tags", tagsVisible);
    toolbar.showTags(tagsVisible);
    if (tagsVisible && state.current) tagPanel.show(state.current.meta);
  }

  function applyWindow({ center, width }) {
    state.userWindowed();
    viewport.setWindow(center, width);
  }

  function applyDefault() {
    const window = state.defaultWindowNow(state.current && loader?.peek(state.index));
    if (window) viewport.setWindow(window.center, window.width);
  }

  function reset() {
    if (viewport.view.invert) toggleInvert();
    applyDefault();
    viewport.fit();
  }

  function updateOverlay() {
    const item = state.current;
    if (!item) return;
    overlay.image.textContent = imageLabel(state.index, state.items.length, item);
    overlay.image.dataset.index = String(state.index + 1);
    overlay.image.dataset.total = String(state.items.length);
    overlay.window.textContent = windowLabel(item.info, viewport.view);
    overlay.window.dataset.center = String(viewport.view.center);
    overlay.window.dataset.width = String(viewport.view.width);
    overlay.zoom.textContent = zoomLabel(viewport.zoom, item.info);
    canvas.dataset.shown = String(state.index);
  }

  function updateLoading() {
    if (!loader) return;
    const loaded = loader.loadedCount;
    overlay.loading.textContent = loaded < state.items.length ? `Loaded ${loaded} / ${state.items.length}` : "";
  }

  /** Shows image `target` (clamped): at once when loaded, else as soon as it arrives. */
  async function go(target) {
    const next = state.moveTo(target);
    if (next === null) return;
    slider.value = String(next);
    loader.focus(next);
    const ready = loader.peek(next);
    if (ready) return display(ready);
    const token = state.loadToken;
    status.replaceChildren();
    try {
      const frame = await loader.get(next);
      if (state.stillWanted(token, next)) display(frame);
    } catch (error) {
      if (state.stillWanted(token, next)) status.replaceChildren(message(`Image ${next + 1} could not be loaded: ${error.message}`, "error"));
    }
  }

  function display(frame) {
    const item = state.current;
    const window = state.windowOnShow(frame);
    if (window) {
      viewport.view.center = window.center;
      viewport.view.width = window.width;
      viewport.dirtyPixels = true;
    }
    if (window?.first) {
      performance.mark("openpacs-first-image");
      firstShown();
      layout.dataset.firstImageMs = String(Math.round(performance.now() - startedAt));
    }
    status.replaceChildren();
    viewport.show(item, frame);
    if (tagsVisible) tagPanel.show(item.meta);
  }

  function showPatient(first) {
    overlay.patient.replaceChildren(
      h("div", { class: "strong" }, personName(value(first.meta, "PatientName"))),
      h("div", {}, value(first.meta, "PatientID", "")),
      h("div", {}, `${formatDate(value(first.meta, "StudyDate", ""))} ${value(first.meta, "StudyDescription", "")}`),
    );
    overlay.series.textContent = `Series ${value(first.meta, "SeriesNumber", "–")} · ${value(first.meta, "Modality", "")} · ${value(first.meta, "SeriesDescription", "")}`;
  }

  async function openSeries(uid) {
    stopCine();
    const token = state.beginSeries(uid);
    if (loader) loader.close();
    loader = null;
    strip.markCurrent(state.seriesUid);
    history.replaceState(null, "", `#/viewer/${encodeURIComponent(studyUid)}/${encodeURIComponent(uid)}`);
    status.replaceChildren(message("Loading series…"));
    let metadata;
    try {
      metadata = await fetchMetadata(studyUid, uid);
    } catch (error) {
      if (token === state.loadToken) status.replaceChildren(message(`Could not load the series: ${error.message}`, "error"));
      return;
    }
    if (token !== state.loadToken) return;
    state.setItems(stackItems(metadata));
    if (!state.items.length) {
      status.replaceChildren(message("This series has no images to show.", "error"));
      return;
    }
    loader = new FrameLoader(studyUid, uid, state.items, { onLoaded: () => updateLoading() });
    slider.max = String(state.items.length - 1);
    const first = state.items[0];
    showPatient(first);
    const rate = recommendedRate(first.meta);
    if (rate) toolbar.fps = closestRate(rate);
    updateLoading();
    await go(0);
    if (first.frames > 1 && token === state.loadToken) overlay.loading.textContent ||= "multi-frame: Space plays";
  }

  function stopCine() {
    cine.stop();
    toolbar.showPlaying(false);
  }

  function toggleCine() {
    if (cine.running) return stopCine();
    if (state.items.length < 2) return;
    toolbar.showPlaying(true);
    cine.start();
  }

  function switchSeries(step) {
    const next = neighbourSeries(strip.uids, state.seriesUid, step);
    if (next) openSeries(next);
  }

  const onKey = (event) => {
    if (help.open || typingIn(event.target)) return;
    const command = keyCommand(event);
    if (!command) return;
    if (event.target instanceof HTMLButtonElement && (event.key === " " || event.key === "Enter")) return;
    event.preventDefault();
    run(command);
  };
  document.addEventListener("keydown", onKey);
  slider.addEventListener("input", () => go(Number(slider.value)));
  slider.addEventListener("keydown", (event) => event.stopPropagation()); // the range handles its own keys
  canvas.addEventListener("pointermove", (event) => {
    const item = state.current;
    if (!item || !viewport.frame) return;
    const rect = canvas.getBoundingClientRect();
    const pixel = imagePixelAt({ x: event.clientX - rect.left, y: event.clientY - rect.top }, rect, item.info, viewport);
    overlay.probe.textContent = pixel ? probeLabel(pixel.column, pixel.row, viewport.valueAt(pixel.column, pixel.row)) : "";
  });

  window.openpacsViewer = scriptingSurface({ state, viewport, canvas, loader: () => loader, go });

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
  const jobs = strip.fill(studyUid, seriesList.series);
  document.title = `${personName(value(seriesList.study, "PatientName"))} · viewer · openpacs`;
  strip.markCurrent(state.seriesUid);
  if (!requestedSeries) {
    const initial = value(seriesList.series[0] || {}, "SeriesInstanceUID");
    if (!initial) status.replaceChildren(message("This study has no series.", "error"));
    else openSeries(initial);
  }
  canvas.focus();
  Promise.race([firstImage, new Promise((resolve) => setTimeout(resolve, 3000))]).then(() => thumbnails.load(jobs));

  return () => {
    state.loadToken += 1;
    stopCine();
    document.removeEventListener("keydown", onKey);
    if (loader) loader.close();
    viewport.close();
    thumbnails.close();
    delete window.openpacsViewer;
  };
}
