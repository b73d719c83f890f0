// Dispatches in and out, the ones that failed their check first; their lines, receipts and mismatches, and a
// receipt form for what arrives here.

import { gql } from "../api.js";
import { h, label, replace, table, when } from "../dom.js";

export const TITLE = "Dispatches";

const FIELDS = `id ref shipperId consigneeId carrierId status shippedOn expectedOn hasMismatch receiptCount updatedAt
  createdAt lines { lotCode quantity received producedOn expiresOn sku { code name } }`;
const LIST = `{ dispatches(first: 200) { nodes { ${FIELDS} } } }`;
const ONE = `query($id: ID!) { dispatch(id: $id) { ${FIELDS} } }`;
const RECEIPTS = `query($id: ID!) { receipts(dispatchId: $id, first: 50) { nodes {
  id ref final outcome receivedAt resolvedAt
  mismatches { kind line expected found nearMiss lotCode }
  lines { skuRef lotCode quantity expiresOn } } } }`;
const LIVE = `subscription($after: ID) { dispatchUpdated(after: $after) { cursor type dispatch { id } } }`;
const RECORD = `mutation($input: RecordReceiptInput!) { recordReceipt(input: $input) {
  id outcome mismatches { kind line expected found nearMiss } } }`;

const OPEN_STATUSES = ["dispatched", "in_transit"];
const dispatches = new Map();
let view = null;
let ctx = null;

export async function load(context) {
  ctx = context;
  dispatches.clear();
  for (const d of (await gql(LIST)).dispatches.nodes) dispatches.set(d.id, d);
}

export function subscriptions(cursor) {
  return [{ name: "dispatchUpdated", query: LIVE, cursor, handle: (event) => refresh(event.dispatch.id) }];
}

async function refresh(id) {
  const { dispatch } = await gql(ONE, { id });
  if (dispatches.get(id)?.updatedAt > dispatch.updatedAt) return; // an answer overtaken by a newer one
  dispatches.set(id, dispatch);
  if (!view) return;
  const card = view.cards.get(id);
  if (!card) {
    const created = renderCard(dispatch, true);
    view.cards.set(id, created);
    view.list.prepend(created);
  } else {
    dress(card, dispatch, true);
    const body = card.querySelector(".body");
    // Refill an open card unless the user is working in it (their receipt form answers for itself).
    if (card.open && !body.contains(document.activeElement)) fillDetails(card, dispatch);
    else if (!card.open) delete card.dataset.filled;
  }
  sortCards();
}

// Failed checks first, then the newest.
function order(a, b) {
  if (a.hasMismatch !== b.hasMismatch) return a.hasMismatch ? -1 : 1;
  return a.createdAt < b.createdAt ? 1 : -1;
}

function sortCards() {
  const sorted = [...dispatches.values()].sort(order);
  for (const d of sorted) {
    const card = view.cards.get(d.id);
    if (card) view.list.append(card);
  }
}

export function mount(container, context) {
  ctx = context;
  const list = h("div", { class: "dispatches" });
  view = { list, cards: new Map() };
  replace(container, h("h1", { tabindex: "-1" }, TITLE),
    h("p", { class: "hint" }, "Dispatches whose receipt did not match their notice are listed first."),
    list);
  for (const d of [...dispatches.values()].sort(order)) {
    const card = renderCard(d, false);
    view.cards.set(d.id, card);
    list.append(card);
  }
  if (!dispatches.size) list.append(h("p", {}, "No dispatches yet."));
}

export function unmount() {
  view = null;
}

function direction(d) {
  const me = ctx.me.tenant.id;
  if (d.consigneeId === me) return { text: "Inbound", partner: d.shipperId };
  if (d.shipperId === me) return { text: "Outbound", partner: d.consigneeId };
  return { text: "Carried", partner: `${d.shipperId} → ${d.consigneeId}` };
}

function renderCard(d, fresh) {
  const card = h("details", {
    ontoggle: () => {
      if (card.open && !card.dataset.filled) fillDetails(card, dispatches.get(card.dataset.dispatchId));
    },
  }, h("summary", {}), h("div", { class: "body" }));
  dress(card, d, fresh);
  return card;
}

