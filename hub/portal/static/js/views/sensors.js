// One chart per sensor (last 24 h or 7 d, downsampled by the hub) with its storage limit as a line and its
// excursions shaded; its heartbeat (online, or silent since when) and the lots its excursions exposed.

import { gql } from "../api.js";
import { ago, h, replace, table, when } from "../dom.js";

export const TITLE = "Sensors";

const LIST = `{ sensors(first: 100) { nodes {
  id deviceId name locationId online lastReadingAt lastTemperatureC inExcursion limitC } } }`;
const SERIES = `query($id: ID!, $from: DateTime!, $interval: Int!) {
  sensorReadings(sensorId: $id, from: $from, intervalMinutes: $interval, first: 200) {
    aggregates { start avgC maxC } truncated }
  excursions(filter: {sensorId: $id, startedAfter: $from}, first: 50) { nodes {
    id status cause startedAt endedAt limitC peakC degreeMinutes durationMinutes
    exposedLots { lotCode skuCode degreeMinutes shelfLifeLossPct expiresAfter } } } }`;
const RANGES = { "24h": { hours: 24, interval: 15, text: "Last 24 h" }, "7d": { hours: 168, interval: 60, text: "Last 7 days" } };
export const COLORS = { limit: "#b00020", average: "#1565c0", peak: "#6a1b9a", excursion: "rgba(255, 143, 0, 0.28)" };

let sensors = [];
let view = null;
let ctx = null;

export async function load(context) {
  ctx = context;
  sensors = (await gql(LIST)).sensors.nodes;
}

export function subscriptions() {
  return [];
}

const HEARTBEAT_MS = 60_000;

export function mount(container, context) {
  ctx = context;
  view = {
    charts: [],
    observer: new ResizeObserver(resize),
    // Charts are read and drawn as they come into view: a site with a hundred sensors costs what is on screen.
    visibility: new IntersectionObserver(appear, { rootMargin: "200px" }),
    timer: setInterval(beat, HEARTBEAT_MS),
  };
  window.addEventListener("lotpulse:alert", onAlert);
  replace(container, h("h1", { tabindex: "-1" }, TITLE),
    sensors.length ? sensors.map(card) : h("p", {}, "No sensors registered."));
}

export function unmount() {
  if (!view) return;
  view.observer.disconnect();
  view.visibility.disconnect();
  clearInterval(view.timer);
  window.removeEventListener("lotpulse:alert", onAlert);
  for (const chart of view.charts) chart.plot?.destroy();
  view = null;
}

// Readings arrive without an event of their own: the heartbeat lines are read again every minute.
async function beat() {
  await load(ctx);
  for (const chart of view?.charts || []) {
    const fresh = sensors.find((s) => s.id === chart.sensor.id);
    if (fresh) {
      chart.sensor = fresh;
      replace(chart.meta, ...metaLine(fresh));
    }
  }
}

// A spike alert about a sensor on screen: its chart and exposed lots are drawn again.
function onAlert(event) {
  const chart = view?.charts.find((c) => c.sensor.id === event.detail.evidence?.sensorId);
  if (chart && chart.holder.dataset.drawn !== undefined) draw(chart, chart.range); // charts not yet seen wait
}

function metaLine(sensor) {
  return [heartbeat(sensor), ` · ${ctx.locationName(sensor.locationId)} · device ${sensor.deviceId}`,
    sensor.limitC !== null ? ` · limit ${sensor.limitC} °C` : " · no storage limit for the goods here"];
}

function appear(entries) {
  for (const entry of entries) {
    const chart = entry.isIntersecting && view?.charts.find((c) => c.holder === entry.target);
    if (chart) {
      view.visibility.unobserve(chart.holder);
      draw(chart, chart.range);
    }
  }
}

function resize(entries) {
  for (const entry of entries) {
    const chart = view?.charts.find((c) => c.holder === entry.target);
    if (chart?.plot) chart.plot.setSize({ width: chartWidth(chart.holder), height: chart.plot.height });
  }
}

function chartWidth(holder) {
  return Math.max(240, Math.floor(holder.getBoundingClientRect().width));
}

function heartbeat(sensor) {
  if (!sensor.lastReadingAt) return h("span", { class: "beat silent" }, "No readings yet");
  const last = `${sensor.lastTemperatureC?.toFixed(1)} °C ${ago(sensor.lastReadingAt)}`;
  return sensor.online
    ? h("span", { class: "beat online" }, `● Online · ${last}`)
    : h("span", { class: "beat silent" }, `○ Silent since ${when(sensor.lastReadingAt)} (last ${last})`);
}

