// A project's scripts on its page: list, create, edit (Ctrl-S saves), run in the server's
// sandbox with the output, exit status and time shown, and each script's history.
import { api, editorKeys, el, onSubmit, showError } from "./api.js";

const $ = (id) => document.getElementById(id);

let project = 0;
let leave = () => {};
/** The script being edited: its id, name and language. */
let editing = null;

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

async function edit(id) {
  const s = (await api("GET", `/api/scripts/${id}`)).data;
  editing = { id: s.id, name: s.name, language: s.language };
  $("script-title").textContent = `${s.name} (${s.language})`;
  $("script-text").value = s.content;
  $("script-state").textContent = "";
  $("script-editor").hidden = false;
  $("script-text").focus();
}

async function save() {
  if (!editing) return;
  try {
    await api("PUT", `/api/scripts/${editing.id}`, {
      name: editing.name, content: $("script-text").value, language: editing.language,
    });
    $("script-state").textContent = "saved";
  } catch (err) {
    leave(err);
    showError($("script-state"), err);
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
  if (!confirm(`Delete the script ${s.name} and its history?`)) return;
  try {
    await api("DELETE", `/api/scripts/${s.id}`);
    if (editing && editing.id === s.id) { editing = null; $("script-editor").hidden = true; }
    await load();
  } catch (err) { leave(err); showError(box, err); }
}

/** Wires the scripts' section for `id`; `onFail` handles an ended session. */
export async function startScripts(id, onFail) {
  project = id;
  leave = onFail;
  editorKeys($("script-text"), save);
  $("script-save").addEventListener("click", save);
  $("script-close").addEventListener("click", () => { editing = null; $("script-editor").hidden = true; });
  onSubmit($("new-script"), async (f) => {
    const r = await api("POST", `/api/scripts/project/${project}`, {
      name: f.name, content: "", language: f.language,
    });
    $("new-script").reset();
    await load();
    await edit(r.data.id);
  });
  await load();
}