// The card's class, data and summary line: updated in place so keyboard focus on the summary stays put.
function dress(card, d, fresh) {
  const dir = direction(d);
  card.className = `dispatch${d.hasMismatch ? " mismatch" : ""}${fresh ? " fresh" : ""}`;
  Object.assign(card.dataset, { dispatchId: d.id, ref: d.ref, status: d.status });
  replace(card.querySelector("summary"),
    h("span", { class: "ref" }, d.ref),
    h("span", { class: "dir" }, `${dir.text} · ${dir.partner}`),
    h("span", { class: `badge status-${d.status}` }, label(d.status)),
    d.hasMismatch ? h("span", { class: "badge sev-critical flag" }, "⚠ Mismatch") : null,
    h("span", { class: "when" }, d.expectedOn ? `expected ${d.expectedOn}` : `sent ${when(d.createdAt)}`));
}

async function fillDetails(card, d) {
  card.dataset.filled = "1";
  const body = card.querySelector(".body");
  const lines = table(`Lines of ${d.ref}`, ["SKU", "Lot", "Quantity", "Received", "Expires"],
    d.lines.map((l) => [l.sku ? `${l.sku.code} · ${l.sku.name}` : "—", l.lotCode, l.quantity, l.received, l.expiresOn || "—"]));
  replace(body, lines, h("p", {}, "Loading receipts…"));
  const receipts = (await gql(RECEIPTS, { id: d.id })).receipts.nodes;
  replace(body, lines, receipts.map((r) => receiptBlock(d, r)), receiptForm(d));
}

function receiptBlock(d, r) {
  return h("section", { class: `receipt outcome-${r.outcome}` },
    h("h3", {}, `Receipt ${r.ref || ""} · ${when(r.receivedAt)} · `,
      h("span", { class: r.outcome === "mismatched" ? "bad" : "good" }, r.outcome), r.final ? " · final" : ""),
    r.mismatches.length
      ? table(`Mismatches of the receipt of ${when(r.receivedAt)}`, ["Problem", "Line", "Expected", "Found", "Near miss"],
        r.mismatches.map((m) => [label(m.kind), m.line === null ? "—" : m.line + 1, m.expected ?? "—", m.found ?? "—", m.nearMiss ? "yes" : "no"]),
        () => ({ class: "mismatch-row" }))
      : null);
}

// Typed fields per dispatch line, prefilled with the notice; a scan field comes once the API accepts scans.
function receiptForm(d) {
  const receiving = d.consigneeId === ctx.me.tenant.id || d.carrierId === ctx.me.tenant.id;
  if (!ctx.canWrite || !receiving || !OPEN_STATUSES.includes(d.status)) return null;
  const message = h("p", { class: "message", role: "status" });
  const rows = d.lines.map((line, i) => {
    const id = (name) => `rcv-${d.id}-${i}-${name}`;
    return h("fieldset", { class: "receipt-line" },
      h("legend", {}, `Line ${i + 1}`),
      field(id("sku"), "SKU", { name: "sku", value: line.sku?.code || "", required: true }),
      field(id("lot"), "Lot code", { name: "lotCode", value: line.lotCode, required: true }),
      field(id("qty"), "Quantity", { name: "quantity", type: "number", min: "0", step: "1", value: line.quantity, required: true }),
      field(id("exp"), "Expiry", { name: "expiresOn", type: "date", value: line.expiresOn || "" }));
  });
  const finalId = `rcv-${d.id}-final`;
  const form = h("form", {
    class: "receipt-form", "aria-label": `Record a receipt of ${d.ref}`,
    onsubmit: async (event) => {
      event.preventDefault();
      const lines = [...form.querySelectorAll("fieldset")].map((set) => {
        const value = (name) => set.querySelector(`[name=${name}]`).value.trim();
        return { sku: value("sku"), lotCode: value("lotCode"), quantity: Number(value("quantity")), expiresOn: value("expiresOn") || null };
      });
      try {
        const { recordReceipt: r } = await gql(RECORD, { input: { dispatchId: d.id, lines, final: form.querySelector(`#${finalId}`).checked } });
        replace(message, r.outcome === "matched" ? "Receipt recorded: it matches the notice."
          : `Receipt recorded with mismatches: ${r.mismatches.map((m) => label(m.kind)).join(", ")}.`);
        ctx.notify(`Receipt of ${d.ref} recorded`);
      } catch (error) {
        replace(message, `Not recorded: ${error.message}`);
      }
    },
  },
  h("h3", {}, "Record a receipt"),
  rows,
  h("div", { class: "check" }, h("input", { type: "checkbox", id: finalId }), h("label", { for: finalId }, "Final: nothing more will arrive")),
  h("button", { type: "submit" }, "Record receipt"),
  message);
  return form;
}

function field(id, text, attrs) {
  return h("div", { class: "field" }, h("label", { for: id }, text), h("input", { id, ...attrs }));
}
