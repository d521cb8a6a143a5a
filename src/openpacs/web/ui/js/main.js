// The portal: a hash router (#/studies, #/studies/<uid>, #/viewer/<study>/<series>, ...), the
// page shell with its navigation, and the drop-anywhere upload.

import { onUnauthorized } from "./api.js";
import { clear, h } from "./dom.js";
import { loginPage } from "./login.js";
import { can, forget, logout, restore, user } from "./session.js";
import { studiesPage } from "./studies.js";
import { studyPage } from "./study.js";
import { uploadPage, installDropTarget } from "./upload.js";
import { viewerPage } from "./viewer/page.js";
import { usersPage } from "./admin/users.js";
import { remotesPage } from "./admin/remotes.js";
import { jobsPage } from "./admin/jobs.js";
import { auditPage } from "./admin/audit.js";
import { statisticsPage } from "./admin/statistics.js";

const app = document.getElementById("app");
let cleanup = null;
// Renders overlap (a page still loading when the user goes on): each has a number, and one that
// a later render overtook stops at its next step and cleans up what it made, so the page shown
// is always the last one asked for and its clean-up the one that runs next.
let latest = 0;

const routes = [
  { pattern: /^\/studies\/?$/, page: studiesPage, permission: "read", nav: "studies" },
  { pattern: /^\/studies\/([^/]+)$/, page: studyPage, permission: "read", nav: "studies" },
  { pattern: /^\/viewer\/([^/]+)(?:\/([^/]+))?$/, page: viewerPage, permission: "read", nav: "studies", bare: true },
  { pattern: /^\/upload$/, page: uploadPage, permission: "store", nav: "upload" },
  { pattern: /^\/admin\/users$/, page: usersPage, permission: "admin", nav: "users" },
  { pattern: /^\/admin\/remotes$/, page: remotesPage, permission: "admin", nav: "remotes" },
  { pattern: /^\/admin\/jobs$/, page: jobsPage, permission: "admin", nav: "jobs" },
  { pattern: /^\/admin\/audit$/, page: auditPage, permission: "admin", nav: "audit" },
  { pattern: /^\/admin\/statistics$/, page: statisticsPage, permission: "admin", nav: "statistics" },
];

export function navigate(path) {
  if (location.hash !== `#${path}`) location.hash = path;
  else render();
}

function home() {
  return can("read") ? "/studies" : "/upload";
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = raw.split("?");
  return { path, params: new URLSearchParams(search) };
}

function navigation(active) {
  const links = [
    can("read") && ["studies", "#/studies", "Studies"],
    can("store") && ["upload", "#/upload", "Upload"],
    can("admin") && ["users", "#/admin/users", "Users"],
    can("admin") && ["remotes", "#/admin/remotes", "Remote AEs"],
    can("admin") && ["jobs", "#/admin/jobs", "Jobs"],
    can("admin") && ["audit", "#/admin/audit", "Audit trail"],
    can("admin") && ["statistics", "#/admin/statistics", "Statistics"],
  ].filter(Boolean);
  const who = user();
  return h(
    "header",
    { class: "topbar" },
    h("a", { class: "brand", href: `#${home()}` }, "openpacs"),
    h(
      "nav",
      { "aria-label": "Main" },
      links.map(([key, href, label]) => h("a", { href, class: key === active ? "active" : "", "aria-current": key === active ? "page" : false }, label)),
    ),
    h(
      "div",
      { class: "who" },
      h("span", { "data-testid": "whoami" }, `${who.username} (${who.role})`),
      h(
        "button",
        {
          class: "secondary",
          "data-testid": "logout",
          onclick: async () => {
            const sso = who.sso;
            await logout();
            if (sso) window.location.assign("/api/oidc/logout");
            else navigate("/login");
          },
        },
        "Log out",
      ),
    ),
  );
}

async function render() {
  const mine = ++latest;
  if (cleanup) {
    try {
      cleanup();
    } catch (error) {
      console.error(error);
    }
    cleanup = null;
  }
  const { path, params } = parseHash();
  if (!user()) await restore();
  if (mine !== latest) return;
  if (!user() || path === "/login") {
    if (user() && path === "/login") return navigate(home());
    clear(app).append(loginPage({ params, onLogin: () => navigate(params.get("next") || home()) }));
    document.title = "Log in · openpacs";
    return;
  }
  const route = routes.find((candidate) => candidate.pattern.test(path));
  if (!route) return navigate(home());
  const match = route.pattern.exec(path);
  const main = h("main", { id: "main", class: route.bare ? "main bare" : "main", tabindex: "-1" });
  clear(app).append(navigation(route.nav), main);
  if (!can(route.permission)) {
    main.append(h("p", { class: "message error", role: "alert" }, "Your role does not allow this page."));
    return;
  }
  const args = match.slice(1).map((part) => (part === undefined ? undefined : decodeURIComponent(part)));
  try {
    const done = (await route.page(main, { args, params, navigate })) || null;
    if (mine === latest) cleanup = done;
    else if (done) done(); // overtaken while loading: this page is gone already
  } catch (error) {
    console.error(error);
    main.append(h("p", { class: "message error", role: "alert" }, `Could not show this page: ${error.message}`));
  }
}

onUnauthorized(() => {
  forget();
  const { path } = parseHash();
  if (path !== "/login") navigate(`/login?next=${encodeURIComponent(path)}`);
});
window.addEventListener("hashchange", render);
installDropTarget({ navigate });
render();
