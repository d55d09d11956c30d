// Valyxo's web pages: requests to the server, and building the page from data as text.
// The session is an HttpOnly cookie the pages never see; requests that change something
// send the CSRF token from the readable valyxo_csrf cookie (__Host-valyxo_csrf over TLS).

/** The value of a readable cookie, or "". */
function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

/** The session's CSRF token, for the X-CSRF-Token header (over TLS its cookie's name has
 * the __Host- prefix). */
export function csrfToken() {
  return cookie("__Host-valyxo_csrf") || cookie("valyxo_csrf");
}

/** A failed request: the server's message, its field details, and the status. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `The server answered ${status}`);
    this.status = status;
    this.details = (body && body.details) || [];
  }
}

/** Sends `method path` with a JSON body; the answer's JSON, or throws an ApiError. */
export async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, { error: "The server cannot be reached: check your connection" });
  }
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** An element with attributes and children (strings become text, never HTML). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== false && v !== undefined && v !== null) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c));
  return e;
}

/** Shows `err` in the form's error line, with each field's detail. */
export function showError(box, err) {
  const lines = [err.message, ...err.details.map((d) => `${d.field}: ${d.message}`)];
  box.replaceChildren(...lines.flatMap((l, i) => (i ? [el("br"), l] : [l])));
}

/** Wires a form: on submit, `send(fields)`; failures go to its `.error` line. */
export function onSubmit(form, send) {
  const box = form.querySelector(".error");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    box.textContent = "";
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await send(Object.fromEntries(new FormData(form)));
    } catch (err) {
      showError(box, err instanceof ApiError ? err : new ApiError(0, { error: String(err) }));
    } finally {
      button.disabled = false;
    }
  });
}

/** One level of indentation. */
const INDENT = "    ";

/**
 * Replaces `area`'s text from `start` to `end` with `text` as the browser's own typing does,
 * so that Ctrl-Z undoes it as one step (and the field's input event fires).
 */
export function typeOver(area, start, end, text) {
  area.focus();
  area.setSelectionRange(start, end);
  if (!document.execCommand("insertText", false, text)) {
    // A browser without the command: the text still changes, without its undo step.
    area.setRangeText(text, start, end, "end");
    area.dispatchEvent(new Event("input"));
  }
}

/** Indents (or, `out`, outdents) the lines the selection touches, as one undoable edit. */
function shiftLines(area, out) {
  const text = area.value;
  const { selectionStart: from, selectionEnd: to } = area;
  const first = text.lastIndexOf("\n", from - 1) + 1;
  const stop = to > from && text[to - 1] === "\n" ? to - 1 : to;
  let last = text.indexOf("\n", stop);
  if (last < 0) last = text.length;
  const lines = text.slice(first, last).split("\n");
  const shifted = lines.map((line) => {
    if (!out) return line.length ? INDENT + line : line;
    if (line.startsWith("\t")) return line.slice(1);
    return line.slice(Math.min(INDENT.length, line.length - line.trimStart().length));
  });
  const block = shifted.join("\n");
  if (block === lines.join("\n")) return;
  typeOver(area, first, last, block);
  area.setSelectionRange(first, first + block.length);
}

/**
 * The keys of a text editor on `area`: Ctrl-S (or Cmd-S) calls `save`; Tab indents with
 * four spaces instead of leaving the field (Esc, then Tab, leaves it, for the keyboard), or
 * indents every line of a selection of several lines; Shift-Tab outdents; Enter keeps the
 * line's indentation, and a closing bracket typed first on a line goes back one level. Every edit they make is one step of the browser's undo (Ctrl-Z).
 */
export function editorKeys(area, save) {
  area.addEventListener("keydown", (ev) => {
    const plain = !ev.ctrlKey && !ev.altKey && !ev.metaKey;
    if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === "s") {
      ev.preventDefault();
      save();
    } else if (ev.key === "Tab" && plain && area.dataset.escaped !== "1") {
      ev.preventDefault();
      const { selectionStart: from, selectionEnd: to, value } = area;
      if (ev.shiftKey || value.slice(from, to).includes("\n")) shiftLines(area, ev.shiftKey);
      else typeOver(area, from, to, INDENT);
    } else if ("}])".includes(ev.key) && ev.key.length === 1 && plain && !ev.isComposing) {
      // A closing bracket typed first on an indented line goes back one level.
      const { selectionStart: from, selectionEnd: to, value } = area;
      const start = value.lastIndexOf("\n", from - 1) + 1;
      const before = value.slice(start, from);
      if (from !== to || !before.endsWith(INDENT) || before.trim() !== "") return;
      ev.preventDefault();
      typeOver(area, start, from, before.slice(INDENT.length) + ev.key);
    } else if (ev.key === "Enter" && plain && !ev.shiftKey && !ev.isComposing) {
      const { selectionStart: from, selectionEnd: to, value } = area;
      const line = value.slice(value.lastIndexOf("\n", from - 1) + 1, from);
      const indent = line.slice(0, line.length - line.trimStart().length);
      if (!indent) return;
      ev.preventDefault();
      typeOver(area, from, to, `\n${indent}`);
    }
    area.dataset.escaped = ev.key === "Escape" ? "1" : "0";
  });
}

/** Shows the page in the account's theme (kept with the account; see the dashboard). */
export async function accountTheme() {
  const r = await api("GET", "/api/users/theme");
  if (r.data.theme) document.documentElement.dataset.theme = r.data.theme;
  return r.data;
}
