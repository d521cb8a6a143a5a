// Known remote AEs (admin): add, edit, remove, and a C-ECHO test, through /api/remotes.

import { api } from "../api.js";
import { clear, confirmDialog, h, message } from "../dom.js";
import { listOf } from "./users.js";

function remoteForm(remote, onSave, onCancel) {
  const aet = h("input", {
    required: true,
    maxlength: 16,
    value: remote?.aet || "",
    "aria-label": "AE title",
    placeholder: "AE title",
    readonly: Boolean(remote),
  });
  const host = h("input", { required: true, value: remote?.host || "", "aria-label": "Host", placeholder: "host" });
  const port = h("input", { required: true, type: "number", min: 1, max: 65535, value: remote?.port || 104, "aria-label": "Port" });
  const tls = h("input", { type: "checkbox", checked: Boolean(remote?.tls), "aria-label": "TLS" });
  return h(
    "form",
    {
      class: "inline-form",
      onsubmit: (event) => {
        event.preventDefault();
        onSave({ aet: aet.value.trim(), host: host.value.trim(), port: Number(port.value), tls: tls.checked });
      },
    },
    h("label", {}, "AE title", aet),
    h("label", {}, "Host", host),
    h("label", {}, "Port", port),
    h("label", { class: "check" }, tls, " TLS"),
    h("button", { class: "primary", type: "submit" }, remote ? "Save" : "Add remote"),
    onCancel ? h("button", { class: "secondary", type: "button", onclick: onCancel }, "Cancel") : null,
  );
}

export async function remotesPage(main) {
  document.title = "Remote AEs · openpacs";
  const status = h("div", { class: "action-status", "aria-live": "polite" });
  const say = (text, kind = "ok") => status.replaceChildren(message(text, kind));
  const body = h("tbody");

  const add = remoteForm(null, async (remote) => {
    try {
      await api("/api/remotes", { method: "POST", json: remote });
      say(`${remote.aet} added.`);
      add.reset();
      await refresh();
    } catch (error) {
      say(`Could not add ${remote.aet}: ${error.message}`, "error");
    }
  });

  async function refresh() {
    let remotes;
    try {
      remotes = listOf(await api("/api/remotes"));
    } catch (error) {
      say(`Could not list the remote AEs: ${error.message}`, "error");
      return;
    }
    clear(body);
    for (const remote of remotes) {
      const echoResult = h("span", { class: "muted", "data-testid": `echo-${remote.aet}` });
      const row = h(
        "tr",
        { dataset: { aet: remote.aet } },
        h("td", {}, remote.aet),
        h("td", {}, remote.host),
        h("td", { class: "number" }, remote.port),
        h("td", {}, remote.tls ? "yes" : "no"),
        h(
          "td",
          { class: "row-actions" },
          h(
            "button",
            {
              class: "secondary",
              onclick: async () => {
                echoResult.textContent = "echo…";
                echoResult.className = "muted";
                try {
                  const answer = await api(`/api/remotes/${encodeURIComponent(remote.aet)}/echo`, { method: "POST" });
                  const ok = answer?.ok ?? answer?.success ?? (answer?.status === undefined || answer?.status === 0);
                  const ms = answer?.elapsed_ms ?? answer?.milliseconds ?? (answer?.seconds !== undefined ? answer.seconds * 1000 : undefined);
                  echoResult.textContent = ok
                    ? `✓ answered${ms !== undefined ? ` in ${Math.round(ms)} ms` : ""}`
                    : `✗ ${answer?.error || answer?.detail || `status ${answer?.status}`}`;
                  echoResult.className = ok ? "ok" : "error";
                } catch (error) {
                  echoResult.textContent = `✗ ${error.message}`;
                  echoResult.className = "error";
                }
              },
            },
            "C-ECHO",
          ),
          echoResult,
        ),
        remote.source === "config"
          ? h("td", { class: "muted", title: "Set in the configuration file" }, "from the configuration")
          : h(
              "td",
              { class: "row-actions" },
              h(
                "button",
                {
                  class: "secondary",
                  onclick: () => {
                    const editor = h(
                      "tr",
                      {},
                      h(
                        "td",
                        { colspan: 6 },
                        remoteForm(
                          remote,
                          async (changed) => {
                            try {
                              await api(`/api/remotes/${encodeURIComponent(remote.aet)}`, { method: "PUT", json: changed });
                              say(`${remote.aet} saved.`);
                              await refresh();
                            } catch (error) {
                              say(`Could not save ${remote.aet}: ${error.message}`, "error");
                            }
                          },
                          () => editor.remove(),
                        ),
                      ),
                    );
                    row.after(editor);
                  },
                },
                "Edit",
              ),
              h(
                "button",
                {
                  class: "danger",
                  onclick: async () => {
                    if (
                      !(await confirmDialog({
                        title: `Remove ${remote.aet}?`,
                        body: "openpacs will no longer send to or accept moves for this AE.",
                        confirm: "Remove",
                        danger: true,
                      }))
                    )
                      return;
                    try {
                      await api(`/api/remotes/${encodeURIComponent(remote.aet)}`, { method: "DELETE" });
                      say(`${remote.aet} removed.`);
                      await refresh();
                    } catch (error) {
                      say(`Could not remove ${remote.aet}: ${error.message}`, "error");
                    }
                  },
                },
                "Remove",
              ),
            ),
      );
      body.append(row);
    }
    if (!remotes.length) body.append(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No remote AEs yet.")));
  }

  main.append(
    h(
      "div",
      { class: "page" },
      h("h1", {}, "Remote AEs"),
      add,
      status,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "grid", "data-testid": "remotes-table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["AE title", "Host", "Port", "TLS", "Test", ""].map((label) => h("th", { scope: "col" }, label)),
            ),
          ),
          body,
        ),
      ),
    ),
  );
  await refresh();
}
