// Server statistics (admin): whatever /api/statistics reports, as labelled figures.

import { api } from "../api.js";
import { formatBytes, h, message } from "../dom.js";

function label(key) {
  return key
    .replaceAll("_", " ")
    .replace(/([a-z])([A-Z])/g, "$1 $2")
    .replace(/^./, (c) => c.toUpperCase());
}

function figure(key, value) {
  if (typeof value === "number" && /bytes|size/i.test(key)) return formatBytes(value);
  if (typeof value === "number") return value.toLocaleString();
  return String(value);
}

function entries(object, prefix = "") {
  return Object.entries(object).flatMap(([key, value]) =>
    value && typeof value === "object" && !Array.isArray(value) ? entries(value, `${prefix}${key} `) : [[`${prefix}${key}`, value]],
  );
}

export async function statisticsPage(main) {
  document.title = "Statistics · openpacs";
  const page = h("div", { class: "page" }, h("h1", {}, "Server statistics"));
  main.append(page);
  try {
    const stats = await api("/api/statistics");
    page.append(
      h(
        "dl",
        { class: "stats", "data-testid": "statistics" },
        entries(stats).map(([key, value]) =>
          h("div", { class: "stat" }, h("dt", {}, label(key)), h("dd", {}, Array.isArray(value) ? value.join(", ") : figure(key, value))),
        ),
      ),
    );
  } catch (error) {
    page.append(message(`Could not read the statistics: ${error.message}`, "error"));
  }
}
