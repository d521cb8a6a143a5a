// The viewer's toolbar (tools, presets, invert, fit, reset, cine, tags, help) and its help
// dialog. The buttons call the page's commands; the page tells the toolbar what to show pressed.

import { h } from "../dom.js";
import { CINE_RATES } from "./cine.js";
import { PRESETS, SHORTCUTS } from "./shortcuts.js";

export function helpDialog() {
  return h(
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
}

export class Toolbar {
  /** `run(command)` receives the commands of shortcuts.js ({ name, preset?, tool? }). */
  constructor({ studyUid, tagsVisible, run }) {
    const button = (label, title, testId, command) => h("button", { class: "tool", title, "data-testid": testId, onclick: () => run(command) }, label);
    this.toolButtons = {};
    const tool = (id, label, title) => {
      this.toolButtons[id] = h(
        "button",
        { class: "tool", "aria-pressed": String(id === "window"), title, onclick: () => run({ name: "tool", tool: id }) },
        label,
      );
      return this.toolButtons[id];
    };
    this.invertButton = button("Invert", "Invert (I)", "invert", { name: "invert" });
    this.invertButton.setAttribute("aria-pressed", "false");
    this.playButton = button("▶ Play", "Play / pause (Space)", "play", { name: "cine" });
    this.fpsSelect = h(
      "select",
      { "aria-label": "Cine frames per second", title: "Frames per second" },
      CINE_RATES.map((fps) => h("option", { value: fps, selected: fps === 10 }, `${fps} fps`)),
    );
    this.tagsButton = button("Tags", "Tags (T)", "toggle-tags", { name: "tags" });
    this.tagsButton.setAttribute("aria-pressed", String(tagsVisible));
    this.element = h(
      "div",
      { class: "toolbar", role: "toolbar", "aria-label": "Viewer tools" },
      h("a", { class: "button secondary", href: `#/studies/${encodeURIComponent(studyUid)}`, title: "Back to the study (Esc)" }, "‹ Study"),
      h("span", { class: "tool-group" }, tool("window", "W/L", "Drag: window / level"), tool("pan", "Pan", "Drag: pan"), tool("zoom", "Zoom", "Drag: zoom")),
      h(
        "span",
        { class: "tool-group", "aria-label": "Window presets" },
        button("Default", "Stored window (0)", "preset-default", { name: "defaultWindow" }),
        PRESETS.map((preset) =>
          button(preset.label, `${preset.label} ${preset.center}/${preset.width} (${preset.key})`, `preset-${preset.id}`, { name: "preset", preset }),
        ),
      ),
      h(
        "span",
        { class: "tool-group" },
        this.invertButton,
        button("Fit", "Fit (F)", "fit", { name: "fit" }),
        button("Reset", "Reset (R)", "reset", { name: "reset" }),
      ),
      h("span", { class: "tool-group" }, this.playButton, this.fpsSelect),
      h("span", { class: "tool-group push" }, this.tagsButton, button("?", "Help (?)", "help-button", { name: "help" })),
    );
  }

  get fps() {
    return Number(this.fpsSelect.value);
  }

  set fps(rate) {
    this.fpsSelect.value = String(rate);
  }

  showTool(id) {
    for (const [key, button] of Object.entries(this.toolButtons)) button.setAttribute("aria-pressed", String(key === id));
  }

  showInvert(inverted) {
    this.invertButton.setAttribute("aria-pressed", String(inverted));
  }

  showPlaying(playing) {
    this.playButton.textContent = playing ? "❚❚ Pause" : "▶ Play";
    this.playButton.setAttribute("aria-pressed", String(playing));
  }

  showTags(visible) {
    this.tagsButton.setAttribute("aria-pressed", String(visible));
  }
}