function card(sensor) {
  const title = sensor.name || sensor.deviceId;
  const headingId = `sensor-${sensor.id}`;
  const holder = h("div", { class: "chart", role: "img", "aria-label": `Temperature chart of ${title}` });
  const caption = h("figcaption", {});
  const exposed = h("div", { class: "exposed" });
  const meta = h("p", { class: "meta" }, ...metaLine(sensor));
  const chart = { sensor, holder, caption, exposed, meta, plot: null, range: "24h" };
  view.charts.push(chart);
  view.observer.observe(holder);
  const range = h("fieldset", { class: "range" }, h("legend", {}, "Period"),
    Object.entries(RANGES).map(([key, r], i) => {
      const id = `range-${sensor.id}-${key}`;
      return h("span", { class: "choice" },
        h("input", { type: "radio", id, name: `range-${sensor.id}`, value: key, checked: i === 0, onchange: () => draw(chart, key) }),
        h("label", { for: id }, r.text));
    }));
  const article = h("article", { class: "sensor", "aria-labelledby": headingId, dataset: { sensorId: sensor.id } },
    h("h2", { id: headingId }, title),
    meta,
    range,
    h("figure", {}, holder, caption),
    exposed);
  view.visibility.observe(holder);
  return article;
}

async function draw(chart, key) {
  chart.range = key;
  const range = RANGES[key];
  const from = new Date(Date.now() - range.hours * 3600 * 1000);
  const data = await gql(SERIES, { id: chart.sensor.id, from: from.toISOString(), interval: range.interval });
  if (!view || !view.charts.includes(chart) || chart.range !== key) return; // gone, or another period chosen since
  const points = data.sensorReadings.aggregates;
  const excursions = data.excursions.nodes;
  const limit = chart.sensor.limitC ?? excursions.find((e) => e.limitC !== null)?.limitC ?? null;
  chart.plot?.destroy();
  chart.plot = null;
  replace(chart.holder);
  chart.holder.dataset.drawn = "";
  if (!points.length) {
    replace(chart.caption, `${range.text}: no readings in this period.`);
    replace(chart.exposed);
    return;
  }
  const xs = points.map((p) => Date.parse(p.start) / 1000);
  const spans = excursions.map((e) => [Date.parse(e.startedAt) / 1000, (e.endedAt ? Date.parse(e.endedAt) : Date.now()) / 1000]);
  const series = [{}, { label: "Average °C", stroke: COLORS.average, width: 2 }, { label: "Peak °C", stroke: COLORS.peak, width: 1, dash: [2, 3] }];
  const values = [xs, points.map((p) => p.avgC), points.map((p) => p.maxC)];
  if (limit !== null) {
    series.push({ label: "Limit °C", stroke: COLORS.limit, width: 2, dash: [8, 5], points: { show: false } });
    values.push(xs.map(() => limit));
  }
  chart.plot = new uPlot({
    width: chartWidth(chart.holder),
    height: 240,
    legend: { show: false },
    cursor: { show: false },
    scales: { x: { time: true } },
    axes: [{}, { label: "°C" }],
    series,
    plugins: [shade(spans)],
  }, values, chart.holder);
  chart.holder.dataset.drawn = key;
  const peak = Math.max(...points.map((p) => p.maxC));
  const low = Math.min(...points.map((p) => p.avgC));
  replace(chart.caption,
    `${range.text}: ${low.toFixed(1)} to ${peak.toFixed(1)} °C`,
    limit !== null ? `, limit ${limit} °C (dashed red line)` : "",
    excursions.length ? `, ${excursions.length} excursion${excursions.length > 1 ? "s" : ""} shaded in orange` : ", no excursion",
    data.sensorReadings.truncated ? " (more readings than shown)" : "", ".");
  chart.holder.setAttribute("aria-label", `Temperature chart of ${chart.sensor.name || chart.sensor.deviceId}. ${chart.caption.textContent}`);
  replace(chart.exposed, excursions.length ? exposure(chart.sensor, excursions) : null);
}

// Excursions shaded behind the grid and the lines, from their start to their end (or now).
function shade(spans) {
  return {
    hooks: {
      drawClear: [(u) => {
        const { left, top, width, height } = u.bbox;
        u.ctx.save();
        u.ctx.fillStyle = COLORS.excursion;
        for (const [start, end] of spans) {
          const x0 = Math.max(left, u.valToPos(start, "x", true));
          const x1 = Math.min(left + width, u.valToPos(end, "x", true));
          if (x1 > x0) u.ctx.fillRect(x0, top, Math.max(x1 - x0, 2), height);
        }
        u.ctx.restore();
      }],
    },
  };
}

function exposure(sensor, excursions) {
  const rows = excursions.flatMap((e) => e.exposedLots.map((lot) => [
    lot.lotCode, lot.skuCode, `${when(e.startedAt)} (${e.cause.replace(/_/g, " ")})`, `${e.peakC} °C`,
    lot.degreeMinutes.toFixed(0), `${lot.shelfLifeLossPct} %`, lot.expiresAfter || "—",
  ]));
  const open = excursions.filter((e) => e.status === "open").length;
  return h("div", {},
    h("h3", {}, `Excursions: ${excursions.length}${open ? ` (${open} in progress)` : ""}`),
    rows.length
      ? table(`Lots exposed at ${sensor.name || sensor.deviceId}`,
        ["Lot", "SKU", "Excursion", "Peak", "°C·min", "Shelf life lost", "Expires now"], rows)
      : h("p", {}, "No lots were exposed."));
}
