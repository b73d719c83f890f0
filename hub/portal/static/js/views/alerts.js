// Alerts of the tenant (its own and those shared with it), newest first, arriving live; filters, readable evidence,
// acknowledge with a note, resolve with a decision (and a note).

import { gql } from "../api.js";
import { ago, h, label, replace, when } from "../dom.js";

export const TITLE = "Alerts";

const FIELDS = `id kind severity status ownerId title evidence recommendation occurrences createdAt updatedAt
  acknowledgedAt acknowledgedBy resolvedAt resolvedBy note decision escalatedAt subjects { kind id label }`;
// The kinds and decisions come from the schema itself: new ones show up here without a change.
const PAGE = 50;
const LIST = `{ alerts(first: ${PAGE}) { nodes { ${FIELDS} } pageInfo { hasNextPage endCursor } }
  kinds: __type(name: "AlertKind") { enumValues { name } }
  decisions: __type(name: "AlertDecision") { enumValues { name } } }`;
const OLDER = `query($after: String) { alerts(first: ${PAGE}, after: $after) {
  nodes { ${FIELDS} } pageInfo { hasNextPage endCursor } } }`;
const LIVE = `subscription($after: ID) { alerts(after: $after) { cursor type occurredAt alert { ${FIELDS} } } }`;
const ACKNOWLEDGE = `mutation($id: ID!, $note: String) { acknowledgeAlert(id: $id, note: $note) { ${FIELDS} } }`;
const RESOLVE = `mutation($id: ID!, $decision: AlertDecision, $note: String) {
  resolveAlert(id: $id, decision: $decision, note: $note) { ${FIELDS} } }`;

let kinds = [];
let decisions = [];
let older = null; // the cursor of the next page of older alerts, while there is one
const SEVERITIES = ["critical", "warning", "info"];
const STATUSES = ["open", "acknowledged", "resolved"];

const alerts = new Map();
const filter = { kind: "", severity: "", status: "", location: "" };
let view = null; // {list, cards: Map, ctx} while mounted
let ctx = null;

export async function load(context) {
  ctx = context;
  alerts.clear();
  const data = await gql(LIST);
  kinds = data.kinds.enumValues.map((value) => value.name);
  decisions = data.decisions.enumValues.map((value) => value.name);
  for (const alert of data.alerts.nodes) alerts.set(alert.id, alert);
  older = data.alerts.pageInfo.hasNextPage ? data.alerts.pageInfo.endCursor : null;
}

export function subscriptions(cursor) {
  return [{ name: "alerts", query: LIVE, cursor, handle: (event) => upsert(event.alert, true) }];
}

function upsert(alert, live) {
  alerts.set(alert.id, alert);
  if (live) window.dispatchEvent(new CustomEvent("lotpulse:alert", { detail: alert }));
  if (!view) return;
  const card = renderCard(alert, live);
  const old = view.cards.get(alert.id);
  if (old) {
    keepNote(old, card);
    old.replaceWith(card);
  } else {
    const newer = [...view.cards.values()].find((el) => alerts.get(el.dataset.alertId).createdAt < alert.createdAt);
    view.list.insertBefore(card, newer || null);
  }
  view.cards.set(alert.id, card);
  updateCount();
}

function keepNote(old, card) {
  const before = old.querySelector("textarea");
  const after = card.querySelector("textarea");
  if (!before || !after) return;
  after.value = before.value;
  card.querySelector("select").value = old.querySelector("select").value;
  if (document.activeElement === before) after.focus();
}

function locationsOf(alert) {
  const ids = alert.subjects.filter((s) => s.kind === "location").map((s) => s.id);
  if (alert.evidence?.locationId) ids.push(alert.evidence.locationId);
  return ids;
}

function visible(alert) {
  return (!filter.kind || alert.kind === filter.kind)
    && (!filter.severity || alert.severity === filter.severity)
    && (!filter.status || alert.status === filter.status)
    && (!filter.location || locationsOf(alert).includes(filter.location));
}

function select(name, text, options, labelOf = label) {
  const id = `filter-${name}`;
  return h("div", { class: "field" },
    h("label", { for: id }, text),
    h("select", {
      id,
      onchange: (event) => {
        filter[name] = event.target.value;
        applyFilter();
      },
    },
    h("option", { value: "" }, "All"),
    options.map((value) => h("option", { value, selected: filter[name] === value }, labelOf(value)))));
}

