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
"use strict";

(() => {
  const API = document.querySelector('meta[name="cam-api"]').content.replace(/\/+$/, "");
  const POLL_MS = 1500;
  const PAGE_SIZE = 50;
  const TERMINAL = new Set(["completed", "failed", "cancelled"]);
  const STATUSES = ["pending", "running", "completed", "failed", "cancelled"];
  const TOKEN_KEY = "cam_tasks.token";
  const LONG_POLL_S = 30;
  const RETRY_MS = 2000;
  const HOUR_BUCKETS = 12; // the overview's chart: 12 × 5 minutes
  const HOUR_MAX_TASKS = 1000; // the most tasks the overview reads to draw the last hour
  const MAX_LIMIT = 200; // the API's largest page
  const SLOW_POLL_MS = 5000; // views that add up many tasks are refreshed less often
  const SLOW_VIEWS = new Set(["overview", "assets"]);
  // A bulk retry that can match nothing: answered 200 (count 0) to a token that may write, 403
  // by the authentication middleware to one that may only read, before any handler runs.
  const WRITE_PROBE = { status: "failed", finished_before: "1970-01-01T00:00:00Z" };

  const $ = (id) => document.getElementById(id);

  const state = {
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

  class ApiError extends Error {
    constructor(status, error, message, details) {
      super(message);
      this.status = status;
      this.error = error;
      this.details = Array.isArray(details) ? details : [];
    }
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function authHeaders(headers) {
    if (token()) headers.Authorization = `Bearer ${token()}`;
    return headers;
  }

  async function api(path, { method = "GET", body } = {}) {
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
      if (response.status === 401) needToken(error);
      if (response.status === 403 && method !== "GET") becomeReadOnly(message);
      throw error;
    }
    return envelope.data;
  }

  function has(method, path) {
    return state.routes !== null && state.routes.has(`${method} ${path}`);
  }

  function query(params) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== "" && value !== null && value !== undefined) search.set(key, String(value));
    }
    return search.toString();
  }

  // -- rendering (text only) ------------------------------------------------------------------

  function el(tag, props, ...children) {
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

  const button = (text, cls, onClick, extra = {}) =>
    el("button", { type: "button", class: cls, text, on: { click: onClick }, ...extra });

  function percentText(value) {
    return `${(Math.round(value * 10) / 10).toString()} %`;
  }

  function durationText(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 60) return `${Math.ceil(seconds)} s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
    return `${Math.floor(seconds / 86400)} d ${Math.round((seconds % 86400) / 3600)} h`;
  }

  function timeText(rfc3339) {
    if (!rfc3339) return "";
    const date = new Date(rfc3339);
    return Number.isNaN(date.getTime()) ? "" : date.toLocaleString();
  }

  function shortId(id) {
    return id.length > 8 ? `…${id.slice(-8)}` : id;
  }

  function taskLink(id, text) {
    return el("a", { href: `#/tasks/${encodeURIComponent(id)}`, class: "task-id", title: id, text: text || shortId(id) });
  }

  function statusBadge(status) {
    return el("span", { class: `status status-${status}`, text: status });
  }

  function notice(message, { error = false, details = [], taskId = null } = {}) {
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

  function failed(what, error) {
    notice(`${what}: ${error.message}`, { error: true, details: error.details });
  }

  function setConnection(kind, text) {
    const badge = $("connection");
    badge.className = `connection ${kind}`;
    badge.textContent = text;
  }

  function unavailable(view, missing) {
    const note = $(`${view}-unavailable`);
    if (note) note.hidden = !missing;
    const section = document.querySelector(`section[data-view="${view}"]`);
    for (const part of section.querySelectorAll(".table-wrap, form, .pager, .grid")) part.hidden = missing;
  }

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

  // -- overview -------------------------------------------------------------------------------

  async function loadOverview() {
    const counts = await Promise.all(
      STATUSES.map((status) => api(`/tasks?${query({ status, limit: 1 })}`).then((data) => data.total)),
    );
    const cards = STATUSES.map((status, i) =>
      el(
        "a",
        { class: `card status-${status}`, href: `#/tasks?status=${status}`, "data-status": status },
        el("span", { class: "count", text: String(counts[i]) }),
        el("span", { class: "label", text: status }),
      ),
    );
    const pending = counts[0];
    let oldest = "none";
    if (pending > 0) {
      const page = await api(`/tasks?${query({ status: "pending", offset: pending - 1, limit: 1 })}`);
      const task = page.tasks[0];
      if (task) oldest = durationText((Date.now() - Date.parse(task.created_at)) / 1000);
    }
    cards.push(
      el("div", { class: "card", id: "oldest-pending" }, el("span", { class: "count", text: oldest }), el("span", { class: "label", text: "oldest pending" })),
    );
    $("status-cards").replaceChildren(...cards);

    await Promise.all([loadHour(), loadWorkers(), loadOverviewQueues()]);
  }

  // The last hour, from the tasks themselves: those written in the hour (updated_since, an
  // indexed range), bucketed by when they finished. Read page by page up to HOUR_MAX_TASKS; past
  // that the summary says it counted only the newest. (GET /tasks/stats aggregates in the store,
  // but by creation time, and not every store can run its aggregation.)
  async function loadHour() {
    const bucketMs = 5 * 60000;
    const end = Math.ceil(Date.now() / 60000) * 60000;
    const start = end - HOUR_BUCKETS * bucketMs;
    const since = new Date(start).toISOString();
    const tasks = [];
    let total = 0;
    do {
      const page = await api(`/tasks?${query({ updated_since: since, offset: tasks.length, limit: MAX_LIMIT })}`);
      total = page.total;
      tasks.push(...page.tasks);
      if (!page.tasks.length) break;
    } while (tasks.length < total && tasks.length < HOUR_MAX_TASKS);
    const buckets = Array.from({ length: HOUR_BUCKETS }, (_, i) => ({ since: start + i * bucketMs, completed: 0, failed: 0 }));
    for (const task of tasks) {
      if (task.status !== "completed" && task.status !== "failed") continue;
      const index = Math.floor((Date.parse(task.completed_at) - start) / bucketMs);
      if (index >= 0 && index < HOUR_BUCKETS) buckets[index][task.status] += 1;
    }
    const completed = buckets.reduce((sum, b) => sum + b.completed, 0);
    const failures = buckets.reduce((sum, b) => sum + b.failed, 0);
    const finished = completed + failures;
    const rate = finished ? `${Math.round((failures / finished) * 1000) / 10} %` : "n/a";
    const partial = total > tasks.length ? ` (counted from the newest ${tasks.length} of ${total} tasks written)` : "";
    const summary = $("hour-summary");
    summary.textContent = `${finished} finished (${(finished / 60).toFixed(1)}/min), ${failures} failed; failure rate ${rate}${partial}`;
    summary.dataset.finished = String(finished);
    $("hour-chart").replaceChildren(chart(buckets, bucketMs));
  }

  function chart(buckets, bucketMs) {
    const NS = "http://www.w3.org/2000/svg";
    const svg = (tag, attrs) => {
      const node = document.createElementNS(NS, tag);
      for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
      return node;
    };
    const width = 240;
    const height = 60;
    const max = Math.max(1, ...buckets.map((b) => b.completed + b.failed));
    const barWidth = width / buckets.length;
    const root = svg("svg", { viewBox: `0 0 ${width} ${height + 12}`, class: "bars", "aria-hidden": "true" });
    buckets.forEach((b, i) => {
      const x = i * barWidth + 1;
      const total = ((b.completed + b.failed) / max) * height;
      const bad = (b.failed / max) * height;
      const bar = svg("rect", { x, y: height - total, width: barWidth - 2, height: total, class: "bar" });
      const title = svg("title", {});
      const from = new Date(b.since).toLocaleTimeString();
      const to = new Date(b.since + bucketMs).toLocaleTimeString();
      title.textContent = `${from}–${to}: ${b.completed} completed, ${b.failed} failed`;
      bar.append(title);
      root.append(bar, svg("rect", { x, y: height - bad, width: barWidth - 2, height: bad, class: "bar-failed" }));
    });
    const label = svg("text", { x: 0, y: height + 11, class: "axis" });
    label.textContent = "60 min ago";
    const now = svg("text", { x: width, y: height + 11, class: "axis", "text-anchor": "end" });
    now.textContent = "now";
    root.append(label, now);
    return root;
  }

  async function loadWorkers() {
    if (!has("GET", "/queue/stats")) {
      $("workers").replaceChildren(el("dd", { text: "Not available on this server." }));
      return;
    }
    const data = await api("/queue/stats");
    const facts = [
      ["Instance", data.owner],
      ["Workers busy", `${data.workers.busy} / ${data.workers.total}`],
      ["Claimed, waiting", `${data.buffer.size} / ${data.buffer.capacity}`],
      ["Completed (last min)", `${data.throughput.completed} (${data.throughput.per_s.toFixed(2)}/s)`],
      ["State", data.running ? "running" : "stopped"],
    ];
    $("workers").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  }

  async function loadOverviewQueues() {
    const box = $("overview-queues");
    if (!has("GET", "/queues")) {
      box.replaceChildren(el("p", { class: "unavailable", text: "Queues are not available on this server." }));
      return;
    }
    const data = await api("/queues");
    box.replaceChildren(
      el(
        "table",
        { class: "compact" },
        el("thead", null, el("tr", null, ...["Queue", "Pending", "Running", ""].map((h) => el("th", { scope: "col", text: h })))),
        el(
          "tbody",
          null,
          ...data.queues.map((q) =>
            el(
              "tr",
              { "data-queue": q.name },
              el("td", null, el("a", { href: `#/tasks?queue=${encodeURIComponent(q.name)}`, text: q.name })),
              el("td", { text: String(q.pending) }),
              el("td", { text: String(q.running) }),
              el("td", { text: q.paused ? "paused" : "" }),
            ),
          ),
        ),
      ),
    );
  }

  // -- tasks ----------------------------------------------------------------------------------

  function readTaskFilter() {
    return {
      type: $("filter-type").value,
      status: $("filter-status").value,
      queue: hasQueueFilter() ? $("filter-queue").value.trim() : "",
      created_by: $("filter-created-by").value.trim(),
      id: $("filter-id").value.trim(),
    };
  }

  function hasQueueFilter() {
    const op = state.document && state.document.paths["/tasks"] && state.document.paths["/tasks"].get;
    return Boolean(op && (op.parameters || []).some((p) => p.name === "queue"));
  }

  function writeTaskFilter(filter) {
    for (const type of [filter.type].filter(Boolean)) rememberType(type);
    $("filter-type").value = filter.type || "";
    $("filter-status").value = filter.status || "";
    $("filter-queue").value = filter.queue || "";
    $("filter-created-by").value = filter.created_by || "";
    $("filter-id").value = filter.id || "";
  }

  function rememberType(type) {
    for (const select of [$("filter-type")]) {
      if (![...select.options].some((option) => option.value === type)) select.append(new Option(type, type));
    }
  }

  const SORTS = {
    id: (t) => t.id,
    type: (t) => t.type,
    status: (t) => STATUSES.indexOf(t.status),
    progress: (t) => t.progress,
    created_at: (t) => t.created_at,
  };

  function sorted(tasks) {
    const key = SORTS[state.tasks.sort];
    const sign = state.tasks.descending ? -1 : 1;
    // Ties (tasks created in the same millisecond) fall back to the id, time-ordered too.
    const order = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
    return [...tasks].sort((a, b) => sign * (order(key(a), key(b)) || order(a.id, b.id)));
  }

  async function loadTasks() {
    const filter = state.tasks.filter;
    let tasks;
    let total;
    if (/^[0-9a-f-]{32,36}$/i.test(filter.id)) {
      // A whole id: that task, whatever the other filters.
      try {
        tasks = [await api(`/tasks/${encodeURIComponent(filter.id)}`)];
      } catch (error) {
        if (error.status !== 404) throw error;
        tasks = [];
      }
      total = tasks.length;
    } else {
      const data = await api(
        `/tasks?${query({ type: filter.type, status: filter.status, queue: filter.queue, created_by: filter.created_by, offset: state.tasks.offset, limit: PAGE_SIZE })}`,
      );
      // Part of an id narrows the page that was fetched (the API has no search on ids).
      tasks = filter.id ? data.tasks.filter((t) => t.id.includes(filter.id.toLowerCase())) : data.tasks;
      total = data.total;
    }
    tasks.forEach((task) => rememberType(task.type));
    state.tasks.total = total;
    renderTasks(sorted(tasks));
  }

  function renderTasks(tasks) {
    const rows = $("task-rows");
    const existing = new Map([...rows.children].map((row) => [row.dataset.taskId, row]));
    const fresh = tasks.map((task) => {
      const key = JSON.stringify(task);
      const row = existing.get(task.id);
      // Unchanged rows are kept, so that focus and a half-done click survive a refresh.
      return row && row.dataset.key === key ? row : renderRow(task, key);
    });
    if (fresh.length !== rows.children.length || fresh.some((row, i) => rows.children[i] !== row)) rows.replaceChildren(...fresh);
    $("empty").hidden = tasks.length > 0;
    const first = tasks.length ? state.tasks.offset + 1 : 0;
    const filter = state.tasks.filter;
    $("summary").textContent = filter.id
      ? `${tasks.length} shown (id search on this page)`
      : `${first}-${state.tasks.offset + tasks.length} of ${state.tasks.total}`;
    $("page-prev").disabled = state.tasks.offset === 0;
    $("page-next").disabled = state.tasks.offset + PAGE_SIZE >= state.tasks.total;
    for (const head of document.querySelectorAll("#tasks .sort")) {
      if (head.dataset.sort === state.tasks.sort) head.setAttribute("aria-sort", state.tasks.descending ? "descending" : "ascending");
      else head.removeAttribute("aria-sort");
    }
    const bulk = bulkFilter();
    $("bulk-retry").disabled = !has("POST", "/tasks/retry");
    $("bulk-delete").disabled = !has("DELETE", "/tasks");
    $("bulk-note").textContent = has("POST", "/tasks/retry") ? describeBulk(bulk) : "Bulk actions are not available on this server.";
  }

  function renderRow(task, key) {
    const actions = el("td", { class: "actions write" }, ...taskActions(task));
    const steps = task.total_steps ? `${task.step ?? 0}/${task.total_steps}` : "";
    const status = el("td", null, statusBadge(task.status));
    if (task.cancel_requested && !TERMINAL.has(task.status)) status.append(el("span", { class: "flag", text: "cancel requested" }));
    return el(
      "tr",
      { "data-task-id": task.id, "data-status": task.status, "data-key": key },
      el("td", null, taskLink(task.id)),
      el("td", { text: task.type }),
      status,
      el(
        "td",
        null,
        el(
          "div",
          { class: "progress-cell" },
          el("progress", { max: "100", value: String(task.progress) }),
          el("span", { class: "percent", text: percentText(task.progress) }),
          el("span", { class: "steps", text: steps }),
        ),
      ),
      messageCell(task),
      el("td", { class: "eta wide", text: durationText(task.eta_s) }),
      el("td", { class: "created", text: timeText(task.created_at) }),
      actions,
    );
  }

  function messageCell(task) {
    if (task.status === "failed" && task.error) {
      const text = `${task.error.type}: ${task.error.message}`;
      return el("td", { class: "message wide failure", title: text, text });
    }
    return el("td", { class: "message wide", title: task.message, text: task.message });
  }

  function taskActions(task) {
    const out = [];
    if (!TERMINAL.has(task.status) && !task.cancel_requested) out.push(button("Cancel", "cancel", () => act(task.id, "cancel")));
    if (task.status === "failed" || task.status === "cancelled") out.push(button("Retry", "retry", () => act(task.id, "retry")));
    if (TERMINAL.has(task.status)) out.push(button("Delete", "delete", () => act(task.id, "delete")));
    return out;
  }

  async function act(id, action) {
    try {
      if (action === "delete") {
        if (!confirm(`Delete task ${id}?`)) return;
        await api(`/tasks/${encodeURIComponent(id)}`, { method: "DELETE" });
        notice(`Task ${id} deleted.`);
        if (state.view === "task") location.hash = "#/tasks";
      } else {
        await api(`/tasks/${encodeURIComponent(id)}/${action}`, { method: "POST" });
        notice(action === "cancel" ? `Cancel requested for task ${id}.` : `Task ${id} will run again.`, { taskId: id });
      }
    } catch (error) {
      failed(`Could not ${action} task ${id}`, error);
    }
    refresh();
  }

  // -- bulk -----------------------------------------------------------------------------------

  function bulkFilter() {
    const filter = state.tasks.filter;
    const out = {};
    if (filter.type) out.type = filter.type;
    if (filter.queue) out.queue = filter.queue;
    return out;
  }

  function describeBulk(filter) {
    const parts = Object.entries(filter).map(([k, v]) => `${k} = ${v}`);
    return parts.length ? `Bulk actions apply to ${parts.join(", ")}.` : "Bulk actions apply to every task.";
  }

  async function bulkRetry() {
    const body = { ...bulkFilter(), status: "failed" };
    try {
      const data = await api("/tasks/retry", { method: "POST", body });
      notice(`${data.count} failed task${data.count === 1 ? "" : "s"} will run again.`);
    } catch (error) {
      failed("Bulk retry failed", error);
    }
    refresh();
  }

  async function bulkDelete() {
    const filter = bulkFilter();
    const statuses = state.tasks.filter.status && TERMINAL.has(state.tasks.filter.status) ? [state.tasks.filter.status] : [...TERMINAL];
    if (!confirm(`Delete every finished task (${statuses.join(", ")}) matching: ${describeBulk(filter)} This cannot be undone.`)) return;
    let count = 0;
    try {
      for (const status of statuses) count += (await api("/tasks", { method: "DELETE", body: { ...filter, status } })).count;
      notice(`${count} finished task${count === 1 ? "" : "s"} deleted.`);
    } catch (error) {
      failed("Bulk delete failed", error);
    }
    refresh();
  }

  // -- one task -------------------------------------------------------------------------------

  function json(value) {
    return value === null || value === undefined ? "—" : JSON.stringify(value, null, 2);
  }

  function showTask(task, how) {
    $("detail-id").textContent = task.id;
    $("detail-stream").textContent = TERMINAL.has(task.status) ? "finished" : `live (${how})`;
    $("detail-progress").value = task.progress;
    $("detail-percent").textContent = percentText(task.progress);
    $("detail-message").textContent = task.status === "failed" && task.error ? `${task.error.type}: ${task.error.message}` : task.message;
    const facts = [
      ["Status", statusBadge(task.status)],
      ["Type", task.type],
      ["Queue", task.queue || ""],
      ["Priority", task.priority_name || String(task.priority)],
      ["Created by", task.created_by || ""],
      ["Created", timeText(task.created_at)],
      ["Started", timeText(task.started_at)],
      ["Finished", timeText(task.completed_at)],
      ["Duration", durationText(task.duration)],
      ["Attempts", `${task.attempts} of ${task.max_retries + 1}`],
    ];
    if (task.total_steps) facts.push(["Step", `${task.step ?? 0} / ${task.total_steps}`]);
    $("detail-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", null, v)]));
    $("detail-facts").dataset.status = task.status;
    $("detail-params").textContent = json(task.params);
    $("detail-result").textContent = json(task.result);
    const attempts = (task.history || []).map((a) =>
      el(
        "li",
        { class: `attempt outcome-${a.outcome}`, "data-outcome": a.outcome },
        el("strong", { text: `Attempt ${a.attempt}: ${a.outcome}` }),
        el("span", { class: "summary", text: ` ${timeText(a.started_at)} → ${timeText(a.ended_at)}` }),
        a.error ? el("div", { class: "attempt-error", text: `${a.error.type}: ${a.error.message}` }) : null,
      ),
    );
    if (task.status === "running") attempts.push(el("li", { class: "attempt outcome-running", text: `Attempt ${task.attempts}: running` }));
    if (!attempts.length) attempts.push(el("li", { class: "summary", text: "Not run yet." }));
    $("detail-attempts").replaceChildren(...attempts);
    $("detail-actions").replaceChildren(...taskActions(task));
  }

  function openTask(id) {
    if (state.detail && state.detail.id === id) return;
    closeTask();
    $("detail-id").textContent = id;
    $("detail-stream").textContent = "connecting…";
    for (const part of ["detail-params", "detail-result", "detail-attempts", "detail-facts", "detail-actions"]) $(part).replaceChildren();
    state.detail = token() ? followByLongPoll(id) : followByEvents(id);
  }

  function closeTask() {
    if (state.detail) state.detail.stop();
    state.detail = null;
  }

  function followByEvents(id) {
    const source = new EventSource(`${API}/tasks/${encodeURIComponent(id)}/events`);
    for (const name of ["status", "progress", "done"]) {
      source.addEventListener(name, (event) => {
        showTask(JSON.parse(event.data), `event: ${name}`);
        if (name === "done") source.close(); // the stream ends here; do not reconnect
      });
    }
    source.addEventListener("error", () => {
      $("detail-stream").textContent = source.readyState === EventSource.CLOSED ? "stream closed" : "reconnecting…";
    });
    return { id, stop: () => source.close() };
  }

  function followByLongPoll(id) {
    const aborter = new AbortController();
    const url = `${API}/tasks/${encodeURIComponent(id)}`;
    const pause = () => new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    (async () => {
      let etag = null;
      while (!aborter.signal.aborted) {
        const headers = authHeaders({ Accept: "application/json" });
        if (etag) headers["If-None-Match"] = etag;
        let response;
        try {
          response = await fetch(etag ? `${url}?wait_s=${LONG_POLL_S}` : url, { headers, cache: "no-store", signal: aborter.signal });
        } catch (_) {
          if (aborter.signal.aborted) return;
          $("detail-stream").textContent = "reconnecting…";
          await pause();
          continue;
        }
        if (response.status === 304) continue; // nothing new within wait_s: ask again
        const envelope = await response.json().catch(() => null);
        if (!response.ok || !envelope) {
          $("detail-stream").textContent = (envelope && envelope.msg) || `HTTP ${response.status}`;
          if (response.status === 401) needToken(new ApiError(401, "unauthorized", $("detail-stream").textContent, []));
          if (response.status === 404 || response.status === 401) return;
          await pause();
          continue;
        }
        etag = response.headers.get("ETag");
        showTask(envelope.data, "long poll");
        if (TERMINAL.has(envelope.data.status)) return;
      }
    })();
    return { id, stop: () => aborter.abort() };
  }

  async function loadTask() {
    // The stream keeps the page current; the loop only reopens it if it was closed early.
    if (!state.detail) openTask(state.taskId);
  }

  // -- schedules ------------------------------------------------------------------------------

  async function loadSchedules() {
    if (!has("GET", "/schedules")) {
      unavailable("schedules", true);
      return;
    }
    unavailable("schedules", false);
    const data = await api(`/schedules?${query({ limit: 200 })}`);
    $("schedule-rows").replaceChildren(...data.schedules.map(scheduleRow));
  }

  function scheduleRow(s) {
    const path = `/schedules/${encodeURIComponent(s.name)}`;
    const run = async (what, method, suffix, message) => {
      try {
        await api(path + suffix, { method });
        notice(message);
      } catch (error) {
        failed(`Could not ${what} schedule ${s.name}`, error);
      }
      refresh();
    };
    const last = el("td", null, timeText(s.last_run_at));
    if (s.last_task_id) last.append(" ", taskLink(s.last_task_id));
    if (s.last_error) last.append(el("div", { class: "failure", text: s.last_error }));
    return el(
      "tr",
      { "data-schedule": s.name, "data-active": String(s.active) },
      el("td", null, el("strong", { text: s.name })),
      el("td", null, el("code", { text: s.expression }), el("div", { class: "summary", text: s.timezone })),
      el("td", { text: s.type }),
      el("td", { text: s.active ? "active" : "paused" }),
      el("td", { class: "next-run", text: s.next_run_at ? timeText(s.next_run_at) : "—" }),
      last,
      el(
        "td",
        { class: "actions write" },
        button("Edit", "edit", () => editSchedule(s)),
        s.active
          ? button("Pause", "pause", () => run("pause", "POST", "/pause", `Schedule ${s.name} paused.`))
          : button("Resume", "resume", () => run("resume", "POST", "/resume", `Schedule ${s.name} resumed.`)),
        button("Run now", "run-now", () => runNow(s.name)),
        button("Delete", "delete", () => {
          if (confirm(`Delete schedule ${s.name}? Tasks it already submitted stay.`)) run("delete", "DELETE", "", `Schedule ${s.name} deleted.`);
        }),
      ),
    );
  }

  async function runNow(name) {
    try {
      const data = await api(`/schedules/${encodeURIComponent(name)}/run`, { method: "POST" });
      notice(`Schedule ${name} submitted task ${data.task_id}.`, { taskId: data.task_id });
    } catch (error) {
      failed(`Could not run schedule ${name}`, error);
    }
    refresh();
  }

  function fillTypeSelect(select, selected) {
    select.replaceChildren(...state.types.map((type) => new Option(type, type, false, type === selected)));
  }

  function editSchedule(s) {
    state.editing = s ? s.name : null;
    $("schedule-form-title").textContent = s ? `Edit schedule ${s.name}` : "New schedule";
    $("schedule-name").value = s ? s.name : "";
    $("schedule-name").disabled = Boolean(s);
    $("schedule-expression").value = s ? s.expression : "";
    $("schedule-timezone").value = s ? s.timezone : "UTC";
    fillTypeSelect($("schedule-type"), s ? s.type : state.types[0]);
    $("schedule-priority").value = s ? s.priority_name : "normal";
    $("schedule-params").value = JSON.stringify(s ? s.params : {}, null, 2);
    $("schedule-save").textContent = s ? "Save changes" : "Create schedule";
    $("schedule-cancel-edit").hidden = !s;
    previewCron();
    if (s) $("schedule-expression").focus();
  }

  function previewCron() {
    const box = $("cron-preview");
    const expression = $("schedule-expression").value.trim();
    const zone = $("schedule-timezone").value.trim() || "UTC";
    if (!expression) {
      box.replaceChildren("Type a cron expression (minute hour day-of-month month day-of-week) to see when it fires.");
      return;
    }
    let times;
    let words;
    try {
      words = window.camCron.describe(expression);
      times = window.camCron.next(expression, zone, 5);
    } catch (error) {
      box.replaceChildren(el("span", { class: "failure", text: `Cannot preview: ${error.message}` }));
      return;
    }
    const when = new Intl.DateTimeFormat(undefined, { timeZone: zone, dateStyle: "full", timeStyle: "short" });
    box.replaceChildren(
      el("p", null, "Fires ", el("strong", { id: "cron-words", text: words }), ` (${zone}).`),
      times === null
        ? el("p", { class: "summary", text: "The next fire times are computed by the server when saved." })
        : el("ol", { id: "cron-next" }, ...times.map((t) => el("li", { text: `${when.format(t)} (in ${durationText((t - Date.now()) / 1000)})` }))),
    );
  }

  async function saveSchedule(event) {
    event.preventDefault();
    let params;
    try {
      params = JSON.parse($("schedule-params").value || "{}");
    } catch (error) {
      notice(`The params are not valid JSON: ${error.message}`, { error: true });
      return;
    }
    const body = {
      expression: $("schedule-expression").value.trim(),
      timezone: $("schedule-timezone").value.trim() || "UTC",
      type: $("schedule-type").value,
      params,
      priority: $("schedule-priority").value,
    };
    try {
      if (state.editing) {
        await api(`/schedules/${encodeURIComponent(state.editing)}`, { method: "PATCH", body });
        notice(`Schedule ${state.editing} saved.`);
      } else {
        const name = $("schedule-name").value.trim();
        await api("/schedules", { method: "POST", body: { name, ...body } });
        notice(`Schedule ${name} created.`);
      }
      editSchedule(null);
    } catch (error) {
      failed("Schedule not saved", error);
    }
    refresh();
  }

  // -- queues ---------------------------------------------------------------------------------

  async function loadQueues() {
    if (!has("GET", "/queues")) {
      unavailable("queues", true);
      return;
    }
    unavailable("queues", false);
    const data = await api("/queues");
    $("queue-rows").replaceChildren(
      ...data.queues.map((q) => {
        const action = q.paused ? "resume" : "pause";
        return el(
          "tr",
          { "data-queue": q.name, "data-paused": String(q.paused) },
          el("td", null, el("a", { href: `#/tasks?queue=${encodeURIComponent(q.name)}`, text: q.name })),
          el("td", { text: String(q.concurrency) }),
          el("td", { class: "pending", text: String(q.pending) }),
          el("td", { class: "running", text: String(q.running) }),
          el("td", { class: "state", text: q.paused ? "paused" : "active" }),
          el(
            "td",
            { class: "actions write" },
            button(q.paused ? "Resume" : "Pause", action, async () => {
              try {
                await api(`/queues/${encodeURIComponent(q.name)}/${action}`, { method: "POST" });
                notice(`Queue ${q.name} ${q.paused ? "resumed" : "paused"}.`);
              } catch (error) {
                failed(`Could not ${action} queue ${q.name}`, error);
              }
              refresh();
            }),
          ),
        );
      }),
    );
  }

  // -- assets ---------------------------------------------------------------------------------

  function assetFilter() {
    return {
      provider: $("asset-provider").value.trim(),
      account_id: $("asset-account").value.trim(),
      region: $("asset-region").value.trim(),
      asset_type: $("asset-type").value.trim(),
      q: $("asset-q").value.trim(),
    };
  }

  async function loadAssets() {
    if (!has("GET", "/assets")) {
      unavailable("assets", true);
      return;
    }
    unavailable("assets", false);
    const [summary, page] = await Promise.all([
      has("GET", "/assets/summary") ? api("/assets/summary") : Promise.resolve(null),
      api(`/assets?${query({ ...assetFilter(), offset: state.assets.offset, limit: PAGE_SIZE })}`),
    ]);
    if (summary) $("asset-summary").replaceChildren(...summaryTables(summary));
    state.assets.total = page.total;
    $("asset-rows").replaceChildren(
      ...page.assets.map((a) =>
        el(
          "tr",
          { "data-asset": a.asset_id || a.id || "" },
          el("td", null, el("code", { text: a.asset_id || a.id || "" })),
          el("td", { text: a.name || "" }),
          el("td", { text: a.asset_type || a.type || "" }),
          el("td", { text: a.provider || "" }),
          el("td", { text: a.account_id || "" }),
          el("td", { text: a.region || "" }),
        ),
      ),
    );
    const first = page.assets.length ? state.assets.offset + 1 : 0;
    $("asset-count").textContent = `${first}-${state.assets.offset + page.assets.length} of ${page.total}`;
    $("asset-prev").disabled = state.assets.offset === 0;
    $("asset-next").disabled = state.assets.offset + PAGE_SIZE >= page.total;
  }

  // The summary is read by shape: every member that maps names to counts (or lists
  // {name|key|value, count} entries) becomes a small table, so a field added later shows too.
  function summaryTables(summary) {
    const tables = [];
    for (const [key, value] of Object.entries(summary)) {
      let entries = null;
      if (Array.isArray(value)) {
        entries = value
          .filter((item) => item && typeof item === "object" && typeof item.count === "number")
          .map((item) => [String(item.name ?? item.key ?? item.value ?? Object.values(item)[0]), item.count]);
      } else if (value && typeof value === "object" && Object.values(value).every((v) => typeof v === "number")) {
        entries = Object.entries(value);
      }
      if (!entries) {
        if (typeof value === "number") tables.push(el("div", { class: "panel" }, el("h3", { text: key.replace(/_/g, " ") }), el("p", { class: "count", text: String(value) })));
        continue;
      }
      tables.push(
        el(
          "div",
          { class: "panel", "data-summary": key },
          el("h3", { text: key.replace(/^by_/, "per ").replace(/_/g, " ") }),
          el("table", { class: "compact" }, el("tbody", null, ...entries.map(([name, count]) => el("tr", null, el("td", { text: name }), el("td", { text: String(count) }))))),
        ),
      );
    }
    return tables;
  }

  // -- submit ---------------------------------------------------------------------------------

  function resolve(schema) {
    if (schema && schema.$ref) return state.document.components.schemas[schema.$ref.split("/").pop()];
    return schema || {};
  }

  function paramsSchema(type) {
    const variant = state.document.components.schemas[`SubmitTaskRequest.${type}`];
    return resolve(variant && variant.properties && variant.properties.params);
  }

  // A property's schema without its "or null" branch, and whether null was allowed.
  function unwrap(schema) {
    const resolved = resolve(schema);
    if (Array.isArray(resolved.anyOf)) {
      const real = resolved.anyOf.filter((s) => s.type !== "null");
      if (real.length === 1) return { schema: { ...resolve(real[0]), title: resolved.title, description: resolved.description, default: resolved.default }, nullable: true };
    }
    return { schema: resolved, nullable: false };
  }

  function loadSubmitForm() {
    const select = $("submit-type");
    if (!select.options.length) fillTypeSelect(select, state.types.includes("sync_assets") ? "sync_assets" : state.types[0]);
    if (select.dataset.built !== select.value) buildFields(select.value);
  }

  function buildFields(type) {
    $("submit-type").dataset.built = type;
    const schema = paramsSchema(type);
    $("submit-description").textContent = schema.description || "";
    const required = new Set(schema.required || []);
    const fields = Object.entries(schema.properties || {}).map(([name, prop]) => field(name, prop, required.has(name)));
    $("submit-fields").replaceChildren(...fields);
    syncAssetTypes();
  }

  function field(name, prop, required) {
    const { schema } = unwrap(prop);
    const label = `${schema.title || name}${required ? "" : " (optional)"}`;
    const id = `param-${name}`;
    const wrap = (control, hint) => el("label", { "data-param": name }, label, control, hint ? el("span", { class: "hint", text: hint }) : null);
    if (name === "provider" && state.providers) {
      const control = el("select", { id, "data-kind": "string", required }, ...state.providers.map((p) => new Option(`${p.name} (${p.kind})`, p.name)));
      control.addEventListener("change", syncAssetTypes);
      return wrap(control);
    }
    if (name === "asset_types" && state.providers) {
      return el("fieldset", { id, class: "checks", "data-param": name, "data-kind": "checks" }, el("legend", { text: label }));
    }
    if (Array.isArray(schema.enum)) {
      return wrap(el("select", { id, "data-kind": "string" }, ...(required ? [] : [new Option("—", "")]), ...schema.enum.map((v) => new Option(String(v), String(v)))));
    }
    if (schema.type === "boolean") {
      return el("label", { class: "check", "data-param": name }, el("input", { id, type: "checkbox", "data-kind": "boolean", checked: schema.default === true }), label);
    }
    if (schema.type === "integer" || schema.type === "number") {
      return wrap(el("input", { id, type: "number", "data-kind": schema.type, step: schema.type === "integer" ? "1" : "any", min: schema.minimum, max: schema.maximum, value: schema.default ?? "", required }));
    }
    if (schema.type === "array" && resolve(schema.items).type === "string") {
      return wrap(el("input", { id, "data-kind": "list", autocomplete: "off", required }), "comma-separated");
    }
    if (schema.type === "string") {
      return wrap(el("input", { id, "data-kind": "string", autocomplete: "off", maxlength: schema.maxLength, value: schema.default ?? "", required }));
    }
    return wrap(el("textarea", { id, "data-kind": "json", rows: "3", spellcheck: "false" }), "JSON");
  }

  function syncAssetTypes() {
    const box = document.querySelector('#submit-fields fieldset[data-param="asset_types"]');
    const chosen = $("param-provider");
    if (!box || !chosen) return;
    const provider = (state.providers || []).find((p) => p.name === chosen.value);
    const legend = box.querySelector("legend");
    box.replaceChildren(
      legend,
      ...(provider ? provider.asset_types : []).map((type) =>
        el("label", { class: "check" }, el("input", { type: "checkbox", value: type, name: "asset_types" }), type),
      ),
    );
  }

  function readParams() {
    const params = {};
    for (const control of document.querySelectorAll("#submit-fields [data-kind]")) {
      const name = control.id.replace(/^param-/, "");
      const kind = control.dataset.kind;
      if (kind === "checks") {
        const picked = [...control.querySelectorAll("input:checked")].map((box) => box.value);
        if (picked.length) params[name] = picked;
      } else if (kind === "boolean") params[name] = control.checked;
      else if (control.value.trim() === "") continue;
      else if (kind === "list") params[name] = control.value.split(",").map((s) => s.trim()).filter(Boolean);
      else if (kind === "integer" || kind === "number") params[name] = Number(control.value);
      else if (kind === "json") params[name] = JSON.parse(control.value);
      else params[name] = control.value.trim();
    }
    return params;
  }

  async function submit(event) {
    event.preventDefault();
    let params;
    try {
      params = readParams();
    } catch (error) {
      notice(`A JSON field is not valid JSON: ${error.message}`, { error: true });
      return;
    }
    const body = { type: $("submit-type").value, params };
    if ($("submit-priority").value) body.priority = $("submit-priority").value;
    if ($("submit-delay").value !== "") body.delay_s = Number($("submit-delay").value);
    const submitButton = $("submit-button");
    submitButton.disabled = true;
    try {
      const data = await api("/tasks", { method: "POST", body });
      notice(`Submitted task ${data.task_id}.`, { taskId: data.task_id });
    } catch (error) {
      failed("Not submitted", error);
    } finally {
      submitButton.disabled = false;
    }
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
})();
