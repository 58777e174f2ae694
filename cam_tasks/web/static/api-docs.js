// The API documentation page: reads openapi.json (next to this page) and shows every operation,
// its parameters, body and answers, and the schemas they refer to.
//
// Everything from the document reaches the screen as text (textContent, attribute values):
// never as HTML. Links point only at anchors of this page.
"use strict";

(function () {
  const METHODS = ["get", "post", "put", "patch", "delete"];
  const MAX_DEPTH = 4;

  // -- DOM helpers --------------------------------------------------------------------------

  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function anchor(target, ...children) {
    const link = el("a", null, ...children);
    link.setAttribute("href", `#${target}`);
    return link;
  }

  // Descriptions use `code` spans and blank lines between paragraphs; nothing else is read.
  function prose(text) {
    const box = el("div", "prose");
    // ``x`` (from Python docstrings) is the same code span as `x`.
    for (const paragraph of String(text || "").replace(/``/g, "`").split(/\n\s*\n/)) {
      if (!paragraph.trim()) continue;
      const p = el("p");
      String(paragraph).split("`").forEach((part, i) => {
        p.append(i % 2 ? el("code", null, part) : document.createTextNode(part));
      });
      box.append(p);
    }
    return box;
  }

  function idFor(kind, name) {
    return `${kind}-${String(name).replace(/[^A-Za-z0-9_.-]/g, "_")}`;
  }

  // -- schemas ------------------------------------------------------------------------------

  function refName(ref) {
    return decodeURIComponent(String(ref).split("/").pop()).replace(/~1/g, "/").replace(/~0/g, "~");
  }

  function componentOf(doc, ref) {
    const prefix = "#/components/schemas/";
    if (typeof ref !== "string" || !ref.startsWith(prefix)) return null;
    const schemas = (doc.components && doc.components.schemas) || {};
    return Object.prototype.hasOwnProperty.call(schemas, refName(ref)) ? schemas[refName(ref)] : null;
  }

  function constraints(schema) {
    const parts = [];
    const names = [
      ["minimum", "≥"], ["exclusiveMinimum", ">"], ["maximum", "≤"], ["exclusiveMaximum", "<"],
      ["minLength", "min length "], ["maxLength", "max length "],
      ["minItems", "min items "], ["maxItems", "max items "],
    ];
    for (const [key, label] of names) {
      if (schema[key] !== undefined) parts.push(`${label}${schema[key]}`);
    }
    if (schema.pattern !== undefined) parts.push(`pattern ${schema.pattern}`);
    if (schema.uniqueItems) parts.push("unique");
    if (schema.default !== undefined) parts.push(`default ${JSON.stringify(schema.default)}`);
    return parts.join(", ");
  }

  // A one-line name for a schema: "string (date-time)", "array of TaskView", "A | B".
  function typeName(doc, schema) {
    if (!schema || typeof schema !== "object") return "any";
    if (schema.$ref) return refName(schema.$ref);
    if (schema.const !== undefined) return JSON.stringify(schema.const);
    if (Array.isArray(schema.enum)) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
    for (const key of ["oneOf", "anyOf"]) {
      if (Array.isArray(schema[key])) return schema[key].map((s) => typeName(doc, s)).join(" | ");
    }
    if (Array.isArray(schema.allOf)) return schema.allOf.map((s) => typeName(doc, s)).join(" & ");
    let type = Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type;
    if (type === "array") type = `array of ${typeName(doc, schema.items)}`;
    if (!type) type = schema.properties ? "object" : "any";
    return schema.format ? `${type} (${schema.format})` : type;
  }

  function typeLabel(doc, schema) {
    const label = el("span", "type", typeName(doc, schema));
    if (schema && schema.$ref && componentOf(doc, schema.$ref)) {
      return anchor(idFor("schema", refName(schema.$ref)), label);
    }
    return label;
  }

  // What a schema holds, one level of detail per call: properties, items, alternatives.
  function schemaBody(doc, schema, depth) {
    const box = el("div", "schema");
    if (!schema || typeof schema !== "object" || depth > MAX_DEPTH) return box;
    if (schema.$ref) {
      const target = componentOf(doc, schema.$ref);
      if (target && depth < 2) box.append(schemaBody(doc, target, depth + 1));
      return box;
    }
    if (schema.description && depth > 0) box.append(prose(schema.description));
    const choices = schema.oneOf || schema.anyOf || schema.allOf;
    if (Array.isArray(choices)) {
      const word = schema.allOf ? "all of" : "one of";
      box.append(el("div", null, word));
      for (const choice of choices) {
        box.append(el("div", "choice", typeLabel(doc, choice), schemaBody(doc, choice, depth + 1)));
      }
      if (schema.discriminator && schema.discriminator.propertyName) {
        box.append(el("div", null, "chosen by ", el("code", null, schema.discriminator.propertyName)));
      }
    }
    if (schema.properties && typeof schema.properties === "object") {
      const required = new Set(Array.isArray(schema.required) ? schema.required : []);
      const rows = el("tbody");
      for (const [name, property] of Object.entries(schema.properties)) {
        const nameCell = el("td", null, el("code", null, name));
        if (required.has(name)) nameCell.append(" ", el("span", "required", "required"));
        const detail = el("td");
        const more = constraints(property || {});
        if (more) detail.append(el("div", null, more));
        if (property && property.description) detail.append(prose(property.description));
        if (property && property.contentSchema) {
          const media = property.contentMediaType || "encoded";
          detail.append(el("div", null, `${media} of `, typeLabel(doc, property.contentSchema)));
        }
        const nested = property && (property.properties || property.oneOf || property.anyOf);
        if (nested) detail.append(schemaBody(doc, property, depth + 1));
        rows.append(el("tr", null, nameCell, el("td", null, typeLabel(doc, property)), detail));
      }
      const head = el("tr", null, el("th", null, "field"), el("th", null, "type"), el("th", null, ""));
      box.append(el("table", null, el("thead", null, head), rows));
      if (schema.additionalProperties === false) {
        box.append(el("div", "security", "No other fields are accepted."));
      }
    }
    if (schema.type === "array" && schema.items && !schema.items.$ref) {
      box.append(schemaBody(doc, schema.items, depth + 1));
    }
    return box;
  }

  function schemaBlock(doc, schema) {
    const block = el("div", null, typeLabel(doc, schema));
    const more = constraints(schema || {});
    if (more) block.append(" ", el("span", null, more));
    block.append(schemaBody(doc, schema, 0));
    return block;
  }

  // -- operations ---------------------------------------------------------------------------

  function parameters(doc, params) {
    const rows = el("tbody");
    for (const param of params) {
      const name = el("td", null, el("code", null, String(param.name)));
      if (param.required) name.append(" ", el("span", "required", "required"));
      const detail = el("td");
      const more = constraints(param.schema || {});
      if (more) detail.append(el("div", null, more));
      if (param.description) detail.append(prose(param.description));
      rows.append(
        el("tr", null, name, el("td", null, String(param.in)), el("td", null, typeLabel(doc, param.schema)), detail),
      );
    }
    const head = el("tr", null, ...["name", "in", "type", ""].map((h) => el("th", null, h)));
    return el("table", null, el("thead", null, head), rows);
  }

  function resolveResponse(doc, response) {
    if (response && response.$ref) {
      const name = refName(response.$ref);
      const responses = (doc.components && doc.components.responses) || {};
      return Object.prototype.hasOwnProperty.call(responses, name) ? responses[name] : {};
    }
    return response || {};
  }

  function content(doc, body) {
    const box = el("div");
    for (const [mediaType, media] of Object.entries((body && body.content) || {})) {
      box.append(el("div", null, el("code", null, mediaType)), schemaBlock(doc, (media || {}).schema));
    }
    return box;
  }

  function responses(doc, answers) {
    const rows = el("tbody");
    for (const [status, raw] of Object.entries(answers || {})) {
      const response = resolveResponse(doc, raw);
      const kind = Number(status) < 400 ? "ok" : "error";
      const detail = el("td", null, prose(response.description));
      const headers = Object.entries(response.headers || {});
      if (headers.length) {
        const list = el("div", "security", "Headers: ");
        headers.forEach(([name, header], i) => {
          if (i) list.append(", ");
          list.append(el("code", null, name));
          if (header && header.required) list.append(" (always)");
        });
        detail.append(list);
      }
      if (response.content) {
        const more = el("details", null, el("summary", null, "body"), content(doc, response));
        if (kind === "ok") more.open = true;
        detail.append(more);
      }
      rows.append(el("tr", null, el("td", `status ${kind}`, status), detail));
    }
    const head = el("tr", null, el("th", null, "status"), el("th", null, ""));
    return el("table", null, el("thead", null, head), rows);
  }

  function securityNote(doc, operation) {
    const rules = operation.security !== undefined ? operation.security : doc.security || [];
    if (!rules.length) return el("p", "security", "Public: no credentials needed.");
    const anonymous = rules.some((rule) => Object.keys(rule).length === 0);
    const schemes = rules.flatMap((rule) => Object.keys(rule));
    const text = `Authentication: ${schemes.join(" or ") || "none"}` +
      (anonymous ? " (or none, where the service allows anonymous use)." : ".");
    return el("p", "security", text);
  }

  function operationCard(doc, path, method, operation) {
    const id = idFor("op", operation.operationId || `${method}-${path}`);
    const card = el("section", "op");
    card.id = id;
    card.dataset.method = method.toUpperCase();
    card.dataset.path = path;
    card.append(
      el("h3", null, el("span", `method ${method}`, method.toUpperCase()), el("code", "path", path),
        el("span", "summary", operation.summary || "")),
      prose(operation.description),
      securityNote(doc, operation),
    );
    if (Array.isArray(operation.parameters) && operation.parameters.length) {
      card.append(el("h4", null, "Parameters"), parameters(doc, operation.parameters));
    }
    if (operation.requestBody) {
      card.append(el("h4", null, "Request body"), content(doc, operation.requestBody));
    }
    card.append(el("h4", null, "Responses"), responses(doc, operation.responses));
    return card;
  }

  // -- the page -----------------------------------------------------------------------------

  function byTag(doc) {
    const groups = new Map();
    for (const tag of doc.tags || []) groups.set(tag.name, { description: tag.description, ops: [] });
    for (const [path, item] of Object.entries(doc.paths || {})) {
      for (const method of METHODS) {
        const operation = item && item[method];
        if (!operation) continue;
        const tag = (operation.tags && operation.tags[0]) || "other";
        if (!groups.has(tag)) groups.set(tag, { description: "", ops: [] });
        groups.get(tag).ops.push({ path, method, operation });
      }
    }
    return groups;
  }

  function render(doc) {
    const info = doc.info || {};
    document.getElementById("title").textContent = info.title ? `${info.title} API` : "API";
    document.title = document.getElementById("title").textContent;
    document.getElementById("version").textContent =
      `version ${info.version || "?"} · OpenAPI ${doc.openapi || "?"}`;
    const main = document.getElementById("main");
    const nav = document.getElementById("nav");
    main.replaceChildren();
    nav.replaceChildren();

    const server = (doc.servers && doc.servers[0] && doc.servers[0].url) || "/";
    main.append(
      el("section", "intro", el("p", null, "Base path: ", el("code", null, server)), prose(info.description)),
    );

    for (const [tag, group] of byTag(doc)) {
      if (!group.ops.length) continue;
      nav.append(el("h2", null, tag));
      const list = el("ul");
      main.append(el("h2", "tag-title", tag), prose(group.description));
      for (const { path, method, operation } of group.ops) {
        const card = operationCard(doc, path, method, operation);
        main.append(card);
        list.append(el("li", null, anchor(card.id, el("span", `method ${method}`, method.toUpperCase()),
          el("code", null, path))));
      }
      nav.append(list);
    }

    const schemas = (doc.components && doc.components.schemas) || {};
    if (Object.keys(schemas).length) {
      main.append(el("h2", "tag-title", "schemas"));
      nav.append(el("h2", null, "schemas"));
      const list = el("ul");
      for (const [name, schema] of Object.entries(schemas)) {
        const box = el("section", "component", el("h3", null, el("code", null, name)));
        box.id = idFor("schema", name);
        if (schema && schema.description) box.append(prose(schema.description));
        box.append(schemaBody(doc, schema, 0));
        main.append(box);
        list.append(el("li", null, anchor(box.id, el("code", null, name))));
      }
      nav.append(list);
    }
    document.body.dataset.ready = "true";
  }

  async function start() {
    const status = document.getElementById("status");
    try {
      const response = await fetch("openapi.json", { headers: { Accept: "application/json" }, cache: "no-store" });
      if (!response.ok) throw new Error(`openapi.json answered ${response.status}`);
      render(await response.json());
    } catch (error) {
      status.textContent = `Could not show the API: ${error.message}`;
      status.className = "error";
    }
  }

  document.addEventListener("DOMContentLoaded", start);
})();
