// Stock positions with their effective expiry (after excursions), coloured by expiry risk; reloaded live.

import { gql } from "../api.js";
import { daysUntil, h, label, replace, table } from "../dom.js";

export const TITLE = "Stock";

const LIST = `{ stockPositions(first: 500) { nodes {
  id locationId lotCode lotStatus onHand expiresOn effectiveExpiresOn
  sku { code name minRemainingShelfLifeDays } } } }`;
const LIVE = `subscription($after: ID) { stockChanged(after: $after) { cursor } }`;
const SOON_DAYS = 7;

let positions = [];
let view = null;
let ctx = null;
let reload = null;

export async function load(context) {
  ctx = context;
  positions = (await gql(LIST)).stockPositions.nodes;
}

export function subscriptions(cursor) {
  // Changes come in bursts (a receipt books many lines): read the positions again once the burst is over.
  const handle = () => {
    clearTimeout(reload);
    reload = setTimeout(async () => {
      await load(ctx);
      if (view) render();
    }, 300);
  };
  return [{ name: "stockChanged", query: LIVE, cursor, handle }];
}

// Risk from the days left to the effective expiry: past it, inside the buyer's minimum or a week, or fine.
export function risk(position) {
  const days = daysUntil(position.effectiveExpiresOn || position.expiresOn);
  if (days === null) return { level: "none", text: "No expiry", days };
  if (days < 0) return { level: "critical", text: "Expired", days };
  const minimum = position.sku?.minRemainingShelfLifeDays ?? 0;
  if (days <= Math.max(SOON_DAYS, minimum)) return { level: "warning", text: `At risk: ${days} days left`, days };
  return { level: "ok", text: `${days} days left`, days };
}

export function mount(container, context) {
  ctx = context;
  view = { container };
  render();
}

export function unmount() {
  view = null;
}

function render() {
  const rows = positions
    .map((p) => ({ p, r: risk(p) }))
    .sort((a, b) => (a.r.days ?? Infinity) - (b.r.days ?? Infinity));
  replace(view.container,
    h("h1", { tabindex: "-1" }, TITLE),
    h("p", { class: "legend" },
      h("span", { class: "risk risk-critical" }, "Expired"), " ",
      h("span", { class: "risk risk-warning" }, "At risk"), " ",
      h("span", { class: "risk risk-ok" }, "Fine")),
    rows.length
      ? table("Stock positions, soonest expiry first",
        ["SKU", "Lot", "Location", "On hand", "Lot status", "Expires", "Effective expiry", "Risk"],
        rows.map(({ p, r }) => [
          p.sku ? `${p.sku.code} · ${p.sku.name}` : "—",
          p.lotCode || "—",
          ctx.locationName(p.locationId),
          p.onHand,
          p.lotStatus ? label(p.lotStatus) : "—",
          p.expiresOn || "—",
          p.effectiveExpiresOn && p.effectiveExpiresOn !== p.expiresOn ? h("strong", {}, p.effectiveExpiresOn) : (p.effectiveExpiresOn || "—"),
          h("span", { class: `risk risk-${r.level}` }, r.text),
        ]),
        (i) => ({ class: `risk-row-${rows[i].r.level}`, "data-lot": rows[i].p.lotCode || "" }))
      : h("p", {}, "No stock."));
}
