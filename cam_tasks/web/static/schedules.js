// Schedules: list, create and edit with a cron preview, pause, resume, run now, delete.

import {
  state, api, has, query, el, button, durationText, timeText, taskLink, notice, failed,
  unavailable, fillTypeSelect, refresh, $,
} from "./core.js";
import { describe, next as nextFires } from "./cron.js";

// -- schedules ------------------------------------------------------------------------------

export async function loadSchedules() {
  if (!has("GET", "/schedules")) {
    unavailable("schedules", true);
    return;
  }
  unavailable("schedules", false);
  const data = await api(`/schedules?${query({ limit: 200 })}`);
  $("schedule-rows").replaceChildren(...data.schedules.map(scheduleRow));
}

export function scheduleRow(s) {
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

export async function runNow(name) {
  try {
    const data = await api(`/schedules/${encodeURIComponent(name)}/run`, { method: "POST" });
    notice(`Schedule ${name} submitted task ${data.task_id}.`, { taskId: data.task_id });
  } catch (error) {
    failed(`Could not run schedule ${name}`, error);
  }
  refresh();
}


export function editSchedule(s) {
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

export function previewCron() {
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
    words = describe(expression);
    times = nextFires(expression, zone, 5);
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

export async function saveSchedule(event) {
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
