// What every part of the web app shares: the DOM shortcuts, the session, the API client (with a
// silent token refresh), the hash router's table, and a small status line for messages.
export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
export const view = $("#view");
export const state = { token: localStorage.getItem("tonearm.access"), refresh: localStorage.getItem("tonearm.refresh"), me: null };
// "auth": logged in or out (detail: state.me); "queue": the player's queue changed.
export const bus = new EventTarget();

export function esc(s) { return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]); }
export function img(images, size) { if (!images || !images.length) return ""; const fit = images.filter((i) => i.width >= size); return (fit.length ? fit[fit.length - 1] : images[0]).url; }
export function fmt(ms) { const s = Math.round((ms || 0) / 1000); return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`; }
export const names = (xs) => (xs || []).map((a) => a.name).join(", ");

// An API refusal: `status` (HTTP), `reason` (the error object's reason, e.g. skip_limit) and the body.
export class ApiError extends Error {
  constructor(status, body, fallback) {
    super(body?.error?.message || body?.error_description || fallback || `HTTP ${status}`);
    this.status = status; this.body = body; this.reason = body?.error?.reason || null;
  }
}

let refreshing = null;
export async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  const hadSession = !!(state.token || state.refresh);
  if (state.token) headers.Authorization = "Bearer " + state.token;
  if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; opts = Object.assign({}, opts, { body: JSON.stringify(opts.json) }); }
  let res;
  try {
    res = await fetch(path, Object.assign({}, opts, { headers }));
  } catch (err) {
    throw new ApiError(0, null, "The server cannot be reached; check your connection.");
  }
  if (res.status === 401 && state.refresh && !opts._retried) {
    // An expired access token: one refresh (shared by concurrent calls), then the call again.
    refreshing = refreshing || refresh().finally(() => { refreshing = null; });
    if (await refreshing) return api(path, Object.assign({}, opts, { _retried: true }));
  }
  const body = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (res.status === 401 && hadSession) sessionLost();
  if (!res.ok) throw new ApiError(res.status, body, res.statusText);
  return body;
}

export async function token(form) {
  const res = await fetch("/api/token", { method: "POST", body: new URLSearchParams(form) });
  const body = await res.json();
  if (!res.ok) throw new ApiError(res.status, body, "login failed");
  state.token = body.access_token; state.refresh = body.refresh_token;
  localStorage.setItem("tonearm.access", state.token); localStorage.setItem("tonearm.refresh", state.refresh);
}
async function refresh() {
  try { await token({ grant_type: "refresh_token", refresh_token: state.refresh }); return true; }
  catch (err) { if (err.status) logoutLocal(); return false; }  // a network failure keeps the session
}
export function logoutLocal() { state.token = state.refresh = state.me = null; localStorage.removeItem("tonearm.access"); localStorage.removeItem("tonearm.refresh"); }

// The session cannot be renewed: back to the login page, and back here after it (the player's
// queue is kept in localStorage, so nothing is lost).
function sessionLost() {
  logoutLocal();
  bus.dispatchEvent(new CustomEvent("auth", { detail: null }));
  toast("Your session has ended; log in again to go on.", "error");
  if (!/^#\/(login|signup)/.test(location.hash)) { sessionStorage.setItem("tonearm.after-login", location.hash); location.hash = "#/login"; }
}

// page name -> async (arg, rest) => void; modules add their own pages.
export const routes = {};
// Navigation count: a page notes it when it starts and draws only if it is still the latest, so a
// slow page never draws over the one the listener went to next.
export const nav = { seq: 0 };
export function needLogin() {
  if (state.me) return false;
  sessionStorage.setItem("tonearm.after-login", location.hash);
  location.hash = "#/login";
  return true;
}

// A polite status message at the bottom of the screen (errors are announced at once).
let toastTimer = null;
export function toast(message, kind = "info") {
  const el = $("#toast");
  if (!el) return;
  el.textContent = message;
  el.className = kind;
  el.setAttribute("role", kind === "error" ? "alert" : "status");
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 6000);
}

// Who is logged in (GET /v1/me); every part that shows the plan or the name listens for "auth".
export async function loadMe() {
  state.me = null;
  if (state.token) {
    try { state.me = await api("/v1/me"); } catch (err) { if (err.status === 401) logoutLocal(); }
  }
  bus.dispatchEvent(new CustomEvent("auth", { detail: state.me }));
  return state.me;
}
