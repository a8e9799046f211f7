// What's on, and one show: the seat map, ticket types, the estimate and the booking request.

import { CATEGORY_LABELS, SHORT_CATEGORY_LABELS, TICKET_LABELS, cents, decimal, el, money, newKey, plural, when } from "./dom.js";
import { SignInRequired, allPages, cache, call, getMovie, getShow, session } from "./api.js";
import { errorBox, goSignIn, setError } from "./page.js";

// ---- what's on -----------------------------------------------------------------------

export async function viewMovies(view) {
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

export async function viewShow(view, _query, showIdText) {
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
