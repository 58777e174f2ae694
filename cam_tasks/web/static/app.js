// The cam_tasks dashboard: plain JavaScript, no build step, no dependencies.
//
// Everything goes through the public HTTP API (its prefix comes from <meta name="cam-api">) and
// reads its envelope {code, msg, data}. Task data is only ever put into the page as text
// (textContent, attribute values, <option> labels): never as HTML.
//
// The page is a set of views chosen by the URL's fragment (#/overview, #/tasks, #/tasks/<id>,
// #/schedules, #/queues, #/assets, #/submit), so every view, and every task, has a link of its
// own. What the server offers is read once from its OpenAPI document (public, like the page):
// a view whose routes are missing says so instead of calling them, and the submit form is
// generated from the parameter schema of each registered task type.
//
// Keeping it live: the open view is reloaded every POLL_MS while the tab is visible. The task
// opened at #/tasks/<id> follows its server-sent events, or, when an API token is set
// (EventSource cannot send an Authorization header), a long poll with If-None-Match.
//
// Authentication: a 401 stops every request, says what happened and asks for a token (kept in
// this tab's session storage only); a 403 on a write, or the write probe below, marks the token
// read-only and hides every write action (elements with class "write").
import {
  API, POLL_MS, PAGE_SIZE, TOKEN_KEY, RETRY_MS, SLOW_POLL_MS, SLOW_VIEWS, WRITE_PROBE, state,
  token, api, has, query, notice, setConnection, fillTypeSelect, hooks, $,
} from "./core.js";
import { loadOverview } from "./overview.js";
import {
  readTaskFilter, hasQueueFilter, writeTaskFilter, rememberType, loadTasks, bulkRetry,
  bulkDelete,
} from "./tasks.js";
import { openTask, closeTask, loadTask } from "./task.js";
import { loadSchedules, editSchedule, previewCron, saveSchedule } from "./schedules.js";
import { loadQueues, loadAssets } from "./inventory.js";
import { loadSubmitForm, buildFields, submit } from "./submit.js";

// -- authentication -------------------------------------------------------------------------

function needToken(error) {
  if (state.authNeeded) return;
  state.authNeeded = true;
  stopPolling();
  const refused = token() !== "";
  $("auth-message").textContent = refused
    ? `The server refused the token in use (HTTP 401: ${error.message}). Nothing is refreshed until you give another one.`
    : `This server requires an API token (HTTP 401: ${error.message}). Nothing is refreshed until you give one.`;
  $("auth").hidden = false;
  setConnection("locked", "token needed");
  $("token").focus();
}

function becomeReadOnly(message) {
  if (state.readOnly) return;
  state.readOnly = true;
  document.body.classList.add("read-only");
  const role = $("role");
  role.textContent = "read-only";
  role.title = message || "this token may only read";
  role.hidden = false;
  notice(`This token may only read (${message}): write actions are hidden.`);
  if (state.view === "submit") location.hash = "#/overview";
}

async function probeWrites() {
  if (state.probed || !has("POST", "/tasks/retry")) return;
  state.probed = true;
  try {
    await api("/tasks/retry", { method: "POST", body: WRITE_PROBE });
  } catch (_) {
    // 403 made the page read-only (in api()); anything else leaves the actions shown, and the
    // action itself will say what is wrong.
  }
}

function useToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
  $("token").value = "";
  $("auth").hidden = true;
  state.authNeeded = false;
  state.readOnly = false;
  state.probed = false;
  document.body.classList.remove("read-only");
  $("role").hidden = true;
  start();
}

// -- the loop -------------------------------------------------------------------------------

function stopPolling() {
  if (state.timer !== null) clearTimeout(state.timer);
  state.timer = null;
}

async function refresh() {
  stopPolling();
  try {
    await VIEWS[state.view].load();
    await probeWrites();
    setConnection("live", "live");
  } catch (error) {
    if (state.authNeeded) return; // needToken() said so and stopped
    setConnection("offline", `offline (${error.message}), retrying`);
  }
  if (!state.authNeeded) state.timer = setTimeout(refresh, SLOW_VIEWS.has(state.view) ? SLOW_POLL_MS : POLL_MS);
}

// -- views and routing ----------------------------------------------------------------------

const VIEWS = {
  overview: { load: loadOverview },
  tasks: { load: loadTasks },
  task: { load: loadTask },
  schedules: { load: loadSchedules },
  queues: { load: loadQueues },
  assets: { load: loadAssets },
  submit: { load: async () => loadSubmitForm() },
};

