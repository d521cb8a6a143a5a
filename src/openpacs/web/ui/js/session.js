// Who is logged in, and what their role lets the UI offer (the server checks again).

import { api } from "./api.js";

let current = null;

export function user() {
  return current;
}

/** read: admin and user; store: admin and uploader; delete and admin: admin only. */
export function can(permission) {
  if (!current) return false;
  const role = current.role;
  if (role === "admin") return true;
  if (permission === "read") return role === "user";
  if (permission === "store") return role === "uploader";
  return false;
}

export async function restore() {
  try {
    current = await api("/api/session", { quiet401: true });
  } catch {
    current = null;
  }
  return current;
}

export async function login(username, password) {
  current = await api("/api/session", { method: "POST", json: { username, password }, quiet401: true });
  return current;
}

export async function logout() {
  try {
    await api("/api/session", { method: "DELETE", quiet401: true });
  } finally {
    current = null;
  }
}

export function forget() {
  current = null;
}
