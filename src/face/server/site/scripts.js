// A project's scripts on its page: list, create, edit (Ctrl-S saves, based on the version
// read: a script saved elsewhere since is a conflict, never overwritten silently), run in
// the server's sandbox with the output, exit status and time shown, and each script's
// history.
import { api, ApiError, editorKeys, el, onSubmit, showError } from "./api.js";

const $ = (id) => document.getElementById(id);

let project = 0;
let leave = () => {};
/**
 * The script being edited: its id, name and language, the version (`updated_at`) its text
 * was read or saved at, and that text.
 */
let editing = null;

/** Whether the script's editor holds text not saved yet. */
export function scriptUnsaved() {
  return editing !== null && $("script-text").value !== editing.text;
}

/** Whether the script's editor may drop its text: nothing unsaved, or the user says so. */
function mayDrop() {
  return !scriptUnsaved() || confirm(`Discard your unsaved changes to the script ${editing.name}?`);
}

function closeScript() {
  editing = null;
  $("script-editor").hidden = true;
  $("script-conflict").hidden = true;
}

function when(iso) {
  return iso.replace("T", " ").slice(0, 19);
}

function scriptItem(s) {
  const box = el("p", { class: "error", role: "alert" });
  return el("li", { "data-script": s.id },
    el("div", { class: "row" },
      el("div", { class: "grow" }, el("strong", {}, s.name), el("div", { class: "hint" }, s.language)),
      el("button", { type: "button", onclick: () => edit(s.id).catch((e) => showError(box, e)) }, "Edit"),
      el("button", { type: "button", onclick: () => run(s).catch((e) => showError(box, e)) }, "Run"),
      el("button", { type: "button", onclick: () => history(s).catch((e) => showError(box, e)) }, "History"),
      el("button", { type: "button", class: "danger", onclick: () => remove(s, box) }, "Delete")),
    box);
}

async function load() {
  const page = await api("GET", `/api/scripts/project/${project}?limit=100`);
  $("scripts").replaceChildren(...page.data.map(scriptItem));
  $("scripts-notice").textContent = page.data.length ? "" : "No scripts yet.";
}

async function edit(id, force = false) {
  if (!force && !mayDrop()) return;
  const s = (await api("GET", `/api/scripts/${id}`)).data;
  editing = { id: s.id, name: s.name, language: s.language, version: s.updated_at, text: s.content };
  $("script-title").textContent = `${s.name} (${s.language})`;
  $("script-text").value = s.content;
  $("script-state").textContent = "";
  $("script-conflict").hidden = true;
  $("script-editor").hidden = false;
  $("script-text").focus();
}

/** The save under way, and whether another was asked for meanwhile. */
let saving = null;
let again = false;

/**
 * Saves the script, based on the version it was read at: when it was saved elsewhere since
 * (another tab), nothing is overwritten and the choice is shown. `over` saves over theirs.
 * One save at a time: a save asked for while one is under way follows it, based on the
 * version it made (not refused as a conflict with this tab's own save).
 */
function save(over = false) {
  if (saving) {
    again = true;
    return saving;
  }
  saving = (async () => {
    try {
      await saveOnce(over);
    } finally {
      saving = null;
    }
    if (again) {
      again = false;
      if (scriptUnsaved() && $("script-conflict").hidden) await save();
    }
  })();
  return saving;
}

async function saveOnce(over) {
  if (!editing) return;
  const opened = editing;
  const text = $("script-text").value;
  const body = { name: opened.name, content: text, language: opened.language };
  // Over theirs: based on their version as the conflict showed it, so that a save made
  // elsewhere after that is a conflict again, not overwritten unseen.
  body.base_updated_at = over && opened.theirs ? opened.theirs : opened.version;
  $("script-state").textContent = "saving…";
  try {
    const r = await api("PUT", `/api/scripts/${opened.id}`, body);
    opened.version = r.data.updated_at;
    opened.text = text;
    opened.theirs = null;
    // Another script opened (or the editor closed) meanwhile: that one is left as it is.
    if (editing !== opened) return;
    $("script-conflict").hidden = true;
    $("script-state").textContent = $("script-text").value === text ? "saved" : "saved; changed since";
  } catch (err) {
    if (editing !== opened) return;
    if (err instanceof ApiError && err.status === 404) {
      $("script-state").textContent = "This script (or its project) was deleted elsewhere: nothing was saved. Your text is kept here: copy it before you leave.";
      return;
    }
    // An ended session: the page leaves, or says why it keeps the text.
    if (leave(err) || (err instanceof ApiError && err.status === 401)) return;
    showError($("script-state"), err);
    if (err instanceof ApiError && err.status === 409) {
      // Their version, which "Save mine over theirs" replaces (and nothing later).
      try {
        opened.theirs = (await api("GET", `/api/scripts/${opened.id}`)).data.updated_at;
      } catch {
        opened.theirs = null;
      }
      if (editing === opened) $("script-conflict").hidden = false;
    }
  }
}

/** Shows an execution: its status, time, output and error, as text. */
function showRun(name, r) {
  $("run-title").textContent = `${name}: ${r.status} in ${r.execution_time_ms} ms`;
  $("run-output").textContent = r.output || "(no output)";
  $("run-error").textContent = r.error || "";
  $("run").hidden = false;
}

async function run(s) {
  $("run-title").textContent = `${s.name}: running…`;
  $("run").hidden = false;
  try {
    showRun(s.name, (await api("POST", `/api/scripts/${s.id}/execute`)).data);
  } catch (err) {
    leave(err);
    $("run-title").textContent = `${s.name}: not run`;
    showError($("run-error"), err);
  }
}

async function history(s) {
  const page = await api("GET", `/api/scripts/${s.id}/executions?limit=20`);
  $("run-title").textContent = `${s.name}: the latest runs`;
  $("run-output").replaceChildren(...page.data.map((e) =>
    el("div", {}, `${when(e.executed_at)}  ${e.status}  ${e.execution_time_ms} ms`)));
  if (page.data.length === 0) $("run-output").textContent = "Never run.";
  $("run-error").textContent = "";
  $("run").hidden = false;
}

async function remove(s, box) {
  const losing = editing && editing.id === s.id && scriptUnsaved() ? " Your unsaved changes to it are lost too." : "";
  if (!confirm(`Delete the script ${s.name} and its history?${losing}`)) return;
  try {
    await api("DELETE", `/api/scripts/${s.id}`);
    if (editing && editing.id === s.id) closeScript();
    await load();
  } catch (err) { leave(err); showError(box, err); }
}

/** Wires the scripts' section for `id`; `onFail` handles an ended session. */
export async function startScripts(id, onFail) {
  project = id;
  leave = onFail;
  editorKeys($("script-text"), () => save());
  $("script-text").addEventListener("input", () => { $("script-state").textContent = "unsaved changes"; });
  $("script-save").addEventListener("click", () => save());
  $("script-close").addEventListener("click", () => { if (mayDrop()) closeScript(); });
  $("script-take-theirs").addEventListener("click", () => { if (editing) edit(editing.id, true); });
  $("script-keep-mine").addEventListener("click", () => save(true));
  onSubmit($("new-script"), async (f) => {
    if (!mayDrop()) return;
    const r = await api("POST", `/api/scripts/project/${project}`, {
      name: f.name, content: "", language: f.language,
    });
    $("new-script").reset();
    await load();
    await edit(r.data.id, true);
  });
  await load();
}