function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, search] = hash.split("?");
  const parts = path.split("/").filter(Boolean);
  let view = parts[0] || "overview";
  if (view === "tasks" && parts[1]) {
    view = "task";
    state.taskId = decodeURIComponent(parts[1]);
  }
  if (!VIEWS[view] || (view === "submit" && state.readOnly)) view = "overview";
  if (view !== "task") closeTask();
  if (view === "tasks" && search !== undefined) {
    const given = Object.fromEntries(new URLSearchParams(search));
    writeTaskFilter(given);
    state.tasks.filter = readTaskFilter();
    state.tasks.offset = 0;
  }
  state.view = view;
  document.body.dataset.view = view;
  for (const section of document.querySelectorAll("section.view")) section.hidden = section.dataset.view !== view;
  for (const link of document.querySelectorAll("nav a")) {
    const current = link.dataset.nav === view || (view === "task" && link.dataset.nav === "tasks");
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (view === "task") openTask(state.taskId);
  if (!state.authNeeded && state.routes !== null) refresh();
}

async function start() {
  setConnection("", "connecting…");
  if (state.routes === null) {
    try {
      // The document is public (like this page): it says what this server offers.
      const response = await fetch(`${API}/openapi.json`, { cache: "no-store" });
      const doc = await response.json();
      state.document = doc;
      state.routes = new Set();
      for (const [path, item] of Object.entries(doc.paths || {})) {
        for (const method of Object.keys(item)) state.routes.add(`${method.toUpperCase()} ${path}`);
      }
      const union = doc.components.schemas.SubmitTaskRequest;
      state.types = Object.keys((union && union.discriminator && union.discriminator.mapping) || {}).sort();
    } catch (error) {
      setConnection("offline", "offline (cannot read the API description), retrying");
      state.timer = setTimeout(start, RETRY_MS);
      return;
    }
  }
  for (const type of state.types) rememberType(type);
  if (state.editing === null) fillTypeSelect($("schedule-type"), $("schedule-type").value || state.types[0]);
  $("filter-queue-field").hidden = !hasQueueFilter();
  if (has("GET", "/providers") && state.providers === null) {
    try {
      state.providers = (await api("/providers")).providers;
    } catch (_) {
      if (state.authNeeded) return;
    }
  }
  route();
}

// -- wiring ---------------------------------------------------------------------------------

hooks.refresh = refresh;
hooks.unauthorized = needToken;
hooks.forbidden = becomeReadOnly;

window.addEventListener("hashchange", route);
document.addEventListener("visibilitychange", () => {
  if (document.hidden) stopPolling();
  else if (!state.authNeeded && state.routes !== null) refresh();
});
$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  useToken($("token").value.trim());
});
$("token-forget").addEventListener("click", () => useToken(""));
$("token-change").addEventListener("click", () => {
  $("auth-message").textContent = token()
    ? "A token is in use in this tab. Give another one, or forget it."
    : "No token is in use: requests go without one. Give one if this server asks for it.";
  $("auth").hidden = false;
  $("token").focus();
});
$("task-filters").addEventListener("submit", (event) => {
  event.preventDefault();
  const filter = readTaskFilter();
  location.hash = `#/tasks?${query({ ...filter })}`;
  route(); // the same hash does not fire hashchange
});
for (const control of [$("filter-type"), $("filter-status")]) {
  control.addEventListener("change", () => $("task-filters").requestSubmit());
}
for (const head of document.querySelectorAll("#tasks .sort")) {
  head.addEventListener("click", () => {
    if (state.tasks.sort === head.dataset.sort) state.tasks.descending = !state.tasks.descending;
    else [state.tasks.sort, state.tasks.descending] = [head.dataset.sort, head.dataset.sort === "created_at"];
    refresh();
  });
}
$("page-prev").addEventListener("click", () => {
  state.tasks.offset = Math.max(0, state.tasks.offset - PAGE_SIZE);
  refresh();
});
$("page-next").addEventListener("click", () => {
  state.tasks.offset += PAGE_SIZE;
  refresh();
});
$("bulk-retry").addEventListener("click", bulkRetry);
$("bulk-delete").addEventListener("click", bulkDelete);
$("schedule-form").addEventListener("submit", saveSchedule);
$("schedule-cancel-edit").addEventListener("click", () => editSchedule(null));
$("schedule-expression").addEventListener("input", previewCron);
$("schedule-timezone").addEventListener("input", previewCron);
$("asset-filters").addEventListener("submit", (event) => {
  event.preventDefault();
  state.assets.offset = 0;
  refresh();
});
$("asset-prev").addEventListener("click", () => {
  state.assets.offset = Math.max(0, state.assets.offset - PAGE_SIZE);
  refresh();
});
$("asset-next").addEventListener("click", () => {
  state.assets.offset += PAGE_SIZE;
  refresh();
});
$("submit-type").addEventListener("change", () => buildFields($("submit-type").value));
$("submit-form").addEventListener("submit", submit);

editSchedule(null);
start();
