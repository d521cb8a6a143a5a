// The login form: POST /api/session; the server's reason is shown on failure.

import { h, message } from "./dom.js";
import { login } from "./session.js";

export function loginPage({ onLogin }) {
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true, autofocus: true });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const status = h("div", { class: "login-status" });
  const submit = h("button", { class: "primary", type: "submit" }, "Log in");
  const form = h(
    "form",
    {
      class: "login-card",
      "aria-labelledby": "login-title",
      onsubmit: async (event) => {
        event.preventDefault();
        submit.disabled = true;
        status.replaceChildren();
        try {
          await login(username.value.trim(), password.value);
          onLogin();
        } catch (error) {
          const reason = error.status === 401 ? error.detail || "Wrong user name or password." : error.message;
          status.replaceChildren(message(reason, "error"));
          password.select();
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("h1", { id: "login-title" }, "openpacs"),
    h("p", { class: "muted" }, "Medical image archive"),
    h("label", { for: "username" }, "User name"),
    username,
    h("label", { for: "password" }, "Password"),
    password,
    submit,
    status,
  );
  setTimeout(() => username.focus(), 0);
  return h("main", { id: "main", class: "login-page" }, form);
}
