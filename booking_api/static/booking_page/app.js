// The customer booking page (entry point): a small app on the public API under /api/v1,
// nothing else. Every movie, seat, price and booking shown comes from the API; the only sum
// computed here is the estimate before booking (the booking's `total` is the truth once
// decided). Text from the API reaches the page through textContent and attributes only (no
// innerHTML), and every handler is attached with addEventListener, so the page runs under a
// CSP without 'unsafe-inline' (booking_api/views/page.py).
//
// The modules: dom.js (elements, words, numbers), api.js (the API client and the session),
// page.js (a view's lifetime, the header, notices), and the views: show.js (what's on, a
// show's seat map), booking.js (one booking), account.js (my bookings, sign in and up).

import { el, main } from "./dom.js";
import { SignInRequired } from "./api.js";
import { View, drawAccount, goSignIn, hideNotice, parseHash } from "./page.js";
import { viewMovies, viewShow } from "./show.js";
import { viewBooking } from "./booking.js";
import { viewMyBookings, viewSignIn, viewSignUp } from "./account.js";

const ROUTES = [
  [/^\/?$/, viewMovies],
  [/^\/shows\/(\d+)$/, viewShow],
  [/^\/bookings$/, viewMyBookings],
  [/^\/bookings\/([0-9a-f-]{36})$/, viewBooking],
  [/^\/signin$/, viewSignIn],
  [/^\/signup$/, viewSignUp],
];

let current = null;

async function route() {
  if (current) current.leave();
  const view = (current = new View());
  hideNotice();
  drawAccount(); // the session may have ended (a refused refresh) since the last view
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

// ---- start ---------------------------------------------------------------------------

window.addEventListener("hashchange", route);
route();
