// My bookings, sign in and sign up.

import { LIVE_STATUSES, STATUS_LABELS, el, money, plural, when } from "./dom.js";
import { ApiError, SignInRequired, call, getMovie, getShow, session } from "./api.js";
import { drawAccount, errorBox, errorText, goSignIn, safeNext, setError, showNotice } from "./page.js";

// ---- my bookings ---------------------------------------------------------------------

export async function viewMyBookings(view, query) {
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

export async function viewSignIn(view, query) {
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

export async function viewSignUp(view, query) {
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
