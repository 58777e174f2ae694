// The overview: counts by status, the last hour, workers, queues.

import {
  STATUSES, HOUR_BUCKETS, HOUR_MAX_TASKS, MAX_LIMIT, api, has, query, el, durationText, $,
} from "./core.js";

// -- overview -------------------------------------------------------------------------------

export async function loadOverview() {
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
export async function loadHour() {
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

export function chart(buckets, bucketMs) {
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

export async function loadWorkers() {
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

export async function loadOverviewQueues() {
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
