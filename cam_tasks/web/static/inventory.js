// Queues (pause, resume) and the asset inventory (summary, browse, search).

import {
  PAGE_SIZE, state, api, has, query, el, button, notice, failed, unavailable, refresh, $,
} from "./core.js";

// -- queues ---------------------------------------------------------------------------------

export async function loadQueues() {
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

export function assetFilter() {
  return {
    provider: $("asset-provider").value.trim(),
    account_id: $("asset-account").value.trim(),
    region: $("asset-region").value.trim(),
    type: $("asset-type").value.trim(),
    q: $("asset-q").value.trim(),
  };
}

export async function loadAssets() {
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
export function summaryTables(summary) {
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
