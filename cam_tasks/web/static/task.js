// One task at #/tasks/<id>, followed live (server-sent events, or long poll with a token).

import {
  API, TERMINAL, LONG_POLL_S, RETRY_MS, state, ApiError, token, authHeaders, el, percentText,
  durationText, timeText, statusBadge, hooks, $,
} from "./core.js";
import { taskActions } from "./tasks.js";

// -- one task -------------------------------------------------------------------------------

export function json(value) {
  return value === null || value === undefined ? "—" : JSON.stringify(value, null, 2);
}

export function showTask(task, how) {
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

export function openTask(id) {
  if (state.detail && state.detail.id === id) return;
  closeTask();
  $("detail-id").textContent = id;
  $("detail-stream").textContent = "connecting…";
  for (const part of ["detail-params", "detail-result", "detail-attempts", "detail-facts", "detail-actions"]) $(part).replaceChildren();
  state.detail = token() ? followByLongPoll(id) : followByEvents(id);
}

export function closeTask() {
  if (state.detail) state.detail.stop();
  state.detail = null;
}

export function followByEvents(id) {
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

export function followByLongPoll(id) {
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
        if (response.status === 401) hooks.unauthorized(new ApiError(401, "unauthorized", $("detail-stream").textContent, []));
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

export async function loadTask() {
  // The stream keeps the page current; the loop only reopens it if it was closed early.
  if (!state.detail) openTask(state.taskId);
}
