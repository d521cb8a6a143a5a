// The tag panel: the current instance's attributes from the series metadata (DICOM JSON),
// named from the data dictionary, nested sequences indented, filtered as the user types.

import { clear, h } from "../dom.js";
import { elementText } from "../dicom.js";

const MAX_ROWS = 4000;
let dictionary = null;

async function loadDictionary() {
  if (!dictionary) {
    dictionary = fetch("data/dictionary.json", { credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : {}))
      .catch(() => ({}));
  }
  return dictionary;
}

function rowsOf(dataset, names, depth = 0, out = []) {
  for (const tag of Object.keys(dataset).sort()) {
    if (out.length >= MAX_ROWS) break;
    const element = dataset[tag];
    const group = tag.slice(0, 4);
    const name = names[tag] || (Number.parseInt(group, 16) % 2 ? "(private)" : "");
    out.push({ depth, tag: `(${group},${tag.slice(4)})`, name, vr: element.vr || "", text: elementText(element) });
    if (element.vr === "SQ" && Array.isArray(element.Value)) {
      element.Value.forEach((item, index) => {
        out.push({ depth: depth + 1, tag: "", name: `item ${index + 1}`, vr: "", text: "", item: true });
        if (item) rowsOf(item, names, depth + 2, out);
      });
    }
  }
  return out;
}

export class TagPanel {
  constructor(container) {
    this.container = container;
    this.search = h("input", { type: "search", placeholder: "Filter tags (name, tag or value)", "aria-label": "Filter tags", "data-testid": "tag-filter" });
    this.body = h("tbody");
    this.count = h("span", { class: "muted" });
    this.rows = [];
    this.meta = null;
    this.search.addEventListener("input", () => this.filter());
    this.search.addEventListener("keydown", (event) => event.stopPropagation());
    container.append(
      h("div", { class: "tags-head" }, h("h2", {}, "Tags"), this.count),
      this.search,
      h("div", { class: "tags-scroll" }, h("table", { class: "tags-table", "data-testid": "tag-table" }, this.body)),
    );
  }

  async show(meta) {
    if (meta === this.meta) return;
    this.meta = meta;
    const names = await loadDictionary();
    if (meta !== this.meta) return;
    this.rows = rowsOf(meta, names);
    this.filter();
  }

  filter() {
    const needle = this.search.value.trim().toLowerCase();
    clear(this.body);
    let shown = 0;
    const fragment = document.createDocumentFragment();
    for (const row of this.rows) {
      if (needle && !(row.tag.toLowerCase().includes(needle) || row.name.toLowerCase().includes(needle) || row.text.toLowerCase().includes(needle))) continue;
      shown += 1;
      const name = h("td", { class: row.item ? "tag-item" : "tag-name" }, row.name);
      name.style.paddingLeft = `${0.4 + row.depth * 0.9}rem`;
      fragment.append(
        h("tr", {}, h("td", { class: "tag-code" }, row.tag), name, h("td", { class: "tag-vr" }, row.vr), h("td", { class: "tag-value" }, row.text)),
      );
    }
    this.body.append(fragment);
    this.count.textContent = needle ? `${shown} of ${this.rows.length}` : `${this.rows.length}`;
  }
}
