// What every view shares: its lifetime (timers, blob URLs), the sign-in detour, the header
// and the notices.

import { el, main } from "./dom.js";
import { call, session } from "./api.js";

// ---- routing -------------------------------------------------------------------------

/** The life of one rendered view: its timers and blob URLs end when the reader leaves. */
export class View {
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
    return id;
  }

  cancel(id) {
    clearTimeout(id);
    this.timers.delete(id);
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

export function parseHash() {
  const raw = location.hash.replace(/^#/, "");
  const [path, query = ""] = raw.split("?");
  return { path: path || "/", query: new URLSearchParams(query) };
}

export function goSignIn() {
  const { path } = parseHash();
  location.hash = `#/signin?next=${encodeURIComponent(`#${path}`)}`;
}

/** Only an in-page route: `next` never sends the reader elsewhere. */
export function safeNext(query) {
  const next = query.get("next") || "";
  return /^#\/[A-Za-z0-9/_-]*$/.test(next) ? next : "#/";
}

// ---- header and notices --------------------------------------------------------------

export function drawAccount() {
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
  drawAccount();
  if (refresh) {
    await call("POST", "/auth/logout", { body: { refresh } }).catch(() => null);
  }
  location.hash = "#/";
}

export function showNotice(message) {
  const notice = document.getElementById("notice");
  notice.textContent = message;
  notice.hidden = false;
}

export function hideNotice() {
  const notice = document.getElementById("notice");
  notice.hidden = true;
  notice.textContent = "";
}

/** The API's message and its field details, as text. */
export function errorText(error) {
  const lines = [error.message];
  for (const [field, problems] of Object.entries(error.details || {})) {
    const list = Array.isArray(problems) ? problems.join(" ") : typeof problems === "string" ? problems : "";
    if (list) lines.push(`${field}: ${list}`);
  }
  return lines.join(" ");
}

export function errorBox() {
  return el("p", { class: "form-error", role: "alert", hidden: true });
}

export function setError(box, error) {
  box.textContent = error ? errorText(error) : "";
  box.hidden = !error;
}
