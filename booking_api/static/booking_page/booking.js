// One booking: its status followed live, payment of a hold, tickets with QR codes, cancel.

import { CATEGORY_LABELS, FAILURE_TEXT, LIVE_STATUSES, PAYMENT_TOKENS, STATUS_LABELS, TICKET_LABELS, el, money, newKey, plural, timeOnly, when } from "./dom.js";
import { SignInRequired, call, getMovie, getShow, retryAfterMs, session } from "./api.js";
import { errorBox, errorText, goSignIn, hideNotice, setError, showNotice } from "./page.js";

// ---- one booking: live status, payment, tickets, cancel ------------------------------

export async function viewBooking(view, _query, bookingId) {
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
  // One look at the booking is scheduled at a time, whoever asks for it.
  let nextLook = null;
  let failures = 0;

  function lookAgain(fn, ms) {
    if (nextLook !== null) view.cancel(nextLook);
    nextLook = view.later(() => {
      nextLook = null;
      fn();
    }, ms);
  }

  /** Poll while the booking is pending (or a payment is in flight), never sooner than Retry-After. */
  function follow(answer) {
    const waitMs = answer ? retryAfterMs(answer) : 1000;
    lookAgain(async () => {
      try {
        const fresh = await call("GET", `/bookings/${booking.id}`, { authed: true });
        failures = 0;
        hideNotice();
        draw(fresh.data);
        if (booking.status === "pending" || (paying && booking.status === "held")) follow(fresh.response);
        else {
          paying = false;
          watchHold();
        }
      } catch (error) {
        if (error instanceof SignInRequired) return goSignIn();
        showNotice(errorText(error));
        failures += 1;
        lookAgain(() => follow(null), Math.min(30_000, 1000 * 2 ** failures));
      }
    }, waitMs);
  }

  /** A held booking is looked at again when its hold ends: it may have expired. */
  function watchHold() {
    if (booking.status !== "held" || !booking.hold_expires_at) return;
    const ms = Math.max(1000, Date.parse(booking.hold_expires_at) - Date.now() + 1000);
    lookAgain(() => follow(null), Math.min(ms, 60_000));
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
