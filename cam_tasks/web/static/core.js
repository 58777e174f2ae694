// What every view shares: the API client (envelope, errors, token), what the server offers
// (from its OpenAPI document), the page's state, and text-only rendering helpers.

export const API = document.querySelector('meta[name="cam-api"]').content.replace(/\/+$/, "");
export const POLL_MS = 1500;
export const PAGE_SIZE = 50;
export const TERMINAL = new Set(["completed", "failed", "cancelled"]);
export const STATUSES = ["pending", "running", "completed", "failed", "cancelled"];
export const TOKEN_KEY = "cam_tasks.token";
export const LONG_POLL_S = 30;
export const RETRY_MS = 2000;
export const HOUR_BUCKETS = 12; // the overview's chart: 12 × 5 minutes
export const HOUR_MAX_TASKS = 1000; // the most tasks the overview reads to draw the last hour
export const MAX_LIMIT = 200; // the API's largest page
export const SLOW_POLL_MS = 5000; // views that add up many tasks are refreshed less often
export const SLOW_VIEWS = new Set(["overview", "assets"]);
// A bulk retry that can match nothing: answered 200 (count 0) to a token that may write, 403
// by the authentication middleware to one that may only read, before any handler runs.
export const WRITE_PROBE = { status: "failed", finished_before: "1970-01-01T00:00:00Z" };

export const $ = (id) => document.getElementById(id);

export const state = {
  routes: null, // Set of "METHOD /path" from openapi.json
  document: null,
  types: [], // registered task types (from the submit schema)
  providers: null,
  view: "overview",
  taskId: null,
  timer: null,
  authNeeded: false,
  readOnly: false,
  probed: false,
  tasks: { offset: 0, total: 0, rows: [], sort: "created_at", descending: true, filter: {} },
  assets: { offset: 0, total: 0 },
  detail: null, // {id, stop}
  editing: null, // name of the schedule in the form, null when creating
};

// -- the API --------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, error, message, details) {
    super(message);
    this.status = status;
    this.error = error;
    this.details = Array.isArray(details) ? details : [];
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function authHeaders(headers) {
  if (token()) headers.Authorization = `Bearer ${token()}`;
  return headers;
}

export async function api(path, { method = "GET", body } = {}) {
  if (state.authNeeded) throw new ApiError(401, "unauthorized", "a token is needed", []);
  const init = { method, headers: authHeaders({ Accept: "application/json" }), cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch (_) {
    throw new ApiError(0, "network", "the service cannot be reached", []);
  }
  let envelope = null;
  try {
    envelope = await response.json();
  } catch (_) {
    envelope = null;
  }
  if (!response.ok || !envelope || envelope.code !== 0) {
    const data = (envelope && envelope.data) || {};
    const message = (envelope && envelope.msg) || `HTTP ${response.status}`;
    const error = new ApiError(response.status, data.error || "http_error", message, data.details);
    if (response.status === 401) hooks.unauthorized(error);
    if (response.status === 403 && method !== "GET") hooks.forbidden(message);
    throw error;
  }
  return envelope.data;
}

export function has(method, path) {
  return state.routes !== null && state.routes.has(`${method} ${path}`);
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== "" && value !== null && value !== undefined) search.set(key, String(value));
  }
  return search.toString();
}

// -- rendering (text only) ------------------------------------------------------------------

export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "on") for (const [name, fn] of Object.entries(value)) node.addEventListener(name, fn);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child); // strings become text nodes
  }
  return node;
}

export const button = (text, cls, onClick, extra = {}) =>
  el("button", { type: "button", class: cls, text, on: { click: onClick }, ...extra });

export function percentText(value) {
  return `${(Math.round(value * 10) / 10).toString()} %`;
}

export function durationText(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86400)} d ${Math.round((seconds % 86400) / 3600)} h`;
}

export function timeText(rfc3339) {
  if (!rfc3339) return "";
  const date = new Date(rfc3339);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString();
}

export function shortId(id) {
  return id.length > 8 ? `…${id.slice(-8)}` : id;
}

export function taskLink(id, text) {
  return el("a", { href: `#/tasks/${encodeURIComponent(id)}`, class: "task-id", title: id, text: text || shortId(id) });
}

export function statusBadge(status) {
  return el("span", { class: `status status-${status}`, text: status });
}

export function notice(message, { error = false, details = [], taskId = null } = {}) {
  const box = $("notice");
  box.className = error ? "notice error" : "notice";
  box.replaceChildren(message);
  if (taskId) {
    box.dataset.taskId = taskId;
    box.append(" ", taskLink(taskId, "Open it"));
  } else delete box.dataset.taskId;
  if (details.length) {
    box.append(
      el(
        "ul",
        null,
        ...details.map((detail) => {
          const where = Array.isArray(detail.loc) ? detail.loc.join(".") : "";
          return el("li", { text: where ? `${where}: ${detail.msg}` : detail.msg || JSON.stringify(detail) });
        }),
      ),
    );
  }
  box.append(button("Dismiss", "dismiss", () => (box.hidden = true)));
  box.hidden = false;
}

export function failed(what, error) {
  notice(`${what}: ${error.message}`, { error: true, details: error.details });
}

export function setConnection(kind, text) {
  const badge = $("connection");
  badge.className = `connection ${kind}`;
  badge.textContent = text;
}

export function unavailable(view, missing) {
  const note = $(`${view}-unavailable`);
  if (note) note.hidden = !missing;
  const section = document.querySelector(`section[data-view="${view}"]`);
  for (const part of section.querySelectorAll(".table-wrap, form, .pager, .grid")) part.hidden = missing;
}

export function fillTypeSelect(select, selected) {
  select.replaceChildren(...state.types.map((type) => new Option(type, type, false, type === selected)));
}

// What the views call back into: the loop (app.js) sets these when it starts.
export const hooks = {
  refresh: () => {},
  unauthorized: (_error) => {},
  forbidden: (_message) => {},
};

/** Reload the open view now (after an action), and go on polling. */
export function refresh() {
  return hooks.refresh();
}
