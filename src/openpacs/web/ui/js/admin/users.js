// Users (admin): add, change role, reset password, remove, through /api/users.

import { api } from "../api.js";
import { clear, confirmDialog, h, message } from "../dom.js";
import { user } from "../session.js";

export const ROLES = ["admin", "user", "uploader"];

export function listOf(answer) {
  return Array.isArray(answer) ? answer : answer?.items || [];
}

export async function usersPage(main) {
  document.title = "Users · openpacs";
  const status = h("div", { class: "action-status", "aria-live": "polite" });
  const body = h("tbody");
  const say = (text, kind = "ok") => status.replaceChildren(message(text, kind));

  const username = h("input", { id: "new-username", required: true, autocomplete: "off", pattern: "[A-Za-z0-9._@-]+" });
  const password = h("input", { id: "new-password", type: "password", required: true, autocomplete: "new-password" });
  const role = h(
    "select",
    { id: "new-role" },
    ROLES.map((r) => h("option", { value: r, selected: r === "user" }, r)),
  );
  const addForm = h(
    "form",
    {
      class: "inline-form",
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          await api("/api/users", { method: "POST", json: { username: username.value.trim(), password: password.value, role: role.value } });
          say(`User ${username.value.trim()} added.`);
          addForm.reset();
          await refresh();
        } catch (error) {
          say(`Could not add the user: ${error.message}`, "error");
        }
      },
    },
    h("label", { for: "new-username" }, "User name", username),
    h("label", { for: "new-password" }, "Password", password),
    h("label", { for: "new-role" }, "Role", role),
    h("button", { class: "primary", type: "submit", "data-testid": "add-user" }, "Add user"),
  );

  async function refresh() {
    let users;
    try {
      users = listOf(await api("/api/users"));
    } catch (error) {
      say(`Could not list users: ${error.message}`, "error");
      return;
    }
    clear(body);
    for (const entry of users) {
      const name = entry.username || entry.name;
      const roleSelect = h(
        "select",
        { "aria-label": `Role of ${name}` },
        ROLES.map((r) => h("option", { value: r, selected: r === entry.role }, r)),
      );
      roleSelect.addEventListener("change", async () => {
        try {
          await api(`/api/users/${encodeURIComponent(name)}`, { method: "PUT", json: { role: roleSelect.value } });
          say(`${name} is now ${roleSelect.value}.`);
        } catch (error) {
          say(`Could not change the role: ${error.message}`, "error");
          roleSelect.value = entry.role;
        }
      });
      const newPassword = h("input", { type: "password", placeholder: "new password", autocomplete: "new-password", "aria-label": `New password for ${name}` });
      const reset = h(
        "button",
        {
          class: "secondary",
          onclick: async () => {
            if (!newPassword.value) return say("Type the new password first.", "error");
            try {
              await api(`/api/users/${encodeURIComponent(name)}`, { method: "PUT", json: { password: newPassword.value } });
              newPassword.value = "";
              say(`Password of ${name} reset.`);
            } catch (error) {
              say(`Could not reset the password: ${error.message}`, "error");
            }
          },
        },
        "Reset password",
      );
      const remove = h(
        "button",
        {
          class: "danger",
          disabled: name === user()?.username,
          title: name === user()?.username ? "You cannot remove yourself" : "",
          onclick: async () => {
            if (
              !(await confirmDialog({
                title: `Remove ${name}?`,
                body: "The user can no longer log in; their sessions and tokens end.",
                confirm: "Remove",
                danger: true,
              }))
            )
              return;
            try {
              await api(`/api/users/${encodeURIComponent(name)}`, { method: "DELETE" });
              say(`User ${name} removed.`);
              await refresh();
            } catch (error) {
              say(`Could not remove the user: ${error.message}`, "error");
            }
          },
        },
        "Remove",
      );
      const created = entry.created_at ? String(entry.created_at).slice(0, 16).replace("T", " ") : "";
      body.append(
        h(
          "tr",
          { dataset: { user: name } },
          h("td", {}, name),
          h("td", {}, roleSelect),
          h("td", { class: "row-actions" }, newPassword, reset),
          h("td", { class: "muted nowrap" }, created),
          h("td", {}, remove),
        ),
      );
    }
  }

  main.append(
    h(
      "div",
      { class: "page" },
      h("h1", {}, "Users"),
      addForm,
      status,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "grid", "data-testid": "users-table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["User", "Role", "Password", "Created", ""].map((label) => h("th", { scope: "col" }, label)),
            ),
          ),
          body,
        ),
      ),
    ),
  );
  await refresh();
}
