// The customer booking page: a small app on the public API under /api/v1, nothing else.
//
// Every movie, seat, price and booking shown comes from the API; the only sum computed here
// is the estimate before booking (the booking's `total` is the truth once decided). Text from
// the API reaches the page through textContent and attributes only (no innerHTML), and every
// handler is attached with addEventListener, so the page runs under a CSP without
// 'unsafe-inline' (booking_api/views/page.py).
//
// Tokens are kept in sessionStorage (this tab only) and refreshed once on a 401: refresh
// tokens rotate and a reused one revokes its family, so one refresh is shared by all the
// requests that need it.

const API = "/api/v1";
const TOKENS_KEY = "booking-page.tokens";
const USER_KEY = "booking-page.user";
const MAX_RETRIES = 3;

const TICKET_LABELS = { adult: "Adult", child: "Child", senior: "Senior", student: "Student" };
const CATEGORY_LABELS = {
  standard: "Standard",
  premium: "Premium",
  accessible: "Wheelchair space",
  companion: "Companion seat",
};
const SHORT_CATEGORY_LABELS = { standard: "Standard", premium: "Premium", accessible: "Wheelchair", companion: "Companion" };
const STATUS_LABELS = {
  pending: "Pending",
  held: "Held",
  confirmed: "Confirmed",
  failed: "Failed",
  cancelled: "Cancelled",
  expired: "Expired",
};
const FAILURE_TEXT = {
  seats_unavailable: "One of the seats you chose was taken just before your booking was decided.",
  sold_out: "Not enough seats were left.",
  show_started: "The show started before your booking could be decided.",
  show_cancelled: "The show was cancelled.",
  limit_exceeded: "You already hold the most seats one person may book for this show.",
  processing_error: "The booking could not be processed. Please try again.",
};
// The fake provider's test tokens (CONTRACT.md, "Holds, payment, tickets, admission").
const PAYMENT_TOKENS = [
  ["tok_ok", "Test card that pays at once"],
  ["tok_declined", "Test card that is declined"],
  ["tok_async_ok", "Test card that confirms a moment later"],
];
const LIVE_STATUSES = new Set(["pending", "held", "confirmed"]);

// ---- small DOM helpers ---------------------------------------------------------------

/** An element; string children become text nodes, `on*` props become listeners. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const main = () => document.getElementById("main");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function money(amount, currency) {
  if (amount === null || amount === undefined) return "";
  try {
    // Display only: the API's decimal string, formatted for the reader's locale.
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(Number(amount));
  } catch {
    return `${amount} ${currency}`;
  }
}

/** "12.50" -> 1250, exactly (no float arithmetic on money). */
function cents(amount) {
  const match = /^(\d+)(?:\.(\d{1,2}))?$/.exec(String(amount));
  if (!match) return NaN;
  return Number(match[1]) * 100 + Number((match[2] || "").padEnd(2, "0"));
}

const decimal = (c) => `${Math.floor(c / 100)}.${String(c % 100).padStart(2, "0")}`;

const dateTime = new Intl.DateTimeFormat(undefined, {
  weekday: "short",
  day: "numeric",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
});
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const when = (iso) => (iso ? dateTime.format(new Date(iso)) : "");

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

/** A UUID v4 for Idempotency-Key (crypto.randomUUID needs a secure context; this does not). */
function newKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// ---- session -------------------------------------------------------------------------

const session = {
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
    drawAccount();
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

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `The service answered ${status}.`);
    this.status = status;
    this.code = body && body.code;
    this.details = (body && body.details) || {};
  }
}

class SignInRequired extends Error {}

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

function retryAfterMs(response, fallbackSeconds = 1) {
  const seconds = Number(response.headers.get("Retry-After"));
  return 1000 * (Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 30) : fallbackSeconds);
}

/**
 * Call the API. `authed` sends the access token (refreshed once on a 401). GETs and requests
 * with an Idempotency-Key are retried on a 503 or a network error after Retry-After: the
 * contract makes both safe to repeat. Returns {status, data, response}; throws ApiError.
 */