function applyFilter() {
  for (const [id, card] of view.cards) card.hidden = !visible(alerts.get(id));
  updateCount();
}

function updateCount() {
  const shown = [...view.cards.values()].filter((card) => !card.hidden).length;
  replace(view.count, `${shown} of ${alerts.size} alerts`);
}

export function mount(container, context) {
  ctx = context;
  const list = h("div", { class: "alerts", id: "alert-list" });
  const count = h("p", { class: "count", role: "status" });
  view = { list, count, cards: new Map() };
  replace(container,
    h("h1", { tabindex: "-1" }, TITLE),
    h("form", { class: "filters", "aria-label": "Filter alerts", onsubmit: (e) => e.preventDefault() },
      select("kind", "Kind", kinds),
      select("severity", "Severity", SEVERITIES),
      select("status", "Status", STATUSES),
      select("location", "Location", [...ctx.locations.keys()], (id) => ctx.locationName(id))),
    count,
    list,
    h("button", { type: "button", id: "older-alerts", hidden: !older, onclick: loadOlder }, "Load older alerts"));
  const sorted = [...alerts.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
  for (const alert of sorted) {
    const card = renderCard(alert, false);
    view.cards.set(alert.id, card);
    list.append(card);
  }
  applyFilter();
}

export function unmount() {
  view = null;
}

async function loadOlder() {
  const data = await gql(OLDER, { after: older });
  older = data.alerts.pageInfo.hasNextPage ? data.alerts.pageInfo.endCursor : null;
  for (const alert of data.alerts.nodes) if (!alerts.has(alert.id)) upsert(alert, false);
  if (view) {
    applyFilter();
    document.getElementById("older-alerts").hidden = !older;
  }
}

function renderCard(alert, fresh) {
  const titleId = `alert-title-${alert.id}`;
  const card = h("article", {
    class: `alert sev-${alert.severity} status-${alert.status}${fresh ? " fresh" : ""}`,
    "aria-labelledby": titleId,
    dataset: { alertId: alert.id, status: alert.status, kind: alert.kind },
  },
  h("div", { class: "badges" },
    h("span", { class: `badge sev sev-${alert.severity}` }, alert.severity),
    h("span", { class: "badge" }, label(alert.kind)),
    h("span", { class: `badge status status-${alert.status}` }, alert.status)),
  h("h2", { id: titleId, tabindex: "-1" }, alert.title),
  h("p", { class: "meta" },
    `Raised ${when(alert.createdAt)}`,
    alert.ownerId !== ctx.me.tenant.id ? ` · shared by ${alert.ownerId}` : "",
    alert.occurrences > 1 ? ` · seen ${alert.occurrences} times` : "",
    alert.escalatedAt ? ` · escalated ${ago(alert.escalatedAt)}` : ""),
  lifecycle(alert),
  h("details", { class: "evidence", open: alert.status !== "resolved" },
    h("summary", {}, "Evidence"),
    evidence(alert.evidence)),
  alert.recommendation ? h("p", { class: "recommendation" }, h("strong", {}, "Recommendation: "), alert.recommendation) : null,
  decide(alert));
  return card;
}

// "tenant:subject" as "subject (tenant)"; the tenant is left out for people of the viewer's own.
function person(who) {
  const [tenant, subject] = who.includes(":") ? [who.slice(0, who.indexOf(":")), who.slice(who.indexOf(":") + 1)] : ["", who];
  return tenant && tenant !== ctx.me.tenant.id ? `${subject} (${tenant})` : subject;
}

function lifecycle(alert) {
  const steps = [];
  if (alert.acknowledgedAt) steps.push(`Acknowledged by ${person(alert.acknowledgedBy)} ${when(alert.acknowledgedAt)}`);
  if (alert.resolvedAt) {
    const decided = alert.decision ? ` (${label(alert.decision)})` : "";
    steps.push(`Resolved by ${person(alert.resolvedBy)} ${when(alert.resolvedAt)}${decided}`);
  }
  if (!steps.length && !alert.note) return null;
  return h("p", { class: "lifecycle" }, steps.join(" · "), alert.note ? h("q", {}, alert.note) : null);
}

function decide(alert) {
  if (!ctx.canWrite || alert.status === "resolved") return null;
  const noteId = `note-${alert.id}`;
  const decisionId = `decision-${alert.id}`;
  const message = h("p", { class: "message", role: "alert" });
  const run = async (mutation, done) => {
    const note = form.querySelector("textarea").value.trim() || null;
    const variables = { id: alert.id, note };
    // The hub refuses a resolution without a decision and says why; the message shows it.
    if (mutation === RESOLVE) variables.decision = form.querySelector("select").value || null;
    try {
      const data = await gql(mutation, variables);
      upsert(Object.values(data)[0], false);
      // The pressed button is gone with the old card: keep the keyboard user on this alert.
      const card = view?.cards.get(alert.id);
      (card?.querySelector("button") || card?.querySelector("h2"))?.focus();
      ctx.notify(`${done}: ${alert.title}`);
    } catch (error) {
      replace(message, error.message);
    }
  };
  const form = h("form", { class: "decide", onsubmit: (e) => e.preventDefault() },
    h("label", { for: noteId }, "Note"),
    h("textarea", { id: noteId, rows: "2", maxlength: "2000" }),
    h("label", { for: decisionId }, "Decision"),
    h("select", { id: decisionId },
      h("option", { value: "" }, "Choose when resolving"),
      decisions.map((value) => h("option", { value }, label(value)))),
    h("div", { class: "actions" },
      alert.status === "open"
        ? h("button", { type: "button", class: "acknowledge", onclick: () => run(ACKNOWLEDGE, "Acknowledged") }, "Acknowledge")
        : null,
      h("button", { type: "button", class: "resolve", onclick: () => run(RESOLVE, "Resolved") }, "Resolve")),
    message);
  return form;
}

// Evidence is JSON whose shape depends on the alert kind: lists of records become tables, readings a table of
// time and temperature, figures a definition list. Identifiers are left out: the codes and refs beside them say it.
const UNITS = [[/C$/, " (°C)"], [/Pct$/, " (%)"]];
const OBJECT_ID = /^[0-9a-f]{24}$/;

function words(key) {
  let unit = "";
  for (const [pattern, suffix] of UNITS) {
    if (pattern.test(key)) {
      key = key.replace(pattern, "");
      unit = suffix;
    }
  }
  const text = key.replace(/([a-z0-9])([A-Z])/g, "$1 $2").replace(/_/g, " ").toLowerCase();
  return text.charAt(0).toUpperCase() + text.slice(1) + unit;
}

function isId(key) {
  return /(^id|Id|Ids)$/.test(key);
}

// Line indexes count from 0 in the API and from 1 for people.
function cell(key, value) {
  return /^(line|dispatchLine)$/.test(key) && Number.isInteger(value) ? String(value + 1) : scalar(value);
}

function scalar(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "string" && /^\d{4}-\d{2}-\d{2}T/.test(value)) return when(value);
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(2).replace(/\.?0+$/, "");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function evidence(data) {
  if (!data || typeof data !== "object") return h("p", {}, scalar(data));
  const figures = [];
  const blocks = [];
  for (const [key, value] of Object.entries(data)) {
    if (isId(key)) continue;
    if (Array.isArray(value) && value.length && Array.isArray(value[0])) {
      // Readings: [time, °C, (humidity)]; folded away, they are the raw material behind the figures above.
      const headers = ["Time", "°C", "Humidity (%)"].slice(0, value[0].length);
      blocks.push(h("details", { class: "readings" }, h("summary", {}, `${words(key)} (${value.length})`),
        evidenceTable(words(key), headers, value.map((row) => row.map(scalar)))));
    } else if (Array.isArray(value) && value.length && typeof value[0] === "object") {
      const columns = [...new Set(value.flatMap((item) => Object.keys(item)))].filter((c) => !isId(c));
      blocks.push(evidenceTable(words(key), columns.map(words), value.map((item) => columns.map((c) => cell(c, item[c])))));
    } else if (Array.isArray(value) && value.every((item) => OBJECT_ID.test(item))) {
      if (value.length) figures.push([words(key), String(value.length)]);
    } else if (Array.isArray(value)) {
      if (value.length) figures.push([words(key), value.map(scalar).join(", ")]);
    } else {
      figures.push([words(key), scalar(value)]);
    }
  }
  return h("div", {},
    figures.length ? h("dl", { class: "figures" }, figures.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])) : null,
    blocks);
}

function evidenceTable(caption, headers, rows) {
  return h("div", { class: "scroll", role: "region", "aria-label": caption, tabindex: "0" },
    h("table", { class: "compact" },
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headers.map((title) => h("th", { scope: "col" }, title)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell)))))));
}
