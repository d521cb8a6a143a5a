// The login form: POST /api/session; the server's reason is shown on failure. With single
// sign-on configured (GET /api/oidc), a link to the provider's login too; a failed provider
// login comes back here with its reason in `sso_error`.

import { api } from "./api.js";
import { h, message } from "./dom.js";
import { login } from "./session.js";

export function loginPage({ onLogin, params }) {
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
  const ssoError = params?.get("sso_error");
  if (ssoError) status.replaceChildren(message(`Single sign-on failed: ${ssoError}`, "error"));
  api("/api/oidc", { quiet401: true })
    .then((info) => {
      if (info?.enabled) {
        submit.after(h("a", { class: "button secondary sso", href: "/api/oidc/login", "data-testid": "sso-login" }, "Sign in with single sign-on"));
      }
    })
    .catch(() => {});
  setTimeout(() => username.focus(), 0);
  return h("main", { id: "main", class: "login-page" }, form);
}
