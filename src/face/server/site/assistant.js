// The editor's Ask panel: a question about the open file (or the text selected in it) goes
// to the server's assistant, whose answer streams in as text; each code block of it can
// replace what was asked about as one edit, which Ctrl-Z undoes. The model's words are
// only ever text on the page (textContent), never HTML. A server without an assistant has
// the panel say how its operator turns one on.
import { api, ApiError, csrfToken, el, typeOver } from "./api.js";

const $ = (id) => document.getElementById(id);

/** The answer's text split into prose and fenced code blocks (` ``` ` or longer fences). */
export function blocks(text) {
  const out = [];
  let prose = [];
  let code = null;
  for (const line of text.split("\n")) {
    if (code) {
      if (line.trim() === code.fence) {
        out.push({ code: code.lines.join("\n"), lang: code.lang, closed: true });
        code = null;
      } else {
        code.lines.push(line);
      }
      continue;
    }
    const m = /^\s*(`{3,})\s*([^`]*)$/.exec(line);
    if (m) {
      if (prose.length) out.push({ text: prose.join("\n") });
      prose = [];
      code = { fence: m[1], lang: m[2].trim(), lines: [] };
    } else {
      prose.push(line);
    }
  }
  if (code) out.push({ code: code.lines.join("\n"), lang: code.lang, closed: false });
  else if (prose.some((l) => l.trim() !== "")) out.push({ text: prose.join("\n") });
  return out;
}

/**
 * Starts the panel under the editor's field `area`; `path()` names the open file (null
 * when none is open).
 */
export async function startAssistant(area, path) {
  const form = $("ask");
  const question = $("question");
  const state = $("ask-state");
  const answerBox = $("answer");
  const errorBox = $("ask-error");
  const stop = $("ask-stop");
  const send = $("ask-send");
  /** The question under way: its abort controller. */
  let asking = null;
  /** What the last question was about: the range of the text it covered, and that text. */
  let target = null;
  /** The answer so far. */
  let answer = "";

  let status;
  try {
    status = (await api("GET", "/api/assistant")).data;
  } catch {
    return;
  }
  if (!status.configured) {
    $("assistant-off").textContent = status.help;
    $("assistant-off").hidden = false;
    return;
  }
  $("assistant-model").textContent = `Answers come from ${status.model}.`;
  form.hidden = false;

  /** Replaces what the question was about with `code`, as one edit Ctrl-Z undoes. */
  function apply(code) {
    errorBox.textContent = "";
    if (!target || target.path !== path()) {
      errorBox.textContent = "The answer was about another file: open it to apply this.";
      return;
    }
    const { start, end, text } = target;
    const now = target.whole ? area.value : area.value.slice(start, end);
    if (now !== text) {
      errorBox.textContent = target.whole
        ? "The text changed since the question (undo with Ctrl-Z, or ask again): nothing was replaced."
        : "The selected text changed since the question (undo with Ctrl-Z, or select it and ask again): nothing was replaced.";
      return;
    }
    // A whole text (or selection) that ended its last line keeps doing so.
    if (text.endsWith("\n") && !code.endsWith("\n")) code += "\n";
    // The browser's own edit: one step of its undo history, and an input event for the
    // editor (highlighting, the unsaved state).
    typeOver(area, start, end, code);
    state.textContent = "Applied: Ctrl-Z undoes it.";
  }

  /** Draws the answer so far: prose as text, code blocks as text with an Apply button. */
  function draw(done) {
    const parts = blocks(answer).map((b) => {
      if (b.text !== undefined) return el("p", { class: "said" }, b.text);
      const ready = b.closed || done;
      return el("div", { class: "suggestion" },
        el("pre", {}, el("code", b.lang ? { "data-lang": b.lang } : {}, b.code)),
        el("button", {
          type: "button", class: "apply", disabled: !ready,
          onclick: () => apply(b.code),
        }, target && !target.whole ? "Apply to the selection" : "Apply to the file"));
    });
    answerBox.replaceChildren(...parts);
  }

  function finish(message) {
    asking = null;
    stop.hidden = true;
    send.disabled = false;
    state.textContent = message;
    draw(true);
  }

  async function ask() {
    const q = question.value.trim();
    errorBox.textContent = "";
    if (!q) {
      errorBox.textContent = "Write a question first.";
      question.focus();
      return;
    }
    if (asking || path() === null) return;
    const [start, end] = [area.selectionStart, area.selectionEnd];
    const whole = start === end;
    target = whole
      ? { path: path(), whole, start: 0, end: area.value.length, text: area.value }
      : { path: path(), whole, start, end, text: area.value.slice(start, end) };
    const body = { question: q, path: path(), text: whole ? area.value : "" };
    if (!whole) body.selection = target.text;
    answer = "";
    answerBox.replaceChildren();
    asking = new AbortController();
    stop.hidden = false;
    send.disabled = true;
    state.textContent = whole ? "Asking about the file…" : "Asking about the selection…";
    let res;
    try {
      res = await fetch("/api/assistant", {
        method: "POST", credentials: "same-origin", signal: asking.signal,
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
        body: JSON.stringify(body),
      });
    } catch (err) {
      finish(err.name === "AbortError" ? "Stopped." : "");
      if (err.name !== "AbortError") errorBox.textContent = "The server cannot be reached: check your connection";
      return;
    }
    if (!res.ok) {
      let data = null;
      try { data = await res.json(); } catch { data = null; }
      finish("");
      errorBox.textContent = new ApiError(res.status, data).message;
      return;
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    let ended = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += value;
        const lines = buffered.split("\n");
        buffered = lines.pop();
        for (const line of lines) {
          if (!line.trim()) continue;
          const piece = JSON.parse(line);
          if (typeof piece.text === "string") answer += piece.text;
          if (piece.error) errorBox.textContent = piece.error;
          if (piece.done) ended = "Done.";
        }
        draw(false);
      }
      finish(ended || (errorBox.textContent ? "The answer broke off." : "The answer ended early."));
    } catch (err) {
      if (err.name === "AbortError") finish("Stopped.");
      else {
        finish("The answer broke off.");
        errorBox.textContent = "The connection to the server broke: the answer is incomplete";
      }
    }
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    ask();
  });
  question.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      ask();
    }
  });
  stop.addEventListener("click", () => {
    if (asking) asking.abort();
  });
}
