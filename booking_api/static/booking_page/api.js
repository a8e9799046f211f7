// The public API under /api/v1, the only source of data: the session's tokens, one client
// (refresh once on a 401, retries where the contract makes them safe), and small caches.
//
// Tokens are kept in sessionStorage (this tab only) and refreshed once on a 401: refresh
// tokens rotate and a reused one revokes its family, so one refresh is shared by all the
// requests that need it.

import { sleep } from "./dom.js";

const API = "/api/v1";
const TOKENS_KEY = "booking-page.tokens";
const USER_KEY = "booking-page.user";
const MAX_RETRIES = 3;

// ---- session -------------------------------------------------------------------------

export const session = {
  tokens: readStored(TOKENS_KEY),
  user: readStored(USER_KEY),
  save(tokens) {
    this.tokens = { access: tokens.access, refresh: tokens.refresh };
    sessionStorage.setItem(TOKENS_KEY, JSON.stringify(this.tokens));
  },
  setUser(user) {
    this.user = { id: user.id, username: user.username };
    sessionStorage.setItem(USER_KEY, JSON.stringify(this.user));
  },
  clear() {
    this.tokens = null;
    this.user = null;
    sessionStorage.removeItem(TOKENS_KEY);
    sessionStorage.removeItem(USER_KEY);
  },
};

function readStored(key) {
  try {
    return JSON.parse(sessionStorage.getItem(key) || "null");
  } catch {
    return null;
  }
}

// ---- the API client ------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `The service answered ${status}.`);
    this.status = status;
    this.code = body && body.code;
    this.details = (body && body.details) || {};
  }
}

export class SignInRequired extends Error {}

let refreshing = null;

/** One refresh at a time, shared: a rotated refresh token works once. */
function refreshSession() {
  if (!refreshing) {
    refreshing = (async () => {
      const refresh = session.tokens && session.tokens.refresh;
      if (!refresh) return false;
      try {
        const response = await fetch(`${API}/auth/refresh`, {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ refresh }),
        });
        if (!response.ok) return false;
        session.save(await response.json());
        return true;
      } catch {
        return false;
      }
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

export function retryAfterMs(response, fallbackSeconds = 1) {
  const seconds = Number(response.headers.get("Retry-After"));
  return 1000 * (Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 30) : fallbackSeconds);
}

/**
 * Call the API. `authed` sends the access token (refreshed once on a 401). GETs and requests
 * with an Idempotency-Key are retried on a 503 or a network error after Retry-After: the
 * contract makes both safe to repeat. Returns {status, data, response}; throws ApiError.
 */
export async function call(method, path, { body, authed = false, idempotencyKey, raw = false } = {}) {
  const url = path.startsWith("/api/") ? path : API + path;
  const repeatable = method === "GET" || Boolean(idempotencyKey);
  let refreshed = false;
  for (let attempt = 0; ; attempt += 1) {
    const headers = { Accept: raw ? "*/*" : "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    if (authed) {
      if (!session.tokens) throw new SignInRequired();
      headers.Authorization = `Bearer ${session.tokens.access}`;
    }
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch {
      if (repeatable && attempt < MAX_RETRIES) {
        await sleep(1000 * (attempt + 1));
        continue;
      }
      throw new ApiError(0, { code: "network_error", message: "The service cannot be reached. Try again." });
    }
    if (response.status === 401 && authed && !refreshed) {
      refreshed = true;
      if (await refreshSession()) continue;
      session.clear();
      throw new SignInRequired();
    }
    if (response.status === 503 && repeatable && attempt < MAX_RETRIES) {
      await sleep(retryAfterMs(response));
      continue;
    }
    if (raw && response.ok) return { status: response.status, data: null, response };
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return { status: response.status, data, response };
  }
}

/** A paginated list, following `next` up to `maxPages` pages. */
export async function allPages(path, maxPages = 5) {
  const results = [];
  let next = path;
  for (let page = 0; next && page < maxPages; page += 1) {
    const { data } = await call("GET", next);
    results.push(...data.results);
    next = data.next ? new URL(data.next, location.href).pathname + new URL(data.next, location.href).search : null;
  }
  return results;
}

// Shows and movies by id, fetched once per page load.
export const cache = { shows: new Map(), movies: new Map() };

function cached(map, id, path) {
  if (!map.has(id)) {
    const promise = call("GET", path).then(({ data }) => data);
    promise.catch(() => map.delete(id));
    map.set(id, promise);
  }
  return map.get(id);
}

export const getShow = (id) => cached(cache.shows, id, `/shows/${id}`);
export const getMovie = (id) => cached(cache.movies, id, `/movies/${id}`);
