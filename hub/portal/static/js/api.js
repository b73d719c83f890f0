// GraphQL over HTTP with the session's token, and the live feed over graphql-transport-ws (the vendored
// graphql-ws client). The feed resumes from the last cursor it saw whenever it reconnects, so a reconnect (after a
// network drop or a token renewal) neither loses nor repeats an event.

import { accessToken, refresh } from "./auth.js";

export class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

export async function gql(query, variables = {}, retried = false) {
  const token = accessToken();
  if (!token) throw new ApiError("signed out", "UNAUTHENTICATED");
  const response = await fetch("/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  if (response.status === 429 && !retried) {
    // Over the tenant's rate limit: wait as long as the hub asks (within reason), then try once more.
    const wait = Math.min(Number(response.headers.get("retry-after")) || 1, 10);
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));
    return gql(query, variables, true);
  }
  const body = await response.json().catch(() => null);
  if (body?.errors?.length) {
    const error = body.errors[0];
    // Revoked or expired early: renewing either brings a working token or ends the session.
    if (error.extensions?.code === "UNAUTHENTICATED") refresh();
    throw new ApiError(error.message, error.extensions?.code);
  }
  if (!response.ok || !body) throw new ApiError(`the hub answered ${response.status}`, "INTERNAL_SERVER_ERROR");
  return body.data;
}

const TOKEN_REFUSED = 4403;

// One socket carrying several subscriptions; each handler gets every event once, in order.
export class LiveFeed {
  constructor(subscriptions, onState) {
    this.subscriptions = subscriptions; // [{name, query, cursor, handle(data)}]
    this.onState = onState;
    this.client = null;
    this.stopped = true;
    this.retry = null;
    this.delay = 1000;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  // The current client is forgotten before it is disposed, so its closing sinks are ignored by lost().
  drop() {
    const client = this.client;
    this.client = null;
    client?.dispose();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retry);
    this.drop();
    this.onState("off");
  }

  // A renewed token: reconnect with it at once, resuming each subscription from its cursor.
  restart() {
    if (this.stopped) return;
    clearTimeout(this.retry);
    this.drop();
    this.connect();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const client = graphqlWs.createClient({
      url: `${scheme}://${location.host}/graphql`,
      connectionParams: () => ({ authorization: `Bearer ${accessToken()}` }),
      lazy: false,
      retryAttempts: 0, // reconnecting is ours: it must resume from the newest cursor, not the first one
      onNonLazyError: () => undefined,
      on: {
        connected: () => {
          this.delay = 1000;
          this.onState("live");
        },
      },
    });
    this.client = client;
    for (const sub of this.subscriptions) {
      client.subscribe(
        { query: sub.query, variables: { after: sub.cursor } },
        {
          next: (message) => {
            if (client !== this.client) return;
            if (message.errors) {
              this.onState("error", message.errors[0].message);
              return;
            }
            const event = message.data[sub.name];
            sub.cursor = event.cursor;
            sub.handle(event);
          },
          error: (reason) => this.lost(client, reason),
          complete: () => this.lost(client),
        },
      );
    }
  }

  lost(client, reason) {
    if (client !== this.client || this.stopped) return;
    this.drop();
    if (reason?.code === TOKEN_REFUSED) {
      // The hub closed the socket on our token (expired or revoked): renew it; the renewal reconnects us,
      // a refused renewal ends the session.
      this.onState("reconnecting");
      refresh();
      return;
    }
    this.onState("reconnecting");
    clearTimeout(this.retry);
    this.retry = setTimeout(() => this.connect(), this.delay);
    this.delay = Math.min(this.delay * 2, 15000);
  }
}
