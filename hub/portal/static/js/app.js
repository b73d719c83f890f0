// The portal's shell: sign-in, the session bar, the live feed and hash routing between the four views.

import * as auth from "./auth.js";
import { gql, LiveFeed } from "./api.js";
import { clock, replace } from "./dom.js";
import * as alerts from "./views/alerts.js";
import * as sensors from "./views/sensors.js";
import * as dispatches from "./views/dispatches.js";
import * as stock from "./views/stock.js";

const VIEWS = { alerts, sensors, dispatches, stock };
const $ = (id) => document.getElementById(id);

const ctx = {
  me: null,
  locations: new Map(),
  canWrite: false,
  notify(message) {
    replace($("notice"), message);
  },
  locationName(id) {
    const location = ctx.locations.get(id);
    return location ? `${location.code} · ${location.name}` : "a partner's location";
  },
};

let feed = null;
let current = null;

const BOOT = `{
  me { subject roles tenant { id name } }
  locations(first: 500) { nodes { id code name } }
  eventCursor
}`;

function showSignIn(message = "") {
  $("signin").hidden = false;
  $("nav").hidden = true;
  $("session").hidden = true;
  replace($("view"));
  $("client-id").value = auth.rememberedClient();
  replace($("signin-message"), message);
  document.title = "Sign in · Lotpulse portal";
}

async function signedIn() {
  const data = await gql(BOOT);
  ctx.me = data.me;
  ctx.canWrite = data.me.roles.some((role) => role !== "viewer");
  ctx.locations = new Map(data.locations.nodes.map((l) => [l.id, l]));
  $("signin").hidden = true;
  $("nav").hidden = false;
  $("session").hidden = false;
  replace($("who"), `${data.me.subject} · ${data.me.tenant.name}`);
  await Promise.all(Object.values(VIEWS).map((view) => view.load(ctx)));
  feed = new LiveFeed(
    Object.values(VIEWS).flatMap((view) => view.subscriptions(data.eventCursor)),
    (state, detail) => {
      const text = { live: "● Live", reconnecting: "Reconnecting…", off: "", error: `Live feed: ${detail}` }[state];
      replace($("live"), text);
      $("live").dataset.state = state;
    },
  );
  feed.start();
  route();
}

function route() {
  if (!ctx.me) return;
  const name = location.hash.slice(1) in VIEWS ? location.hash.slice(1) : "alerts";
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  current?.unmount?.();
  current = VIEWS[name];
  const container = replace($("view"));
  container.dataset.view = name;
  current.mount(container, ctx);
  document.title = `${current.TITLE} · Lotpulse portal`;
}

auth.onSessionChange((session, reason) => {
  if (reason === "renewed") {
    feed?.restart();
    replace($("who"), `${ctx.me.subject} · ${ctx.me.tenant.name} · session renewed ${clock(session.renewedAt)}`);
    $("who").dataset.renewals = String(Number($("who").dataset.renewals || 0) + 1);
    return;
  }
  feed?.stop();
  feed = null;
  ctx.me = null;
  current?.unmount?.();
  current = null;
  showSignIn(reason === "expired" ? "Your session has ended. Sign in again." : "You are signed out.");
});

async function boot() {
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const client = $("client-id").value.trim();
    if (client) auth.startSignIn(client);
  });
  $("sign-out").addEventListener("click", () => auth.signOut());
  window.addEventListener("hashchange", () => {
    route();
    $("view").querySelector("h1")?.focus();
  });
  try {
    if (await auth.finishSignIn()) return await signedIn();
  } catch (error) {
    return showSignIn(`Sign-in failed: ${error.message}`);
  }
  // A reload loses the in-memory token: sign in again straight away if this tab was signed in.
  if (auth.wasSignedIn() && auth.rememberedClient()) return auth.startSignIn(auth.rememberedClient());
  showSignIn();
}

boot();