async function call(method, path, { body, authed = false, idempotencyKey, raw = false } = {}) {
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
async function allPages(path, maxPages = 5) {
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
const cache = { shows: new Map(), movies: new Map() };

function cached(map, id, path) {
  if (!map.has(id)) {
    const promise = call("GET", path).then(({ data }) => data);
    promise.catch(() => map.delete(id));
    map.set(id, promise);
  }
  return map.get(id);
}

const getShow = (id) => cached(cache.shows, id, `/shows/${id}`);
const getMovie = (id) => cached(cache.movies, id, `/movies/${id}`);

// ---- routing -------------------------------------------------------------------------

/** The life of one rendered view: its timers and blob URLs end when the reader leaves. */
class View {
  constructor() {
    this.alive = true;
    this.timers = new Set();
    this.urls = [];
  }

  later(fn, ms) {
    const id = setTimeout(() => {
      this.timers.delete(id);
      if (this.alive) fn();
    }, ms);
    this.timers.add(id);
  }

  every(fn, ms) {
    const id = setInterval(() => (this.alive ? fn() : clearInterval(id)), ms);
    this.timers.add(id);
    return id;
  }

  render(...nodes) {
    if (!this.alive) return;
    main().replaceChildren(...nodes);
    main().removeAttribute("aria-busy");
    const heading = main().querySelector("h1");
    if (heading) {
      document.title = `${heading.textContent} · Cinema`;
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
    window.scrollTo(0, 0);
  }

  leave() {
    this.alive = false;
    for (const id of this.timers) {
      clearTimeout(id);
      clearInterval(id);
    }
    for (const url of this.urls) URL.revokeObjectURL(url);
  }
}

const ROUTES = [
  [/^\/?$/, viewMovies],
  [/^\/shows\/(\d+)$/, viewShow],
  [/^\/bookings$/, viewMyBookings],
  [/^\/bookings\/([0-9a-f-]{36})$/, viewBooking],
  [/^\/signin$/, viewSignIn],
  [/^\/signup$/, viewSignUp],
];

let current = null;

function parseHash() {
  const raw = location.hash.replace(/^#/, "");
  const [path, query = ""] = raw.split("?");
  return { path: path || "/", query: new URLSearchParams(query) };
}

async function route() {
  if (current) current.leave();
  const view = (current = new View());
  hideNotice();
  main().setAttribute("aria-busy", "true");
  const { path, query } = parseHash();
  for (const [pattern, handler] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    try {
      await handler(view, query, ...match.slice(1));
    } catch (error) {
      if (!view.alive) return;
      if (error instanceof SignInRequired) {
        goSignIn();
        return;
      }
      view.render(el("h1", {}, "Something went wrong"), el("p", { class: "error" }, error.message));
    }
    return;
  }
  view.render(el("h1", {}, "Page not found"), el("p", {}, el("a", { href: "#/" }, "See what's on")));
}

function goSignIn() {
  const { path } = parseHash();
  location.hash = `#/signin?next=${encodeURIComponent(`#${path}`)}`;
}

/** Only an in-page route: `next` never sends the reader elsewhere. */
function safeNext(query) {
  const next = query.get("next") || "";
  return /^#\/[A-Za-z0-9/_-]*$/.test(next) ? next : "#/";
}

// ---- header and notices --------------------------------------------------------------

function drawAccount() {
  const slot = document.getElementById("account");
  if (!slot) return;
  if (session.tokens && session.user) {
    slot.replaceChildren(
      el("span", { class: "who" }, `Signed in as ${session.user.username}`),
      el("button", { type: "button", class: "link-button", onclick: signOut }, "Sign out"),
    );
  } else {
    slot.replaceChildren(el("a", { href: "#/signin" }, "Sign in"));
  }
}

async function signOut() {
  const refresh = session.tokens && session.tokens.refresh;
  session.clear();
  if (refresh) {
    await call("POST", "/auth/logout", { body: { refresh } }).catch(() => null);
  }
  location.hash = "#/";
}

function showNotice(message) {
  const notice = document.getElementById("notice");
  notice.textContent = message;
  notice.hidden = false;
}

function hideNotice() {
  const notice = document.getElementById("notice");
  notice.hidden = true;
  notice.textContent = "";
}

/** The API's message and its field details, as text. */
function errorText(error) {
  const lines = [error.message];
  for (const [field, problems] of Object.entries(error.details || {})) {
    const list = Array.isArray(problems) ? problems.join(" ") : typeof problems === "string" ? problems : "";
    if (list) lines.push(`${field}: ${list}`);
  }
  return lines.join(" ");
}

function errorBox() {
  return el("p", { class: "form-error", role: "alert", hidden: true });
}

function setError(box, error) {
  box.textContent = error ? errorText(error) : "";
  box.hidden = !error;
}

// ---- what's on -----------------------------------------------------------------------

async function viewMovies(view) {
  const shows = await allPages("/shows?page_size=100", 3);
  const movieIds = [...new Set(shows.map((show) => show.movie))];
  const movies = new Map();
  for (const movie of await allPages("/movies?page_size=100", 3)) movies.set(movie.id, movie);
  await Promise.all(
    movieIds.filter((id) => !movies.has(id)).map(async (id) => movies.set(id, await getMovie(id).catch(() => null))),
  );
  for (const [id, movie] of movies) if (movie) cache.movies.set(id, Promise.resolve(movie));
  for (const show of shows) cache.shows.set(show.id, Promise.resolve(show));

  const byMovie = new Map();
  for (const show of shows) {
    if (show.status !== "scheduled" || !movies.get(show.movie)) continue;
    if (!byMovie.has(show.movie)) byMovie.set(show.movie, []);
    byMovie.get(show.movie).push(show);
  }
  const cards = [...byMovie.entries()].map(([movieId, movieShows]) => movieCard(movies.get(movieId), movieShows));
  view.render(
    el("h1", {}, "What's on"),
    cards.length
      ? el("div", { class: "movie-list" }, cards)
      : el("p", {}, "No shows are scheduled yet. Staff add them in the admin."),
  );
}

function movieCard(movie, shows) {
  const meta = [movie.genre, movie.rating, movie.duration_minutes && `${movie.duration_minutes} min`, movie.language]
    .filter(Boolean)
    .join(" · ");
  return el(
    "article",
    { class: "movie-card" },
    el("h2", {}, movie.title),
    el("p", { class: "meta" }, meta),
    movie.description ? el("p", { class: "description" }, movie.description) : null,
    el("h3", { class: "visually-hidden" }, `Showtimes of ${movie.title}`),
    el(
      "ul",
      { class: "showtimes" },
      shows.map((show) =>
        el(
          "li",
          {},
          el(
            "a",
            {
              class: `showtime${show.available_seats === 0 ? " sold-out" : ""}`,
              href: `#/shows/${show.id}`,
              "aria-label": `${movie.title}, ${when(show.starts_at)}, ${show.screen.name}, ${
                show.available_seats === 0 ? "sold out" : `${show.available_seats} seats free`
              }, adult ticket ${money(show.price, show.currency)}`,
            },
            el("strong", {}, when(show.starts_at)),
            el("span", {}, show.screen.name),
            el("span", {}, show.available_seats === 0 ? "Sold out" : `${show.available_seats} seats free`),
            el("span", {}, `Adult ${money(show.price, show.currency)}`),
          ),
        ),
      ),
    ),
  );
}

// ---- a show: seat map, tickets, booking ----------------------------------------------

// The reader's choice per show, kept across a round trip to the sign-in page.
const choices = new Map();

function choiceFor(showId) {
  if (!choices.has(showId)) {
    choices.set(showId, { seats: new Set(), tickets: {}, key: null });
  }
  return choices.get(showId);
}

async function viewShow(view, _query, showIdText) {
  const showId = Number(showIdText);
  cache.shows.delete(showId); // fresh availability
  const [show, map] = await Promise.all([getShow(showId), call("GET", `/shows/${showId}/seats`).then((r) => r.data)]);
  const movie = await getMovie(show.movie);
  const choice = choiceFor(showId);
  const seatsByLabel = new Map(map.seats.map((seat) => [seat.label, seat]));
  // A seat taken since the choice was made drops out of it.
  for (const label of [...choice.seats]) if (!seatsByLabel.get(label)?.available) choice.seats.delete(label);
  const ticketTypes = [...new Set(show.prices.map((p) => p.ticket_type))];
  for (const type of ticketTypes) choice.tickets[type] = choice.tickets[type] || 0;
  if (ticketCount(choice) !== choice.seats.size) {
    for (const type of ticketTypes) choice.tickets[type] = 0;
    choice.tickets[ticketTypes[0]] = choice.seats.size;
  }
  const price = (type, category) =>
    (show.prices.find((p) => p.ticket_type === type && p.seat_category === category) || {}).amount;

  const summary = el("p", { class: "selection", "aria-live": "polite" });
  const ticketStatus = el("p", { class: "ticket-status", "aria-live": "polite" });
  const estimate = el("p", { class: "estimate" });
  const bookButton = el("button", { type: "button", class: "primary", id: "book" }, "Book");
  const problem = errorBox();
  const inputs = new Map();

  const seatMap = buildSeatMap(map, show, price, choice, () => {
    choice.key = null; // a new choice is a new booking request
    syncTickets(choice, ticketTypes);
    refresh();
  });

  function refresh() {
    const seats = orderedSeats(map, choice);
    summary.textContent = seats.length
      ? `${plural(seats.length, "seat", "seats")} chosen: ${seats.map((s) => s.label).join(", ")}`
      : "No seats chosen yet. Pick seats on the map.";
    for (const [type, input] of inputs) input.value = String(choice.tickets[type] || 0);
    const count = ticketCount(choice);
    const fits = seats.length > 0 && count === seats.length;
    if (!seats.length) ticketStatus.textContent = "";
    else if (count < seats.length) ticketStatus.textContent = `Choose ${seats.length - count} more ticket(s).`;
    else if (count > seats.length) ticketStatus.textContent = `${count - seats.length} ticket(s) too many.`;
    else ticketStatus.textContent = `${plural(count, "ticket", "tickets")} for ${plural(seats.length, "seat", "seats")}.`;
    estimate.replaceChildren();
    if (fits) {
      const sum = estimateCents(seats, choice, ticketTypes, price);
      if (Number.isFinite(sum)) {
        estimate.append(
          el("strong", {}, `Estimated total: ${money(decimal(sum), show.currency)}`),
          el("span", { class: "hint" }, " (from the show's prices; the booking's total is fixed when it is decided)"),
        );
      }
    }
    bookButton.textContent = seats.length ? `Book ${plural(seats.length, "seat", "seats")}` : "Book";
    bookButton.disabled = !fits;
  }

  const ticketRows = ticketTypes.map((type) => {
    const id = `tickets-${type}`;
    const input = el("input", { id, type: "number", min: "0", max: "99", inputmode: "numeric", value: "0" });
    inputs.set(type, input);
    const set = (value) => {
      choice.tickets[type] = Math.max(0, Math.min(99, Number.isFinite(value) ? value : 0));
      choice.key = null;
      refresh();
    };
    input.addEventListener("change", () => set(Math.trunc(Number(input.value))));
    const label = TICKET_LABELS[type] || type;
    return el(
      "div",
      { class: "ticket-row" },
      el("label", { for: id }, label),
      el(
        "div",
        { class: "stepper" },
        el(
          "button",
          { type: "button", "aria-label": `One fewer ${label.toLowerCase()} ticket`, onclick: () => set((choice.tickets[type] || 0) - 1) },
          "−",
        ),
        input,
        el(
          "button",
          { type: "button", "aria-label": `One more ${label.toLowerCase()} ticket`, onclick: () => set((choice.tickets[type] || 0) + 1) },
          "+",
        ),
      ),
    );
  });

  bookButton.addEventListener("click", async () => {
    if (!session.tokens) {
      goSignIn();
      return;
    }
    const seats = orderedSeats(map, choice).map((s) => s.label);
    const tickets = Object.fromEntries(Object.entries(choice.tickets).filter(([, n]) => n > 0));
    choice.key = choice.key || newKey();
    bookButton.disabled = true;
    setError(problem, null);
    try {
      const { data } = await call("POST", "/bookings", {
        authed: true,
        idempotencyKey: choice.key,
        body: { show: showId, seats, tickets },
      });
      choices.delete(showId);
      location.hash = `#/bookings/${data.id}`;
    } catch (error) {
      if (error instanceof SignInRequired) {
        goSignIn();
        return;
      }
      choice.key = null;
      setError(problem, error);
      refresh();
    }
  });

  const present = new Set(map.seats.map((seat) => seat.category));
  const categories = [...Object.keys(CATEGORY_LABELS), ...present].filter((c, i, all) => present.has(c) && all.indexOf(c) === i);
  view.render(
    el("p", { class: "breadcrumb" }, el("a", { href: "#/" }, "← What's on")),
    el("h1", {}, movie.title),
    el("p", { class: "meta" }, `${when(show.starts_at)} · ${show.screen.name} · ${map.available} of ${map.total} seats free`),
    el(
      "div",
      { class: "show-layout" },
      el(
        "section",
        { class: "seats-panel", "aria-labelledby": "seats-heading" },
        el("h2", { id: "seats-heading" }, "Choose your seats"),
        legend(categories),
        seatMap,
      ),
      el(
        "section",
        { class: "order-panel", "aria-labelledby": "order-heading" },
        el("h2", { id: "order-heading" }, "Your tickets"),
        summary,
        el("fieldset", { class: "tickets" }, el("legend", {}, "Ticket types"), ticketRows),
        ticketStatus,
        priceTable(show, ticketTypes, categories, price),
        estimate,
        problem,
        bookButton,
        show.payment_required
          ? el("p", { class: "hint" }, "Your seats are held for you while you pay, after the booking is accepted.")
          : null,
        session.tokens ? null : el("p", { class: "hint" }, "You will be asked to sign in before booking."),
      ),
    ),
  );
  refresh();
}

const ticketCount = (choice) => Object.values(choice.tickets).reduce((a, b) => a + b, 0);

/** The chosen seats in the map's order (row by row), which is the order the API lists them. */
function orderedSeats(map, choice) {
  return map.seats.filter((seat) => choice.seats.has(seat.label));
}

/** Keep the ticket counts in step with the seats: a seat more is an adult more; a seat less
 * takes away an adult first. The reader changes types with the steppers. */
function syncTickets(choice, ticketTypes) {
  let diff = choice.seats.size - ticketCount(choice);
  if (diff > 0) choice.tickets[ticketTypes[0]] += diff;
  for (const type of ticketTypes) {
    while (diff < 0 && choice.tickets[type] > 0) {
      choice.tickets[type] -= 1;
      diff += 1;
    }
  }
}

/** The estimate: each seat's price from the show's list for the ticket types in the order
 * the request lists them. Only an estimate; the decided booking's `total` is the truth. */
function estimateCents(seats, choice, ticketTypes, price) {
  const sequence = ticketTypes.flatMap((type) => Array(choice.tickets[type] || 0).fill(type));
  return seats.reduce((sum, seat, i) => sum + cents(price(sequence[i], seat.category)), 0);
}

function legend(categories) {
  const items = [
    ...categories.map((c) => [`seat cat-${c}`, CATEGORY_LABELS[c] || c]),
    ["seat is-selected", "Your choice"],
    ["seat is-taken", "Taken"],
  ];
  return el(
    "ul",
    { class: "legend", "aria-label": "Seat key" },
    items.map(([cls, text]) => el("li", {}, el("span", { class: `swatch ${cls}`, "aria-hidden": "true" }), text)),
  );
}

function priceTable(show, ticketTypes, categories, price) {
  const table = el(
    "table",
    { class: "prices" },
    el("caption", {}, `Prices per seat (${show.currency})`),
    el(
      "thead",
      {},
      el("tr", {}, el("th", { scope: "col" }, "Ticket"), categories.map((c) => el("th", { scope: "col" }, SHORT_CATEGORY_LABELS[c] || c))),
    ),
    el(
      "tbody",
      {},
      ticketTypes.map((type) =>
        el(
          "tr",
          {},
          el("th", { scope: "row" }, TICKET_LABELS[type] || type),
          categories.map((c) => el("td", {}, money(price(type, c), show.currency))),
        ),
      ),
    ),
  );
  return el("div", { class: "table-scroll" }, table);
}

/** The seat map: one button per seat, one tab stop for the whole map (arrow keys move
 * between seats, Space or Enter picks one). */
function buildSeatMap(map, show, price, choice, onChange) {
  const rows = new Map();
  for (const seat of map.seats) {
    if (!rows.has(seat.row)) rows.set(seat.row, []);
    rows.get(seat.row).push(seat);
  }
  const grid = [];
  const container = el("div", {
    class: "seat-map",
    role: "group",
    "aria-label": `Seat map, ${map.available} of ${map.total} seats free. Use the arrow keys to move between seats and Space to pick one.`,
  });
  const columns = Math.max(...[...rows.values()].map((r) => r.length));
  container.style.setProperty("--columns", String(columns));
  let first = null;
  for (const [row, seats] of rows) {
    const buttons = seats.map((seat) => {
      const selected = choice.seats.has(seat.label);
      const category = CATEGORY_LABELS[seat.category] || seat.category;
      const adult = price("adult", seat.category);
      const button = el(
        "button",
        {
          type: "button",
          class: `seat cat-${seat.category}${seat.available ? "" : " is-taken"}${selected ? " is-selected" : ""}`,
          "data-label": seat.label,
          "aria-pressed": String(selected),
          "aria-disabled": seat.available ? null : "true",
          "aria-label": `${seat.label}, ${category}, ${seat.available ? `adult ${money(adult, show.currency)}` : "taken"}`,
          tabindex: "-1",
        },
        seat.category === "accessible" ? "♿" : String(seat.number),
      );
      if (!first && (selected || seat.available)) first = button;
      return button;
    });
    grid.push(buttons);
    container.append(
      el("div", { class: "seat-row" }, el("span", { class: "row-label", "aria-hidden": "true" }, row), buttons),
    );
  }
  (first || grid[0]?.[0])?.setAttribute("tabindex", "0");

  container.addEventListener("click", (event) => {
    const button = event.target.closest("button.seat");
    if (!button || button.getAttribute("aria-disabled") === "true") return;
    const label = button.dataset.label;
    if (choice.seats.has(label)) choice.seats.delete(label);
    else choice.seats.add(label);
    const selected = choice.seats.has(label);
    button.setAttribute("aria-pressed", String(selected));
    button.classList.toggle("is-selected", selected);
    focusSeat(button);
    onChange();
  });

  function focusSeat(button) {
    for (const b of container.querySelectorAll("button.seat[tabindex='0']")) b.setAttribute("tabindex", "-1");
    button.setAttribute("tabindex", "0");
    button.focus();
  }

  container.addEventListener("keydown", (event) => {
    const button = event.target.closest("button.seat");
    if (!button) return;
    const r = grid.findIndex((row) => row.includes(button));
    const c = grid[r].indexOf(button);
    const moves = {
      ArrowLeft: [r, c - 1],
      ArrowRight: [r, c + 1],
      ArrowUp: [r - 1, c],
      ArrowDown: [r + 1, c],
      Home: [r, 0],
      End: [r, grid[r].length - 1],
    };
    const target = moves[event.key];
    if (!target) return;
    event.preventDefault();
    const row = grid[Math.max(0, Math.min(grid.length - 1, target[0]))];
    focusSeat(row[Math.max(0, Math.min(row.length - 1, target[1]))]);
  });

  return el(
    "div",
    { class: "seat-map-wrap" },
    el("div", { class: "screen-bar", "aria-hidden": "true" }, "Screen"),
    container,
  );
}

// ---- one booking: live status, payment, tickets, cancel ------------------------------

async function viewBooking(view, _query, bookingId) {
  if (!session.tokens) throw new SignInRequired();
  let { data: booking, response } = await call("GET", `/bookings/${bookingId}`, { authed: true });
  const show = await getShow(booking.show);
  const movie = await getMovie(show.movie);

  const statusBox = el("div", { class: "status-box", "aria-live": "polite" });
  const details = el("div", { class: "booking-details" });
  const payArea = el("div", { class: "pay-area" });
  const ticketsArea = el("div", { class: "tickets-area" });
  const actions = el("div", { class: "actions" });
  let shownStatus = null;
  let statusSaid = null;
  let paying = false;
  let ticketsLoaded = false;
  let countdown = null;

  view.render(
    el("p", { class: "breadcrumb" }, el("a", { href: "#/bookings" }, "← My bookings")),
    el("h1", {}, `Booking for ${movie.title}`),
    el("p", { class: "meta" }, `${when(show.starts_at)} · ${show.screen.name}`),
    statusBox,
    details,
    payArea,
    ticketsArea,
    actions,
  );

  function draw(next) {
    booking = next;
    const changed = booking.status !== shownStatus;
    shownStatus = booking.status;
    // The status region is live: it is redrawn (and so announced) only when it says something new.
    const said = JSON.stringify([booking.status, booking.queue_position, booking.reference, booking.refund]);
    if (said !== statusSaid) drawStatus(statusBox, booking);
    statusSaid = said;
    drawDetails(details, booking, show);
    if (changed) {
      drawPayArea();
      drawActions();
      if (booking.status === "confirmed" && !ticketsLoaded) {
        ticketsLoaded = true;
        loadTickets(view, ticketsArea, booking);
      }
      if (booking.status !== "confirmed") ticketsArea.replaceChildren();
    }
  }

  function drawPayArea() {
    if (countdown) clearInterval(countdown);
    countdown = null;
    if (booking.status !== "held") {
      payArea.replaceChildren();
      return;
    }
    const timer = el("p", { class: "countdown", role: "timer", "aria-live": "off" });
    const tick = () => {
      const left = Math.max(0, Math.floor((Date.parse(booking.hold_expires_at) - Date.now()) / 1000));
      timer.textContent = `Pay within ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} (the hold ends at ${timeOnly.format(
        new Date(booking.hold_expires_at),
      )}).`;
    };
    tick();
    countdown = view.every(tick, 1000);
    // A waiting-list offer on a show without payment is taken by confirming it.
    payArea.replaceChildren(timer, show.payment_required === false ? confirmOffer() : payForm());
  }

  function confirmOffer() {
    const problem = errorBox();
    const button = el("button", { type: "button", class: "primary" }, "Take these seats");
    button.addEventListener("click", async () => {
      button.disabled = true;
      setError(problem, null);
      try {
        const { data } = await call("POST", `/bookings/${booking.id}/confirm`, { authed: true });
        draw(data);
      } catch (error) {
        if (error instanceof SignInRequired) return goSignIn();
        setError(problem, error);
        button.disabled = false;
      }
    });
    return el("div", { class: "offer" }, problem, button);
  }

  function payForm() {
    const problem = errorBox();
    const submit = el("button", { type: "submit", class: "primary" }, `Pay ${money(booking.total, booking.currency)}`);
    let key = null;
    let lastToken = null;
    const form = el(
      "form",
      { class: "pay-form", novalidate: true },
      el(
        "fieldset",
        {},
        el("legend", {}, "Pay with the test provider"),
        PAYMENT_TOKENS.map(([token, label], i) =>
          el(
            "div",
            { class: "radio" },
            el("input", { type: "radio", name: "payment_token", id: `pay-${token}`, value: token, checked: i === 0 }),
            el("label", { for: `pay-${token}` }, `${label} `, el("code", {}, token)),
          ),
        ),
      ),
      problem,
      submit,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const token = new FormData(form).get("payment_token");
      // One key per payment attempt: retries of it are one charge; another card is a new attempt.
      if (token !== lastToken) key = null;
      key = key || newKey();
      lastToken = token;
      submit.disabled = true;
      setError(problem, null);
      paying = true;
      try {
        const { status, data, response: answer } = await call("POST", `/bookings/${booking.id}/pay`, {
          authed: true,
          idempotencyKey: key,
          body: { payment_token: token },
        });
        draw(data);
        if (status === 202) {
          statusBox.append(el("p", {}, "The payment is being processed…"));
          follow(answer);
        } else {
          paying = false;
        }
      } catch (error) {
        paying = false;
        key = null; // a decided attempt: the next one is a new charge
        if (error instanceof SignInRequired) return goSignIn();
        if (error.code === "payment_declined") {
          problem.textContent = "The card was declined. Your seats are still held: try another card.";
          problem.hidden = false;
        } else {
          setError(problem, error);
        }
        submit.disabled = false;
        if (error.code === "hold_expired") follow(null);
      }
    });
    return form;
  }

  function drawActions() {
    actions.replaceChildren();
    if (!LIVE_STATUSES.has(booking.status)) return;
    const problem = errorBox();
    const cancel = el("button", { type: "button", class: "danger" }, "Cancel booking");
    cancel.addEventListener("click", () => {
      const sure = el("button", { type: "button", class: "danger" }, "Yes, cancel it");
      const keep = el("button", { type: "button" }, "Keep it");
      keep.addEventListener("click", drawActions);
      sure.addEventListener("click", async () => {
        sure.disabled = true;
        try {
          const { data } = await call("DELETE", `/bookings/${booking.id}`, { authed: true });
          draw(data);
        } catch (error) {
          if (error instanceof SignInRequired) return goSignIn();
          setError(problem, error);
          sure.disabled = false;
        }
      });
      actions.replaceChildren(el("p", {}, "Cancel this booking and free its seats?"), sure, keep, problem);
      sure.focus();
    });
    actions.append(cancel, problem);
  }

  /** Poll while the booking is pending (or a payment is in flight), never sooner than Retry-After. */
  function follow(answer) {
    const waitMs = answer ? retryAfterMs(answer) : 1000;
    view.later(async () => {
      try {
        const fresh = await call("GET", `/bookings/${booking.id}`, { authed: true });
        draw(fresh.data);
        if (booking.status === "pending" || (paying && booking.status === "held")) follow(fresh.response);
        else {
          paying = false;
          watchHold();
        }
      } catch (error) {
        if (error instanceof SignInRequired) return goSignIn();
        showNotice(errorText(error));
        follow(null);
      }
    }, waitMs);
  }

  /** A held booking is looked at again when its hold ends: it may have expired. */
  function watchHold() {
    if (booking.status !== "held" || !booking.hold_expires_at) return;
    const ms = Math.max(1000, Date.parse(booking.hold_expires_at) - Date.now() + 1000);
    view.later(() => follow(null), Math.min(ms, 60_000));
  }

  draw(booking);
  if (booking.status === "pending") follow(response);
  else watchHold();
}

function drawStatus(box, booking) {
  const status = booking.status;
  const lines = [el("p", { class: `badge status-${status}` }, STATUS_LABELS[status] || status)];
  if (status === "pending") {
    const ahead = booking.queue_position;
    lines.push(
      el(
        "p",
        {},
        el("span", { class: "spinner", "aria-hidden": "true" }),
        ahead
          ? `Waiting for a decision: ${plural(ahead, "booking is", "bookings are")} ahead of yours.`
          : "Waiting for a decision…",
      ),
    );
  } else if (status === "held") {
    lines.push(
      el(
        "p",
        {},
        booking.offer
          ? "Seats from the waiting list are held for you. Take them before the hold ends."
          : "Your seats are held. Pay to confirm them before the hold ends.",
      ),
    );
  } else if (status === "confirmed") {
    lines.push(el("p", {}, "Your seats are booked. Reference ", el("strong", { class: "reference" }, booking.reference || "")));
  } else if (status === "failed") {
    lines.push(el("p", {}, FAILURE_TEXT[booking.failure_reason] || `The booking failed (${booking.failure_reason}).`));
  } else if (status === "cancelled") {
    lines.push(el("p", {}, "This booking was cancelled; its seats are free again."));
    if (booking.refund) {
      lines.push(el("p", {}, `Refund: ${money(booking.refund.amount, booking.currency)} (${booking.refund.status}).`));
    }
  } else if (status === "expired") {
    lines.push(el("p", {}, "The hold ended before payment; the seats were released."));
  }
  box.replaceChildren(...lines);
}

function drawDetails(box, booking, show) {
  const parts = [];
  if (booking.lines && booking.lines.length) {
    parts.push(
      el(
        "table",
        { class: "lines" },
        el("caption", {}, "Seats"),
        el(
          "thead",
          {},
          el("tr", {}, ["Seat", "Category", "Ticket", "Price"].map((h) => el("th", { scope: "col" }, h))),
        ),
        el(
          "tbody",
          {},
          booking.lines.map((line) =>
            el(
              "tr",
              {},
              el("th", { scope: "row" }, line.seat),
              el("td", {}, CATEGORY_LABELS[line.seat_category] || line.seat_category),
              el("td", {}, TICKET_LABELS[line.ticket_type] || line.ticket_type),
              el("td", { class: "amount" }, money(line.amount, booking.currency || show.currency)),
            ),
          ),
        ),
      ),
    );
  } else if (booking.seats && booking.seats.length) {
    parts.push(el("p", {}, `Seats: ${booking.seats.join(", ")}`));
  }
  if (booking.total !== null && booking.total !== undefined) {
    parts.push(el("p", { class: "total" }, "Total ", el("strong", {}, money(booking.total, booking.currency))));
  }
  box.replaceChildren(...parts);
}

async function loadTickets(view, area, booking) {
  area.replaceChildren(el("h2", {}, "Tickets"), el("p", {}, "Loading tickets…"));
  let tickets;
  try {
    const { data } = await call("GET", `/bookings/${booking.id}/tickets`, { authed: true });
    tickets = Array.isArray(data) ? data : data.results || [];
  } catch (error) {
    if (!view.alive) return;
    area.replaceChildren(el("h2", {}, "Tickets"), el("p", { class: "error" }, `Tickets are not available: ${error.message}`));
    return;
  }
  const list = el("ul", { class: "ticket-list" });
  area.replaceChildren(el("h2", {}, "Tickets"), el("p", { class: "hint" }, "Show one code per seat at the door."), list);
  for (const ticket of tickets) {
    const img = el("img", { class: "qr", alt: `QR code of the ticket for seat ${ticket.seat}`, width: "180", height: "180" });
    list.append(
      el(
        "li",
        { class: "ticket" },
        img,
        el("p", {}, el("strong", {}, `Seat ${ticket.seat}`), ` · ${TICKET_LABELS[ticket.ticket_type] || ticket.ticket_type}`),
        el("p", { class: "code" }, el("code", {}, ticket.code)),
      ),
    );
    showQr(view, img, ticket.qr);
  }
}

/** The QR PNG fetched with the user's token (the URL may be protected) and shown from a
 * blob: URL; an URL of another origin is left to the browser (and the page's CSP). */
async function showQr(view, img, url) {
  const target = new URL(url, location.href);
  if (target.origin !== location.origin) {
    img.src = target.href;
    return;
  }
  try {
    const { response } = await call("GET", target.pathname + target.search, { authed: true, raw: true });
    const objectUrl = URL.createObjectURL(await response.blob());
    view.urls.push(objectUrl);
    if (view.alive) img.src = objectUrl;
  } catch {
    img.src = target.href;
  }
}

// ---- my bookings ---------------------------------------------------------------------

async function viewMyBookings(view, query) {
  if (!session.tokens) throw new SignInRequired();
  const status = query.get("status") || "";
  const list = el("ul", { class: "booking-list" });
  const more = el("button", { type: "button", class: "secondary", hidden: true }, "Show more");
  const filter = el(
    "select",
    { id: "status-filter" },
    el("option", { value: "" }, "All"),
    Object.entries(STATUS_LABELS).map(([value, label]) => el("option", { value, selected: value === status }, label)),
  );
  filter.addEventListener("change", () => {
    location.hash = filter.value ? `#/bookings?status=${encodeURIComponent(filter.value)}` : "#/bookings";
  });
  let next = `/bookings?page_size=20${status ? `&status=${encodeURIComponent(status)}` : ""}`;

  async function loadMore() {
    more.disabled = true;
    const { data } = await call("GET", next, { authed: true });
    next = data.next ? new URL(data.next).pathname + new URL(data.next).search : null;
    for (const booking of data.results) list.append(await bookingItem(booking));
    if (!data.count) list.append(el("li", { class: "empty" }, "No bookings yet. ", el("a", { href: "#/" }, "See what's on")));
    more.hidden = !next;
    more.disabled = false;
  }
  more.addEventListener("click", () => loadMore().catch((error) => showNotice(errorText(error))));
  await loadMore();
  view.render(
    el("h1", {}, "My bookings"),
    el("p", { class: "filter" }, el("label", { for: "status-filter" }, "Status "), filter),
    list,
    more,
  );
}

async function bookingItem(booking) {
  const show = await getShow(booking.show).catch(() => null);
  const movie = show ? await getMovie(show.movie).catch(() => null) : null;
  const badge = el("span", { class: `badge status-${booking.status}` }, STATUS_LABELS[booking.status] || booking.status);
  const problem = errorBox();
  const item = el(
    "li",
    { class: "booking-item", "data-booking": booking.id },
    el(
      "div",
      { class: "booking-head" },
      el("a", { href: `#/bookings/${booking.id}` }, movie ? movie.title : `Show ${booking.show}`),
      badge,
    ),
    el(
      "p",
      { class: "meta" },
      [
        show && when(show.starts_at),
        booking.seats.length ? `Seats ${booking.seats.join(", ")}` : plural(booking.quantity, "seat", "seats"),
        booking.reference && `Ref. ${booking.reference}`,
        booking.total && money(booking.total, booking.currency),
      ]
        .filter(Boolean)
        .join(" · "),
    ),
    problem,
  );
  if (LIVE_STATUSES.has(booking.status)) {
    const cancel = el(
      "button",
      { type: "button", class: "danger small", "aria-label": `Cancel the booking for ${movie ? movie.title : "this show"}` },
      "Cancel",
    );
    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      setError(problem, null);
      try {
        const { data } = await call("DELETE", `/bookings/${booking.id}`, { authed: true });
        badge.className = `badge status-${data.status}`;
        badge.textContent = STATUS_LABELS[data.status] || data.status;
        cancel.remove();
      } catch (error) {
        if (error instanceof SignInRequired) return goSignIn();
        setError(problem, error);
        cancel.disabled = false;
      }
    });
    item.append(cancel);
  }
  return item;
}

// ---- sign in and sign up -------------------------------------------------------------

function field(id, label, attrs) {
  return el("div", { class: "field" }, el("label", { for: id }, label), el("input", { id, name: id, required: true, ...attrs }));
}

async function signIn(username, password) {
  const { data } = await call("POST", "/auth/login", { body: { username, password } });
  session.save(data);
  const me = await call("GET", "/auth/me", { authed: true });
  session.setUser(me.data);
  drawAccount();
}

async function viewSignIn(view, query) {
  const next = safeNext(query);
  const problem = errorBox();
  const submit = el("button", { type: "submit", class: "primary" }, "Sign in");
  const form = el(
    "form",
    { class: "auth-form", novalidate: true },
    field("username", "Username", { autocomplete: "username", autocapitalize: "none" }),
    field("password", "Password", { type: "password", autocomplete: "current-password" }),
    problem,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    submit.disabled = true;
    setError(problem, null);
    try {
      await signIn(String(data.get("username")), String(data.get("password")));
      location.hash = next;
    } catch (error) {
      setError(problem, error.status === 401 ? new ApiError(401, { message: "Wrong username or password." }) : error);
      submit.disabled = false;
    }
  });
  view.render(
    el("h1", {}, "Sign in"),
    form,
    el("p", {}, "No account yet? ", el("a", { href: `#/signup?next=${encodeURIComponent(next)}` }, "Create one")),
  );
}

async function viewSignUp(view, query) {
  const next = safeNext(query);
  const problem = errorBox();
  const submit = el("button", { type: "submit", class: "primary" }, "Create account");
  const form = el(
    "form",
    { class: "auth-form", novalidate: true },
    field("username", "Username", { autocomplete: "username", autocapitalize: "none" }),
    field("email", "Email", { type: "email", autocomplete: "email" }),
    field("password", "Password", { type: "password", autocomplete: "new-password" }),
    problem,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    submit.disabled = true;
    setError(problem, null);
    try {
      await call("POST", "/auth/signup", { body: data });
      await signIn(data.username, data.password);
      location.hash = next;
    } catch (error) {
      setError(problem, error);
      submit.disabled = false;
    }
  });
  view.render(
    el("h1", {}, "Create an account"),
    form,
    el("p", {}, "Have an account? ", el("a", { href: `#/signin?next=${encodeURIComponent(next)}` }, "Sign in")),
  );
}

// ---- start ---------------------------------------------------------------------------

window.addEventListener("hashchange", route);
drawAccount();
route();
