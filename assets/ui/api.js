// The API client: the token (sessionStorage only; sent as `Authorization: Bearer`, never in
// a cookie or URL), problem+json errors, who the token is, and the change feed.

const TOKEN_KEY = "stockd.token";
/** Seconds one change-feed request waits for news (API.md allows ≤ 30). Short enough that
 * a graceful stop of the daemon, which lets requests in flight finish, is not held up long
 * by an open tab; long enough that an idle tab costs 6 small requests a minute. */
const FEED_WAIT_SECONDS = 10;
/** Rows per change-feed request. */
const FEED_LIMIT = 500;
/** Pause after a failed feed request, growing to the max. */
const FEED_RETRY_MS = 1000;
const FEED_RETRY_MAX_MS = 30000;

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}
export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}
export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** An API error: the problem+json `detail` is what the page shows. */
export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

/** Called on any 401: the app returns to sign-in. */
let onUnauthenticated = () => {};
export function whenUnauthenticated(fn) {
  onUnauthenticated = fn;
}

/** Query string from an object, skipping empty values. */
export function qs(params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** A request to the API; the answer's JSON, or an ApiError with the problem's detail. */
export async function api(path, { method = "GET", body, signal, idempotencyKey } = {}) {
  const headers = { Accept: "application/json" };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal, credentials: "omit", cache: "no-store" });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "network", "The stock server cannot be reached. Check the connection and try again.");
  }
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (res.ok) return json;
  const detail = (json && json.detail) || `The server answered ${res.status} ${res.statusText}.`;
  const err = new ApiError(res.status, (json && json.code) || "", detail);
  if (res.status === 401) onUnauthenticated(err);
  throw err;
}

/** A fresh Idempotency-Key, so a retried click is never applied twice. */
export function newKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

// ---- who the token is ----

export const session = {
  name: "",
  scopes: [],
  /** null = every warehouse. */
  restrictedTo: null,
  /** Visible warehouses: [{id, name}]. */
  warehouses: [],
  feedPosition: 0,
  get canWrite() {
    return this.scopes.includes("inventory:write") || this.scopes.includes("admin");
  },
  get isAdmin() {
    return this.scopes.includes("admin");
  },
};

/** Loads who the token is and the warehouses it may see. */
export async function loadSession() {
  const me = (await api("/api/whoami")).data;
  session.name = me.name;
  session.scopes = me.scopes;
  session.restrictedTo = me.warehouses;
  session.feedPosition = me.feed_position;
  const all = (await api("/api/warehouses?limit=500")).data;
  session.warehouses = me.warehouses ? all.filter((w) => me.warehouses.includes(w.id)) : all;
  return session;
}

export function warehouseName(id) {
  const w = session.warehouses.find((x) => x.id === id);
  return w ? w.name : id;
}

/**
 * The warehouse values to query a list with: [chosen] when one is chosen, [null] (no
 * filter) for an unrestricted token, else each of its warehouses (a list for a token
 * restricted to several warehouses must name one, API.md).
 */
export function warehouseScope(chosen) {
  if (chosen) return [chosen];
  if (!session.restrictedTo) return [null];
  return session.warehouses.map((w) => w.id);
}

// ---- the change feed ----

const listeners = new Set();
/** `fn(movements)` runs after each batch of changes; returns an unsubscribe function. */
export function onChanges(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

let feedAbort = null;
let feedState = () => {};
/** `fn("live" | "retrying")` reports the feed's state. */
export function onFeedState(fn) {
  feedState = fn;
}

export function startFeed() {
  stopFeed();
  const abort = new AbortController();
  feedAbort = abort;
  runFeed(abort.signal);
}

export function stopFeed() {
  if (feedAbort) feedAbort.abort();
  feedAbort = null;
}

async function runFeed(signal) {
  let position = session.feedPosition;
  let retryMs = FEED_RETRY_MS;
  // The first request does not wait: it confirms the feed answers, so the page can say
  // "Live" at once rather than after the first long poll.
  let wait = 0;
  while (!signal.aborted) {
    try {
      const page = await api(`/api/inventory/changes${qs({ after: position, wait, limit: FEED_LIMIT })}`, { signal });
      wait = FEED_WAIT_SECONDS;
      feedState("live");
      retryMs = FEED_RETRY_MS;
      position = page.meta.next_after;
      if (page.data.length > 0) for (const fn of [...listeners]) fn(page.data);
    } catch (e) {
      if (signal.aborted || (e instanceof ApiError && e.status === 401)) return;
      feedState("retrying");
      await new Promise((r) => setTimeout(r, retryMs));
      retryMs = Math.min(retryMs * 2, FEED_RETRY_MAX_MS);
    }
  }
}
