// Every request of the UI: same origin, session cookie, and the X-Requested-With header that
// marks it as the UI's (the server then never sends a Basic challenge, and accepts
// state-changing requests made with the cookie: its CSRF guard).

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

const UNAUTHORIZED = "openpacs:unauthorized";

export function onUnauthorized(handler) {
  window.addEventListener(UNAUTHORIZED, handler);
}

/** The reason a failed response gives: FastAPI's {"detail": str | [{msg, loc}]}, or its text. */
export async function reasonOf(response) {
  const text = await response.text().catch(() => "");
  try {
    const body = JSON.parse(text);
    const detail = body && body.detail !== undefined ? body.detail : body;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((item) => [item.loc?.slice(1).join("."), item.msg].filter(Boolean).join(": ")).join("; ");
    }
    return JSON.stringify(detail);
  } catch {
    return text.trim().slice(0, 300) || response.statusText || `HTTP ${response.status}`;
  }
}

/** fetch() with the UI's header; throws ApiError on a non-2xx answer. */
export async function request(path, { method = "GET", json, body, headers = {}, signal, quiet401 = false } = {}) {
  const init = {
    method,
    headers: { "X-Requested-With": "XMLHttpRequest", ...headers },
    credentials: "same-origin",
    signal,
  };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  const response = await fetch(path, init);
  if (!response.ok) {
    const reason = await reasonOf(response);
    if (response.status === 401 && !quiet401) window.dispatchEvent(new CustomEvent(UNAUTHORIZED));
    throw new ApiError(response.status, reason);
  }
  return response;
}

/** A JSON request; resolves to the parsed body (null for 204). */
export async function api(path, options = {}) {
  const response = await request(path, { ...options, headers: { Accept: "application/json", ...(options.headers || {}) } });
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** Query string from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** Runs `task(item)` over items with at most `limit` at a time. */
export async function pool(items, limit, task) {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      await task(items[index], index);
    }
  });
  await Promise.all(workers);
}
