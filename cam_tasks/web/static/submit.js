// Submit any registered type: the form is generated from the type's params schema in the
// OpenAPI document; providers and their asset types come from GET /providers.

import { state, api, el, notice, failed, fillTypeSelect, $ } from "./core.js";

// -- submit ---------------------------------------------------------------------------------

export function resolve(schema) {
  if (schema && schema.$ref) return state.document.components.schemas[schema.$ref.split("/").pop()];
  return schema || {};
}

export function paramsSchema(type) {
  const variant = state.document.components.schemas[`SubmitTaskRequest.${type}`];
  return resolve(variant && variant.properties && variant.properties.params);
}

// A property's schema without its "or null" branch, and whether null was allowed.
export function unwrap(schema) {
  const resolved = resolve(schema);
  if (Array.isArray(resolved.anyOf)) {
    const real = resolved.anyOf.filter((s) => s.type !== "null");
    if (real.length === 1) return { schema: { ...resolve(real[0]), title: resolved.title, description: resolved.description, default: resolved.default }, nullable: true };
  }
  return { schema: resolved, nullable: false };
}

export function loadSubmitForm() {
  const select = $("submit-type");
  if (!select.options.length) fillTypeSelect(select, state.types.includes("sync_assets") ? "sync_assets" : state.types[0]);
  if (select.dataset.built !== select.value) buildFields(select.value);
}

export function buildFields(type) {
  $("submit-type").dataset.built = type;
  const schema = paramsSchema(type);
  $("submit-description").textContent = schema.description || "";
  const required = new Set(schema.required || []);
  const fields = Object.entries(schema.properties || {}).map(([name, prop]) => field(name, prop, required.has(name)));
  $("submit-fields").replaceChildren(...fields);
  syncAssetTypes();
}

export function field(name, prop, required) {
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

export function syncAssetTypes() {
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

export function readParams() {
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

export async function submit(event) {
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
  if ($("submit-queue").value.trim()) body.queue = $("submit-queue").value.trim();
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
