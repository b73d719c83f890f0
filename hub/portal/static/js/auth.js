// Sign-in as an OAuth public client: authorization code + PKCE (S256) at the hub, which sends the user on to their
// organisation's identity provider. Tokens live in this module's memory only: a reload signs in again. Only the
// sign-in in flight (state, PKCE verifier, client id: none of them a credential on its own) waits in sessionStorage
// for the redirect back.

const PENDING = "lotpulse.portal.pending";
const CLIENT = "lotpulse.portal.client";
const SIGNED_IN = "lotpulse.portal.signedIn";
const REDIRECT_URI = `${location.origin}/portal/`;
const SCOPE = "read write";

let metadata = null;
let session = null; // {clientId, accessToken, refreshToken, expiresAt}
let refreshTimer = null;
const listeners = new Set();

export function onSessionChange(listener) {
  listeners.add(listener);
}

function changed(reason) {
  for (const listener of listeners) listener(session, reason);
}

async function serverMetadata() {
  if (!metadata) {
    const response = await fetch("/.well-known/oauth-authorization-server");
    if (!response.ok) throw new Error("the hub's sign-in metadata is unavailable");
    metadata = await response.json();
  }
  return metadata;
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(length = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(length)));
}

export function rememberedClient() {
  return new URLSearchParams(location.search).get("client") || sessionStorage.getItem(CLIENT) || "";
}

export function wasSignedIn() {
  return sessionStorage.getItem(SIGNED_IN) === "1";
}

export async function startSignIn(clientId) {
  const meta = await serverMetadata();
  const verifier = randomString(48);
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const state = randomString(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ state, verifier, clientId, hash: location.hash }));
  sessionStorage.setItem(CLIENT, clientId);
  const query = new URLSearchParams({
    response_type: "code", client_id: clientId, redirect_uri: REDIRECT_URI, scope: SCOPE, state,
    code_challenge: challenge, code_challenge_method: "S256",
  });
  location.assign(`${meta.authorization_endpoint}?${query}`);
}

// Back from the authorization server: answers null when this page load is not a sign-in answer.
export async function finishSignIn() {
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return null;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, "", `/portal/${pending?.hash || ""}`); // the code never stays in the address bar
  const meta = await serverMetadata();
  if (!pending || params.get("state") !== pending.state) throw new Error("this sign-in answer was not for this page");
  if (params.get("iss") && params.get("iss") !== meta.issuer) throw new Error("the sign-in answer came from another server");
  if (params.has("error")) throw new Error(params.get("error_description") || params.get("error"));
  const tokens = await tokenRequest({
    grant_type: "authorization_code", code: params.get("code"), redirect_uri: REDIRECT_URI,
    client_id: pending.clientId, code_verifier: pending.verifier,
  });
  start(pending.clientId, tokens);
  return session;
}

async function tokenRequest(form) {
  const meta = await serverMetadata();
  const response = await fetch(meta.token_endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error_description || body.error || `sign-in failed (${response.status})`);
  return body;
}

function start(clientId, tokens) {
  session = {
    clientId,
    accessToken: tokens.access_token,
    refreshToken: tokens.refresh_token,
    expiresAt: Date.now() + tokens.expires_in * 1000,
    renewedAt: null,
  };
  sessionStorage.setItem(SIGNED_IN, "1");
  scheduleRefresh(tokens.expires_in);
}

// Renew at half the lifetime: a missed timer (a sleeping laptop) still leaves time before the token expires.
function scheduleRefresh(expiresIn) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, Math.max(1, expiresIn / 2) * 1000);
}

export async function refresh() {
  const current = session;
  if (!current) return;
  let tokens;
  try {
    tokens = await tokenRequest({
      grant_type: "refresh_token", refresh_token: current.refreshToken, client_id: current.clientId,
    });
  } catch (error) {
    if (session !== current) return;
    end();
    changed("expired");
    return;
  }
  if (session !== current) return; // signed out while the request was in flight
  start(current.clientId, tokens);
  session.renewedAt = new Date();
  changed("renewed");
}

export function accessToken() {
  return session?.accessToken ?? null;
}

function end() {
  clearTimeout(refreshTimer);
  session = null;
  sessionStorage.removeItem(SIGNED_IN);
}

// Sign out: revoking the refresh token ends the whole sign-in at the hub (its access tokens too).
export async function signOut() {
  if (!session) return;
  const { refreshToken, clientId } = session;
  end();
  changed("signed-out");
  const meta = await serverMetadata();
  await fetch(meta.revocation_endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token: refreshToken, token_type_hint: "refresh_token", client_id: clientId }),
  }).catch(() => undefined);
}
