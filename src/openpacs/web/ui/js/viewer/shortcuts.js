// The viewer's keyboard: window presets, the help table and each key's command. Pure: no DOM.

export const PRESETS = [
  { key: "1", id: "soft", label: "Soft tissue", center: 40, width: 400 },
  { key: "2", id: "lung", label: "Lung", center: -600, width: 1500 },
  { key: "3", id: "bone", label: "Bone", center: 300, width: 1500 },
  { key: "4", id: "brain", label: "Brain", center: 40, width: 80 },
];

export const SHORTCUTS = [
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

const COMMANDS = {
  ArrowDown: { name: "step", by: 1 },
  ArrowRight: { name: "step", by: 1 },
  ArrowUp: { name: "step", by: -1 },
  ArrowLeft: { name: "step", by: -1 },
  PageDown: { name: "step", by: 10 },
  PageUp: { name: "step", by: -10 },
  Home: { name: "first" },
  End: { name: "last" },
  "[": { name: "series", by: -1 },
  "]": { name: "series", by: 1 },
  0: { name: "defaultWindow" },
  i: { name: "invert" },
  f: { name: "fit" },
  r: { name: "reset" },
  " ": { name: "cine" },
  t: { name: "tags" },
  "?": { name: "help" },
  Escape: { name: "back" },
};

/**
 * The command of a key press ({ name, by?, preset? }), or null: modified keys (ctrl, meta, alt)
 * belong to the browser; letters match either case.
 */
export function keyCommand({ key, ctrlKey = false, metaKey = false, altKey = false }) {
  if (ctrlKey || metaKey || altKey) return null;
  const preset = PRESETS.find((candidate) => candidate.key === key);
  if (preset) return { name: "preset", preset };
  const command = COMMANDS[key.length === 1 ? key.toLowerCase() : key];
  return command ? { ...command } : null;
}
