// Building the page: elements from data (text, never markup), and the words and numbers shown.

export const TICKET_LABELS = { adult: "Adult", child: "Child", senior: "Senior", student: "Student" };
export const CATEGORY_LABELS = {
  standard: "Standard",
  premium: "Premium",
  accessible: "Wheelchair space",
  companion: "Companion seat",
};
export const SHORT_CATEGORY_LABELS = { standard: "Standard", premium: "Premium", accessible: "Wheelchair", companion: "Companion" };
export const STATUS_LABELS = {
  pending: "Pending",
  held: "Held",
  confirmed: "Confirmed",
  failed: "Failed",
  cancelled: "Cancelled",
  expired: "Expired",
};
export const FAILURE_TEXT = {
  seats_unavailable: "One of the seats you chose was taken just before your booking was decided.",
  sold_out: "Not enough seats were left.",
  show_started: "The show started before your booking could be decided.",
  show_cancelled: "The show was cancelled.",
  limit_exceeded: "You already hold the most seats one person may book for this show.",
  processing_error: "The booking could not be processed. Please try again.",
};
// The fake provider's test tokens (CONTRACT.md, "Holds, payment, tickets, admission").
export const PAYMENT_TOKENS = [
  ["tok_ok", "Test card that pays at once"],
  ["tok_declined", "Test card that is declined"],
  ["tok_async_ok", "Test card that confirms a moment later"],
];
export const LIVE_STATUSES = new Set(["pending", "held", "confirmed"]);

// ---- small DOM helpers ---------------------------------------------------------------

/** An element; string children become text nodes, `on*` props become listeners. */
export function el(tag, props = {}, ...children) {
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

export const main = () => document.getElementById("main");
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function money(amount, currency) {
  if (amount === null || amount === undefined) return "";
  try {
    // Display only: the API's decimal string, formatted for the reader's locale.
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(Number(amount));
  } catch {
    return `${amount} ${currency}`;
  }
}

/** "12.50" -> 1250, exactly (no float arithmetic on money). */
export function cents(amount) {
  const match = /^(\d+)(?:\.(\d{1,2}))?$/.exec(String(amount));
  if (!match) return NaN;
  return Number(match[1]) * 100 + Number((match[2] || "").padEnd(2, "0"));
}

export const decimal = (c) => `${Math.floor(c / 100)}.${String(c % 100).padStart(2, "0")}`;

const dateTime = new Intl.DateTimeFormat(undefined, {
  weekday: "short",
  day: "numeric",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
});
export const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
export const when = (iso) => (iso ? dateTime.format(new Date(iso)) : "");

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

/** A UUID v4 for Idempotency-Key (crypto.randomUUID needs a secure context; this does not). */
export function newKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
