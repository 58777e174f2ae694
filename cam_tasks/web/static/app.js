// The cam_tasks dashboard: plain JavaScript, no build step, no dependencies.
//
// Everything goes through the public HTTP API (its prefix comes from <meta name="cam-api">) and
// reads its envelope {code, msg, data}. Task data is only ever put into the page as text
// (textContent, attribute values, <option> labels): never as HTML.
//
// Keeping the list live: a full page of the current filter is loaded now and then; in between,
// every second, `GET /tasks?updated_since=…` returns only the tasks written since the newest
// change already seen (less a safety margin), and those rows are updated in place. The task
// opened in the detail panel follows its server-sent events, or, when an API token is set
// (EventSource cannot send an Authorization header), a long poll with If-None-Match.
"use strict";

(() => {
  const API = document.querySelector('meta[name="cam-api"]').content.replace(/\/+$/, "");
  const POLL_MS = 1000;
  const FULL_REFRESH_MS = 15000;
  const PAGE_SIZE = 50;
  const CHANGES_LIMIT = 200;
  // Writes from other instances (clock skew) or still in flight may carry a slightly older
  // updated_at than the newest one seen: ask again for this much before it.
  const MARGIN_MS = 5000;
  const TERMINAL = new Set(["completed", "failed", "cancelled"]);
  const TOKEN_KEY = "cam_tasks.token";
  const LONG_POLL_S = 30;
  const RETRY_MS = 2000;

  const $ = (id) => document.getElementById(id);
  const rows = $("task-rows");
  const typeFilter = $("filter-type");
  const statusFilter = $("filter-status");

  const state = {
    tasks: new Map(), // id -> view, for the rows on the page
    total: 0,
    newestChangeMs: null, // largest updated_at seen, in ms
    lastFullMs: 0,
    stale: true, // a full reload is due (filters changed, an action was taken)
    timer: null,
    detail: null, // {id, stop}
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
      throw new ApiError(response.status, data.error || "http_error", message, data.details);
    }
    return envelope.data;
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
      else node.setAttribute(key, String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child); // strings become text nodes
    }
    return node;
  }

  function percentText(value) {
    return `${(Math.round(value * 10) / 10).toString()} %`;
  }

  function durationText(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 60) return `${Math.ceil(seconds)} s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
    return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
  }

  function timeText(rfc3339) {
    const date = new Date(rfc3339);
    return Number.isNaN(date.getTime()) ? "" : date.toLocaleString();
  }

  function shortId(id) {
    return id.length > 8 ? `…${id.slice(-8)}` : id;
  }

  function renderRow(task) {
    const actions = el("td", { class: "actions" });
    const active = !TERMINAL.has(task.status);
    if (active && !task.cancel_requested) {
      actions.append(el("button", { type: "button", class: "cancel", text: "Cancel", on: { click: () => act(task.id, "cancel") } }));
    }
    if (task.status === "failed" || task.status === "cancelled") {
      actions.append(el("button", { type: "button", class: "retry", text: "Retry", on: { click: () => act(task.id, "retry") } }));
    }
    if (!active) {
      actions.append(el("button", { type: "button", class: "delete", text: "Delete", on: { click: () => act(task.id, "delete") } }));
    }
    const steps = task.total_steps ? `${task.step ?? 0}/${task.total_steps}` : "";
    const status = el("td", null, el("span", { class: `status status-${task.status}`, text: task.status }));
    if (task.cancel_requested && active) status.append(el("span", { class: "flag", text: "cancel requested" }));
    return el(
      "tr",
      { "data-task-id": task.id, "data-status": task.status },
      el("td", null, el("button", { type: "button", class: "task-id", title: task.id, text: shortId(task.id), on: { click: () => openDetail(task.id) } })),
      // The queue under the type (older servers send none).
      el("td", null, task.type, task.queue ? el("span", { class: "queue", title: "queue", text: task.queue }) : null),
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
      el("td", { class: "eta", text: durationText(task.eta_s) }),
      el("td", { class: "created", text: timeText(task.created_at) }),
      actions,
    );
  }

  function messageCell(task) {
    if (task.status === "failed" && task.error) {
      const text = `${task.error.type}: ${task.error.message}`;
      return el("td", { class: "message failure", title: text, text });
    }
    return el("td", { class: "message", title: task.message, text: task.message });
  }

  function rowOf(id) {
    for (const row of rows.children) if (row.dataset.taskId === id) return row;
    return null;
  }

  function renderAll(tasks) {
    rows.replaceChildren(...tasks.map(renderRow));
    $("empty").hidden = tasks.length > 0;
    $("summary").textContent = `${tasks.length} of ${state.total} shown`;
  }

  function updateRow(task) {
    const row = rowOf(task.id);
    if (row) row.replaceWith(renderRow(task));
  }

  function rememberType(type) {
    if (![...typeFilter.options].some((option) => option.value === type)) {
      typeFilter.append(new Option(type, type));
    }
  }

  function notice(message, { error = false, details = [], taskId = null } = {}) {
    const box = $("notice");
    box.className = error ? "notice error" : "notice";
    box.replaceChildren(message);
    if (taskId) box.dataset.taskId = taskId;
    else delete box.dataset.taskId;
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
    box.hidden = false;
  }

  function setConnection(live, error) {
    const badge = $("connection");
    badge.className = live ? "connection live" : "connection offline";
    badge.textContent = live ? "live" : `offline (${error ? error.message : "retrying"}), retrying`;
  }

  // -- keeping the list live ------------------------------------------------------------------

  function filters() {
    return { type: typeFilter.value, status: statusFilter.value };
  }

  function fits(task, current) {
    return (!current.type || task.type === current.type) && (!current.status || task.status === current.status);
  }

  function noteChange(task) {
    const ms = Date.parse(task.updated_at);
    if (!Number.isNaN(ms) && (state.newestChangeMs === null || ms > state.newestChangeMs)) {
      state.newestChangeMs = ms;
    }
    rememberType(task.type);
  }

  async function reload() {
    const current = filters();
    const data = await api(`/tasks?${query({ type: current.type, status: current.status, limit: PAGE_SIZE })}`);
    state.tasks = new Map(data.tasks.map((task) => [task.id, task]));
    state.total = data.total;
    data.tasks.forEach(noteChange);
    state.lastFullMs = Date.now();
    state.stale = false;
    renderAll(data.tasks);
  }

  async function catchUp() {
    const current = filters();
    const since = new Date(state.newestChangeMs - MARGIN_MS).toISOString();
    // No status filter here: a task that leaves the filtered status must be seen leaving.
    const data = await api(`/tasks?${query({ type: current.type, updated_since: since, limit: CHANGES_LIMIT })}`);
    let needReload = data.total > data.tasks.length;
    const shown = [...state.tasks.values()];
    const pageFull = shown.length >= PAGE_SIZE;
    const oldestShown = shown.length ? shown[shown.length - 1].created_at : null;
    for (const task of data.tasks) {
      noteChange(task);
      const onPage = state.tasks.has(task.id);
      if (onPage && fits(task, current)) {
        if (JSON.stringify(state.tasks.get(task.id)) !== JSON.stringify(task)) {
          state.tasks.set(task.id, task);
          updateRow(task);
        }
      } else if (onPage || (fits(task, current) && !(pageFull && task.created_at < oldestShown))) {
        needReload = true; // it left the view, or joins it: reload for order and total
      }
    }
    if (needReload) await reload();
  }

  async function tick() {
    state.timer = null;
    try {
      if (state.stale || state.newestChangeMs === null || Date.now() - state.lastFullMs > FULL_REFRESH_MS) {
        await reload();
      } else {
        await catchUp();
      }
      setConnection(true);
    } catch (error) {
      setConnection(false, error);
    } finally {
      if (state.timer === null) state.timer = setTimeout(tick, POLL_MS);
    }
  }

  function refreshSoon() {
    state.stale = true;
    if (state.timer !== null) {
      clearTimeout(state.timer);
      state.timer = null;
      tick();
    }
  }

  // -- actions --------------------------------------------------------------------------------

  async function act(id, action) {
    try {
      if (action === "delete") {
        await api(`/tasks/${encodeURIComponent(id)}`, { method: "DELETE" });
        notice(`Task ${id} deleted.`);
        if (state.detail && state.detail.id === id) closeDetail();
      } else {
        await api(`/tasks/${encodeURIComponent(id)}/${action}`, { method: "POST" });
        notice(action === "cancel" ? `Cancel requested for task ${id}.` : `Task ${id} will run again.`, { taskId: id });
      }
    } catch (error) {
      notice(`Could not ${action} task ${id}: ${error.message}`, { error: true, details: error.details });
    }
    refreshSoon();
  }

  function splitList(text) {
    return text.split(",").map((part) => part.trim()).filter((part) => part !== "");
  }

  function showKind() {
    $("asset-types-field").hidden = $("submit-kind").value !== "sync-assets";
  }

  async function submit(event) {
    event.preventDefault();
    const kind = $("submit-kind").value;
    const body = { provider: $("submit-provider").value.trim(), account_id: $("submit-account").value.trim() };
    if (kind === "sync-assets") body.asset_types = splitList($("submit-asset-types").value);
    const regions = splitList($("submit-regions").value);
    if (regions.length) body.regions = regions;
    const button = $("submit-button");
    button.disabled = true;
    try {
      const data = await api(`/tasks/${kind}`, { method: "POST", body });
      notice(`Submitted task ${data.task_id}.`, { taskId: data.task_id });
      refreshSoon();
    } catch (error) {
      notice(`Not submitted: ${error.message}`, { error: true, details: error.details });
    } finally {
      button.disabled = false;
    }
  }

  // -- the detail panel: one task, live ------------------------------------------------------

  function closeDetail() {
    if (state.detail) state.detail.stop();
    state.detail = null;
    $("detail").hidden = true;
  }

  function showDetail(task, how) {
    $("detail-id").textContent = task.queue ? `${task.id} (queue ${task.queue})` : task.id;
    $("detail-body").textContent = JSON.stringify(task, null, 2);
    $("detail-stream").textContent = TERMINAL.has(task.status) ? "finished" : `live (${how})`;
    if (state.tasks.has(task.id) && fits(task, filters())) {
      state.tasks.set(task.id, task);
      updateRow(task);
    }
  }

  function openDetail(id) {
    closeDetail();
    $("detail-id").textContent = id;
    $("detail-body").textContent = "";
    $("detail-stream").textContent = "connecting…";
    $("detail").hidden = false;
    state.detail = token() ? followByLongPoll(id) : followByEvents(id);
  }

  function followByEvents(id) {
    const source = new EventSource(`${API}/tasks/${encodeURIComponent(id)}/events`);
    for (const name of ["status", "progress", "done"]) {
      source.addEventListener(name, (event) => {
        showDetail(JSON.parse(event.data), `event: ${name}`);
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
          if (response.status === 404) return;
          await pause();
          continue;
        }
        etag = response.headers.get("ETag");
        showDetail(envelope.data, "long poll");
        if (TERMINAL.has(envelope.data.status)) return;
      }
    })();
    return { id, stop: () => aborter.abort() };
  }

  function saveToken() {
    const value = $("token").value.trim();
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
    $("token").value = "";
    $("token").placeholder = value ? "token set (this tab)" : "API token (optional)";
    refreshSoon();
  }

  // -- start ----------------------------------------------------------------------------------

  $("submit-form").addEventListener("submit", submit);
  $("submit-kind").addEventListener("change", showKind);
  $("detail-close").addEventListener("click", closeDetail);
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    saveToken();
  });
  if (token()) $("token").placeholder = "token set (this tab)";
  typeFilter.addEventListener("change", refreshSoon);
  statusFilter.addEventListener("change", refreshSoon);
  showKind();
  tick();
})();
