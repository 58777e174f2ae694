// The task list: filters, pages, sorting, row actions and bulk actions by filter.

import {
  PAGE_SIZE, TERMINAL, STATUSES, state, api, has, query, el, button, percentText, durationText,
  timeText, taskLink, statusBadge, notice, failed, refresh, $,
} from "./core.js";

// -- tasks ----------------------------------------------------------------------------------

export function readTaskFilter() {
  return {
    type: $("filter-type").value,
    status: $("filter-status").value,
    queue: hasQueueFilter() ? $("filter-queue").value.trim() : "",
    created_by: $("filter-created-by").value.trim(),
    id: $("filter-id").value.trim(),
  };
}

export function hasQueueFilter() {
  const op = state.document && state.document.paths["/tasks"] && state.document.paths["/tasks"].get;
  return Boolean(op && (op.parameters || []).some((p) => p.name === "queue"));
}

export function writeTaskFilter(filter) {
  for (const type of [filter.type].filter(Boolean)) rememberType(type);
  $("filter-type").value = filter.type || "";
  $("filter-status").value = filter.status || "";
  $("filter-queue").value = filter.queue || "";
  $("filter-created-by").value = filter.created_by || "";
  $("filter-id").value = filter.id || "";
}

export function rememberType(type) {
  for (const select of [$("filter-type")]) {
    if (![...select.options].some((option) => option.value === type)) select.append(new Option(type, type));
  }
}

export const SORTS = {
  id: (t) => t.id,
  type: (t) => t.type,
  status: (t) => STATUSES.indexOf(t.status),
  progress: (t) => t.progress,
  created_at: (t) => t.created_at,
};

export function sorted(tasks) {
  const key = SORTS[state.tasks.sort];
  const sign = state.tasks.descending ? -1 : 1;
  // Ties (tasks created in the same millisecond) fall back to the id, time-ordered too.
  const order = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
  return [...tasks].sort((a, b) => sign * (order(key(a), key(b)) || order(a.id, b.id)));
}

export async function loadTasks() {
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

export function renderTasks(tasks) {
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

export function renderRow(task, key) {
  const actions = el("td", { class: "actions write" }, ...taskActions(task));
  const steps = task.total_steps ? `${task.step ?? 0}/${task.total_steps}` : "";
  const status = el("td", null, statusBadge(task.status));
  if (task.cancel_requested && !TERMINAL.has(task.status)) status.append(el("span", { class: "flag", text: "cancel requested" }));
  return el(
    "tr",
    { "data-task-id": task.id, "data-status": task.status, "data-key": key },
    el("td", null, taskLink(task.id)),
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
    el("td", { class: "eta wide", text: durationText(task.eta_s) }),
    el("td", { class: "created", text: timeText(task.created_at) }),
    actions,
  );
}

export function messageCell(task) {
  if (task.status === "failed" && task.error) {
    const text = `${task.error.type}: ${task.error.message}`;
    return el("td", { class: "message wide failure", title: text, text });
  }
  return el("td", { class: "message wide", title: task.message, text: task.message });
}

export function taskActions(task) {
  const out = [];
  if (!TERMINAL.has(task.status) && !task.cancel_requested) out.push(button("Cancel", "cancel", () => act(task.id, "cancel")));
  if (task.status === "failed" || task.status === "cancelled") out.push(button("Retry", "retry", () => act(task.id, "retry")));
  if (TERMINAL.has(task.status)) out.push(button("Delete", "delete", () => act(task.id, "delete")));
  return out;
}

export async function act(id, action) {
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

export function bulkFilter() {
  const filter = state.tasks.filter;
  const out = {};
  if (filter.type) out.type = filter.type;
  if (filter.queue) out.queue = filter.queue;
  return out;
}

export function describeBulk(filter) {
  const parts = Object.entries(filter).map(([k, v]) => `${k} = ${v}`);
  return parts.length ? `Bulk actions apply to ${parts.join(", ")}.` : "Bulk actions apply to every task.";
}

export async function bulkRetry() {
  const body = { ...bulkFilter(), status: "failed" };
  try {
    const data = await api("/tasks/retry", { method: "POST", body });
    notice(`${data.count} failed task${data.count === 1 ? "" : "s"} will run again.`);
  } catch (error) {
    failed("Bulk retry failed", error);
  }
  refresh();
}

export async function bulkDelete() {
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
