// A project's page: its files (the same files sync moves) as a tree, files and folders to
// open, create, rename, delete, upload and download (a folder as a .zip), and a plain editor whose save carries the version it was based on:
// a file changed elsewhere meanwhile is shown as a conflict, never overwritten silently.
import { accountTheme, api, ApiError, csrfToken, editorKeys, el, onSubmit, showError } from "./api.js";
import { scriptUnsaved, startScripts } from "./scripts.js";
import { editorSearch } from "./search.js";
import { startAssistant } from "./assistant.js";

const $ = (id) => document.getElementById(id);
const project = Number(new URLSearchParams(location.search).get("id"));
/** Files larger than this are offered for download, not opened. */
const OPEN_LIMIT = 5 * 1024 * 1024;

/** The URL of a file's content. */
const contentUrl = (path) => `/api/projects/${project}/files/content?path=${encodeURIComponent(path)}`;


/** Writes `body` (a string, Blob or File) as `path`'s content, based on `version`. */
async function write(path, body, version) {
  let res;
  try {
    res = await fetch(`${contentUrl(path)}&base_version=${version}`, {
      method: "PUT", credentials: "same-origin", body,
      headers: { "X-CSRF-Token": csrfToken(), "Content-Type": "application/octet-stream" },
    });
  } catch {
    throw new ApiError(0, { error: "The server cannot be reached: nothing was saved" });
  }
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (!res.ok) throw Object.assign(new ApiError(res.status, data), { conflicts: (data && data.conflicts) || [] });
  return data.data.files[0];
}

/** path -> its listing entry (live files only). */
const files = new Map();
/**
 * path -> the version of its deletion: a path whose file was deleted keeps counting
 * versions, and a new file there is based on the deletion's (0 would be a conflict).
 */
const gone = new Map();

/** Keeps a listing entry the server answered: a file, or a deletion. */
function track(f) {
  if (f.deleted) {
    files.delete(f.path);
    gone.set(f.path, f.version);
  } else {
    files.set(f.path, f);
    gone.delete(f.path);
  }
}

/** The version a new file at `path` is based on (0: the path was never used). */
const fresh = (path) => gone.get(path) ?? 0;
let next = null;

/** Whether the editor holds text not saved yet. */
function unsaved() {
  return editing !== null && $("text").value !== editing.text;
}

/**
 * Leaves for the login page when the session ended (401), for the dashboard when the
 * project is gone (404); true when it leaves. With unsaved text in the editor it stays,
 * says why, and keeps the text: it is never lost without a word.
 */
function leave(err) {
  const ended = err instanceof ApiError && err.status === 401;
  const missing = err instanceof ApiError && err.status === 404;
  if (!ended && !missing) return false;
  if (unsaved() || scriptUnsaved()) {
    const why = ended
      ? "Your session ended: nothing was saved. Your text is kept here: log in again in another tab, then save again."
      : "This project is gone: nothing was saved. Your text is kept here: copy it before you leave.";
    if (unsaved()) $("editor-error").textContent = why;
    if (scriptUnsaved()) $("script-state").textContent = why;
    return false;
  }
  location.replace(ended ? "/login" : "/dashboard");
  return true;
}

function size(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** The URL of a folder's archive (the whole project's for ""). */
const archiveUrl = (dir) => `/api/projects/${project}/files/archive${dir ? `?path=${encodeURIComponent(dir)}` : ""}`;

/** A file's row in the tree: its name under its folder, indented by the folder's depth. */
function fileItem(f) {
  const box = el("p", { class: "error", role: "alert" });
  const parts = f.path.split("/");
  const name = el("div", { class: "grow" }, el("strong", { title: f.path }, parts[parts.length - 1]),
    el("div", { class: "hint" }, `${size(f.size)} · version ${f.version}`));
  const li = el("li", { "data-path": f.path },
    el("div", { class: "row" }, name,
      el("button", { type: "button", onclick: () => open(f.path), "aria-label": `Open ${f.path}` }, "Open"),
      el("a", { class: "button", href: contentUrl(f.path), download: parts[parts.length - 1], "aria-label": `Download ${f.path}` }, "Download"),
      el("button", { type: "button", onclick: () => rename(f), "aria-label": `Rename ${f.path}` }, "Rename"),
      el("button", { type: "button", class: "danger", onclick: () => remove(f, box), "aria-label": `Delete ${f.path}` }, "Delete")),
    box);
  li.style.setProperty("--depth", parts.length - 1);
  return li;
}

/** A folder's row in the tree: download it as a .zip, rename or delete it with its files. */
function folderItem(dir) {
  const box = el("p", { class: "error", role: "alert" });
  const parts = dir.split("/");
  const name = parts[parts.length - 1];
  const li = el("li", { class: "folder", "data-folder": dir },
    el("div", { class: "row" },
      el("div", { class: "grow" }, el("strong", { title: dir }, `${name}/`)),
      el("a", { class: "button", href: archiveUrl(dir), download: `${name}.zip`, "aria-label": `Download the folder ${dir} as a .zip` }, "Download .zip"),
      el("button", { type: "button", onclick: () => renameFolder(dir, box), "aria-label": `Rename the folder ${dir}` }, "Rename"),
      el("button", { type: "button", class: "danger", onclick: () => removeFolder(dir, box), "aria-label": `Delete the folder ${dir}` }, "Delete")),
    box);
  li.style.setProperty("--depth", parts.length - 1);
  return li;
}

/** The files as a tree: each folder's row before its files, in path order. */
function render() {
  const sorted = [...files.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
  const rows = [];
  let shown = [];
  for (const f of sorted) {
    const dirs = f.path.split("/").slice(0, -1);
    let same = 0;
    while (same < dirs.length && same < shown.length && dirs[same] === shown[same]) same++;
    for (let i = same; i < dirs.length; i++) rows.push(folderItem(dirs.slice(0, i + 1).join("/")));
    shown = dirs;
    rows.push(fileItem(f));
  }
  $("files").replaceChildren(...rows);
  const empty = "No files yet: create or upload one.";
  const notice = $("files-notice");
  if (sorted.length === 0) notice.textContent = empty;
  else if (notice.textContent === empty) notice.textContent = "";
  $("more").hidden = !next;
  $("download-all").hidden = sorted.length === 0;
}

async function loadFiles(more) {
  const path = `/api/projects/${project}/files?limit=500${more && next ? `&after=${encodeURIComponent(next)}` : ""}`;
  const page = await api("GET", path);
  if (!more) {
    files.clear();
    gone.clear();
  }
  for (const f of page.data.files) track(f);
  next = page.next || null;
  render();
}

/** One commit of `changes` (renames, deletions); the entries it answers are kept. */
async function commit(changes) {
  const r = await api("POST", `/api/projects/${project}/files/commit`, { base_revision: 0, changes });
  for (const f of r.data.files) track(f);
  render();
}

async function remove(f, box) {
  if (!confirm(`Delete ${f.path}? Your other machines lose it at their next sync.${losing([f.path])}`)) return;
  try {
    await commit([{ path: f.path, hash: null, base_version: f.version }]);
    $("files-notice").textContent = `Deleted ${f.path}.`;
    if (editing && editing.path === f.path) closeEditor();
  } catch (err) { leave(err); showError(box, err); }
}

async function rename(f) {
  const to = prompt(`Rename ${f.path} to:`, f.path);
  if (!to || to === f.path) return;
  try {
    // The target may be past the pages read so far: it is asked about all the same.
    if (!files.has(to)) await loadAll();
    const there = files.get(to);
    if (there && !confirm(`${to} exists: replace it with ${f.path}? Its content is lost.`)) return;
    await commit([
      { path: to, hash: f.hash, base_version: there ? there.version : fresh(to), from: f.path },
      { path: f.path, hash: null, base_version: f.version },
    ]);
    $("files-notice").textContent = `Renamed ${f.path} to ${to}.`;
    follow(f.path, to);
  } catch (err) { leave(err); rowError(f.path, err, true); }
}

/** The open file moved from `from` to `to`: its saves go there, based on its version there. */
function follow(from, to) {
  if (editing && editing.path === from && files.has(to)) {
    editing = { ...editing, path: to, version: files.get(to).version };
    $("editor-title").textContent = to;
    $("editor-state").textContent = `version ${editing.version}`;
  }
}

/** Reads the pages of the listing not read yet: a folder's files may be on them. */
async function loadAll() {
  while (next) await loadFiles(true);
}

/** Reads the listing anew, every page of it (a first page alone would drop the rest). */
async function reloadFiles() {
  await loadFiles(false);
  await loadAll();
}

/** The live files under the folder `dir`. */
const under = (dir) => [...files.values()].filter((f) => f.path.startsWith(`${dir}/`));

/** What a confirmation adds when the open file would go with unsaved changes. */
function losing(paths) {
  return unsaved() && paths.includes(editing.path) ? ` Your unsaved changes to ${editing.path} are lost too.` : "";
}

/** Renames a folder: every file under it moves, a few thousand per commit. */
async function renameFolder(dir, box) {
  const to = (prompt(`Rename the folder ${dir} to:`, dir) || "").replace(/\/+$/, "");
  box.textContent = "";
  if (!to || to === dir) return;
  if (to.startsWith(`${dir}/`)) {
    box.textContent = `${to} is inside ${dir}: choose a path outside it.`;
    return;
  }
  try {
    await loadAll();
    const moving = under(dir);
    const target = (f) => to + f.path.slice(dir.length);
    const taken = moving.filter((f) => files.has(target(f)));
    if (taken.length && !confirm(`${taken.length} of the ${moving.length} files of ${dir} exist under ${to}: replace them? Their content is lost.`)) return;
    const pairs = moving.map((f) => {
      const there = files.get(target(f));
      return [
        { path: target(f), hash: f.hash, base_version: there ? there.version : fresh(target(f)), from: f.path },
        { path: f.path, hash: null, base_version: f.version },
      ];
    });
    for (let i = 0; i < pairs.length; i += 2000) {
      await commit(pairs.slice(i, i + 2000).flat());
      // The open file follows as soon as it moved: a later commit may fail.
      for (const f of moving.slice(i, i + 2000)) follow(f.path, target(f));
    }
    $("files-notice").textContent = `Renamed the folder ${dir} to ${to} (${count(moving.length)}).`;
  } catch (err) { leave(err); rowError(dir, err); }
}

/**
 * Shows `err`, from an action on the folder `dir` (or, `file`, the file at that path), in
 * its row as the tree is now (reading the listing or a commit redraws it: the row the
 * action began from may be gone), or under the files when it is no longer there.
 */
function rowError(dir, err, file = false) {
  const row = [...document.querySelectorAll("#files li")]
    .find((li) => (file ? li.dataset.path : li.dataset.folder) === dir);
  showError(row ? row.querySelector(".error") : $("files-notice"), err);
}

/** Deletes a folder: every file under it, after one confirmation. */
async function removeFolder(dir, box) {
  box.textContent = "";
  try {
    await loadAll();
    const going = under(dir);
    const paths = going.map((f) => f.path);
    if (!confirm(`Delete the folder ${dir} and its ${count(going.length)}? Your other machines lose them at their next sync.${losing(paths)}`)) return;
    for (let i = 0; i < going.length; i += 5000) {
      const batch = going.slice(i, i + 5000);
      await commit(batch.map((f) => ({ path: f.path, hash: null, base_version: f.version })));
      // The open file closes as soon as it went (as confirmed): a later commit may fail.
      if (editing && batch.some((f) => f.path === editing.path)) closeEditor();
    }
    $("files-notice").textContent = `Deleted the folder ${dir} (${count(going.length)}).`;
  } catch (err) { leave(err); rowError(dir, err); }
}

/** "1 file", "3 files". */
const count = (n) => `${n} ${n === 1 ? "file" : "files"}`;

// ---- the editor ----

/** Texts longer than this (in bytes) are shown plain: the server highlights no longer ones. */
const HIGHLIGHT_LIMIT = 512 * 1024;

/**
 * The highlighted copy under the field holds one element per line; `shown` is what they
 * hold: each line's text and the parts it is coloured with (null: plain).
 */
let shown = { lines: [], parts: [] };
/**
 * The server's highlight session of the text: its id, revision and file, the lines it
 * holds and their parts as it answered them. null: none (the whole text is sent next).
 * Each edit sends only the lines that differ from the session's, and gets back the parts
 * of the lines whose colours changed.
 */
let known = null;
/** A highlight request is under way (one at a time). */
let shadeBusy = false;
/** The text changed while it was: ask again when it is done. */
let shadeAgain = false;

/** The lines `a` and `b` share at their start (`head`) and, after those, at their end. */
function differ(a, b) {
  const most = Math.min(a.length, b.length);
  let head = 0;
  while (head < most && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < most - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  return { head, tail };
}

/** One line of the copy: its text, coloured by `parts` (each [start, end, colour, style]). */
function lineElement(line, parts) {
  const e = document.createElement("span");
  e.className = "line";
  let at = 0;
  for (const [start, end, colour, style] of parts || []) {
    if (start > at) e.append(line.slice(at, start));
    const span = el("span", {}, line.slice(start, end));
    span.style.color = colour;
    if (style.includes("b")) span.style.fontWeight = "bold";
    if (style.includes("i")) span.style.fontStyle = "italic";
    e.append(span);
    at = end;
  }
  e.append(line.slice(at) + "\n");
  return e;
}

/**
 * Makes the copy show `text`: a line the session holds as it is (and where it is, among
 * the lines the two share at the start and the end) in the session's colours, any other
 * plain. Only the elements of lines that changed since the last drawing are made anew.
 */
function draw(text) {
  const pre = $("shade");
  const lines = text.split("\n");
  const k = known ? differ(known.lines, lines) : { head: 0, tail: 0 };
  const want = (i) => {
    if (i < k.head) return known.parts[i];
    if (known && i >= lines.length - k.tail) return known.parts[i - lines.length + known.lines.length];
    return null;
  };
  const d = differ(shown.lines, lines);
  const kids = pre.children;
  const gone = shown.lines.length - d.head - d.tail;
  if (gone > 0) {
    const range = document.createRange();
    range.setStartBefore(kids[d.head]);
    range.setEndAfter(kids[d.head + gone - 1]);
    range.deleteContents();
  }
  const added = document.createDocumentFragment();
  const parts = new Array(lines.length);
  for (let i = d.head; i < lines.length - d.tail; i++) {
    parts[i] = want(i);
    added.append(lineElement(lines[i], parts[i]));
  }
  pre.insertBefore(added, kids[d.head] || null);
  // The other lines are as they were: re-coloured where the session says otherwise.
  const moved = shown.lines.length - lines.length;
  for (let i = 0; i < lines.length; i++) {
    if (i === d.head) i = lines.length - d.tail;
    if (i >= lines.length) break;
    const had = shown.parts[i < d.head ? i : i + moved];
    parts[i] = want(i);
    if (parts[i] !== had) kids[i].replaceWith(lineElement(lines[i], parts[i]));
  }
  shown = { lines, parts };
  number(lines.length);
  // Scrolled as the field, once the frame lays it out (reading its scroll here would lay
  // out the whole text at once, before the request goes).
  requestAnimationFrame(scrolled);
  return k.head === lines.length && known.lines.length === lines.length;
}

/** Scrolls the copy as the field is. */
function scrolled() {
  $("shade").scrollTop = $("text").scrollTop;
  $("shade").scrollLeft = $("text").scrollLeft;
  $("lines").scrollTop = $("text").scrollTop;
}

/**
 * Redraws the highlighted copy under the field: the request for the colours goes first
 * (the server works while the page lays the text out), then the changed lines are drawn
 * plain at once, to be coloured when the answer comes.
 */
function shade() {
  performance.mark("valyxo:typed");
  const text = $("text").value;
  if (!editing || text.length > HIGHLIGHT_LIMIT || (known && known.path !== editing.path)) known = null;
  if (editing && text.length <= HIGHLIGHT_LIMIT) colour();
  if (draw(text)) performance.mark("valyxo:highlighted");
}

/**
 * Sends the server the field's text, as an edit of its session when there is one, and
 * draws the colours it answers. One request at a time: the text typed meanwhile goes next.
 */
async function colour() {
  if (shadeBusy) {
    shadeAgain = true;
    return;
  }
  const text = $("text").value;
  if (!editing || text.length > HIGHLIGHT_LIMIT) return;
  const path = editing.path;
  const lines = text.split("\n");
  const base = known && known.path === path ? known : null;
  const d = base ? differ(base.lines, lines) : null;
  if (base && d.head === lines.length && base.lines.length === lines.length) {
    if (draw(text)) performance.mark("valyxo:highlighted");
    return;
  }
  // The limit counts bytes: a text of letters beyond ASCII may be over it in fewer units.
  if (!base && new TextEncoder().encode(text).length > HIGHLIGHT_LIMIT) return;
  const body = base
    ? {
      path, session: base.session, revision: base.revision, from: d.head,
      removed: base.lines.length - d.head - d.tail, lines: lines.slice(d.head, lines.length - d.tail),
    }
    : { path, text };
  shadeBusy = true;
  let r = null;
  let wait = -1;
  try {
    r = await api("POST", "/api/highlight", body);
  } catch (err) {
    // Plain text stays: highlighting is a help, not the content. A session the server
    // does not know (restarted, another server, evicted): the whole text again. The
    // account's other pages busy highlighting (429): again shortly.
    if (err instanceof ApiError && err.status === 409 && known === base) {
      known = null;
      wait = 0;
    } else if (err instanceof ApiError && err.status === 429) {
      wait = 500;
    }
  } finally {
    shadeBusy = false;
  }
  if (r && known === base) {
    const a = r.data;
    const parts = base
      ? base.parts.slice(0, d.head).concat(new Array(body.lines.length).fill(null), base.parts.slice(base.lines.length - d.tail))
      : new Array(lines.length).fill(null);
    a.lines.forEach((p, k) => { parts[a.from + k] = p; });
    known = { path, session: a.session, revision: a.revision, lines, parts };
    // The text as it is now: the lines typed meanwhile stay plain until their answer.
    if (draw($("text").value)) {
      $("shade").dataset.language = a.language;
      performance.mark("valyxo:highlighted");
    } else if (editing && editing.path === path) wait = Math.max(wait, 0);
  }
  if (shadeAgain || wait >= 0) {
    shadeAgain = false;
    setTimeout(colour, Math.max(wait, 0));
  }
}

/** How many lines the numbers beside the editor count. */
let numbered = 0;

/** Numbers the editor's `n` lines beside it (rewritten only when their count changed). */
function number(n) {
  if (n !== numbered) {
    numbered = n;
    // One line more, for the room the field's scroll bar takes at its foot.
    $("lines").textContent = `${Array.from({ length: n }, (_, i) => i + 1).join("\n")}\n\n`;
    $("lines").parentElement.style.setProperty("--digits", String(n).length);
  }
}

/** The open file: its path, the version its text was read at, and that text. */
let editing = null;

/** Whether the editor's text may go: nothing unsaved, or the user says so. */
function mayDiscard() {
  return !unsaved() || confirm(`Discard your unsaved changes to ${editing.path}?`);
}

function closeEditor() {
  editing = null;
  $("editor").hidden = true;
  $("text").value = "";
}

/** Opens `path` in the editor; unless `force`, asks first when that drops unsaved text. */
async function open(path, force = false) {
  if (!force && !mayDiscard()) return;
  const f = files.get(path);
  $("editor-error").textContent = "";
  $("conflict").hidden = true;
  if (f && f.size > OPEN_LIMIT) {
    $("files-notice").textContent = `${path} is ${size(f.size)}: too large to open here; download it instead.`;
    return;
  }
  let res;
  try {
    res = await fetch(contentUrl(path), { credentials: "same-origin" });
  } catch {
    $("files-notice").textContent = "The server cannot be reached: check your connection";
    return;
  }
  if (res.status === 404) {
    // Deleted (or moved) elsewhere since the list was read: said here, and the list read
    // anew (a project that is gone leaves for the dashboard).
    await reloadFiles().catch(leave);
    $("files-notice").textContent = `${path} is no longer there: it was deleted or renamed elsewhere.`;
    return;
  }
  if (!res.ok) { leave(new ApiError(res.status, null)); return; }
  // Grown elsewhere since the list was read: checked again before it is read whole.
  const length = Number(res.headers.get("Content-Length"));
  if (length > OPEN_LIMIT) {
    res.body?.cancel();
    $("files-notice").textContent = `${path} is ${size(length)}: too large to open here; download it instead.`;
    return;
  }
  const bytes = await res.arrayBuffer();
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    $("files-notice").textContent = `${path} is a binary file (${size(bytes.byteLength)}): download it to see it.`;
    return;
  }
  // A byte-order mark stays in the text (ignoreBOM above), to be written back as it was.
  // A text area holds every line break as "\n": a file written with "\r\n" gets them back
  // when saved, so that an edit does not rewrite each of its lines.
  const lf = text.replace(/\r\n?/g, "\n");
  const eol = text.includes("\r\n") && !/(^|[^\r])\n/.test(text) ? "\r\n" : "\n";
  editing = { path, version: files.get(path)?.version ?? 0, text: lf, eol };
  $("editor-title").textContent = path;
  const mixed = lf.replaceAll("\n", eol) !== text;
  $("editor-state").textContent = `version ${editing.version}` +
    (mixed ? ` · its mixed line endings are saved as ${eol === "\n" ? "LF" : "CRLF"}` : "");
  $("text").value = lf;
  $("editor").hidden = false;
  shade();
  $("text").focus();
}

/** The save under way, and whether another was asked for meanwhile. */
let saving = null;
let again = false;

/**
 * Saves the editor's text. One save at a time: a save asked for while one is under way
 * follows it, based on the version it made (not refused as a conflict with it).
 */
function save(version) {
  if (saving) {
    again = true;
    return saving;
  }
  saving = (async () => {
    try {
      await saveOnce(version);
    } finally {
      saving = null;
    }
    if (again) {
      again = false;
      if (unsaved() && $("conflict").hidden) await save();
    }
  })();
  return saving;
}

async function saveOnce(version) {
  if (!editing) return;
  const opened = editing;
  const { path } = editing;
  const text = $("text").value;
  $("editor-error").textContent = "";
  try {
    const body = opened.eol === "\r\n" ? text.replaceAll("\n", "\r\n") : text;
    const f = await write(path, body, version ?? editing.version);
    track(f);
    render();
    // Another file opened (or the editor closed) meanwhile: that one is left as it is.
    if (editing !== opened) return;
    editing = { path, version: f.version, text, eol: opened.eol };
    $("conflict").hidden = true;
    $("editor-state").textContent = `version ${f.version} · saved`;
  } catch (err) {
    if (editing !== opened) return;
    // A session or project that ended leaves only when nothing unsaved would be lost.
    if (err.status === 401 || err.status === 404) { leave(err); return; }
    if (err.status === 409) {
      const theirs = err.conflicts[0] || { server_version: 0 };
      editing.theirs = theirs.server_version;
      $("editor-error").textContent = `${path} changed elsewhere since you opened it (now version ${theirs.server_version}). Nothing was saved: choose below.`;
      $("conflict").hidden = false;
    } else {
      showError($("editor-error"), err);
    }
  }
}

function startEditor() {
  editorKeys($("text"), () => save());
  editorSearch($("text"), $("find"));
  $("text").addEventListener("input", shade);
  $("text").addEventListener("scroll", scrolled);
  $("save").addEventListener("click", () => save());
  $("close").addEventListener("click", () => { if (mayDiscard()) closeEditor(); });
  // Leaving the page (a link, back, closing the tab) with unsaved text: the browser asks.
  window.addEventListener("beforeunload", (ev) => {
    if (unsaved() || scriptUnsaved()) {
      ev.preventDefault();
      ev.returnValue = "";
    }
  });
  $("take-theirs").addEventListener("click", async () => {
    if (!editing) return;
    const { path } = editing;
    // Every page read anew: the file may lie past the first, and its version there is
    // what the next save is based on.
    await reloadFiles().catch(leave);
    open(path, true);
  });
  $("keep-mine").addEventListener("click", () => { if (editing) save(editing.theirs); });
}

// ---- new files and uploads ----

/** Uploads "many" files only when the user says so (a dropped node_modules, say). */
const MANY = 1000;

/**
 * Uploads `list`, [path, File] pairs, one file at a time, asking once before replacing
 * files that exist; a file that fails is named, the others go on.
 */
async function upload(list) {
  $("upload-error").textContent = "";
  if (list.length === 0) return;
  if (list.length > MANY && !confirm(`Upload ${count(list.length)}?`)) return;
  // Files past the listing's first page may be replaced too: their versions are needed.
  try {
    await loadAll();
  } catch (err) {
    if (!leave(err)) showError($("upload-error"), err);
    return;
  }
  const taken = list.filter(([path]) => files.has(path));
  let replace = true;
  if (taken.length === 1 && list.length === 1) {
    replace = confirm(`${taken[0][0]} exists: replace it with the file you dropped or chose?`);
  } else if (taken.length) {
    replace = confirm(`${taken.length} of the ${count(list.length)} exist: replace them? (Cancel uploads only the new ones.)`);
  }
  const failed = [];
  let done = 0;
  for (const [path, file] of list) {
    const there = files.get(path);
    if (there && !replace) continue;
    if (list.length > 1) $("files-notice").textContent = `Uploading ${done + failed.length + 1} of ${list.length}: ${path}…`;
    try {
      track(await write(path, file, there ? there.version : fresh(path)));
      done++;
    } catch (err) {
      if (leave(err)) return;
      failed.push(`${path}: ${[err.message, ...err.details.map((d) => d.message)].join(" ")}`);
    }
  }
  render();
  const skipped = list.length - done - failed.length;
  $("files-notice").textContent = list.length === 1 && done === 1 ? `Uploaded ${list[0][0]}.`
    : done || !failed.length ? `Uploaded ${count(done)}${skipped ? `; kept ${skipped} as they were` : ""}.` : "";
  if (failed.length) {
    const box = $("upload-error");
    box.replaceChildren(`Not uploaded (${count(failed.length)}):`, ...failed.flatMap((l) => [el("br"), l]));
  }
}

/** A drop's files as [path, File] pairs, walking the folders dropped. */
async function dropped(dt) {
  // The entries are read now: after the first wait the drop's data is gone.
  const entries = [...dt.items].map((i) => (i.kind === "file" && i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
  if (entries.length === 0 || entries.some((e) => e === null)) return [...dt.files].map((f) => [f.name, f]);
  const out = [];
  const walk = async (entry, at) => {
    if (entry.isFile) {
      out.push([at + entry.name, await new Promise((ok, no) => entry.file(ok, no))]);
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((ok, no) => reader.readEntries(ok, no));
        if (batch.length === 0) break;
        for (const e of batch) await walk(e, `${at}${entry.name}/`);
      }
    }
  };
  for (const e of entries) await walk(e, "");
  return out;
}

function startFiles() {
  onSubmit($("new-file"), async (form) => {
    if (!mayDiscard()) return;
    const f = await write(form.path, "", fresh(form.path));
    track(f);
    $("new-file").reset();
    render();
    await open(f.path, true);
  });
  $("upload").addEventListener("change", (ev) => {
    upload([...ev.target.files].map((f) => [f.name, f]));
    ev.target.value = "";
  });
  $("upload-folder").addEventListener("change", (ev) => {
    upload([...ev.target.files].map((f) => [f.webkitRelativePath || f.name, f]));
    ev.target.value = "";
  });
  $("download-all").href = archiveUrl("");
  // The upload buttons are labels of hidden file fields: Enter or Space opens them too.
  for (const label of document.querySelectorAll("label.button[for]")) {
    label.addEventListener("keydown", (ev) => {
      if (ev.key !== "Enter" && ev.key !== " ") return;
      ev.preventDefault();
      $(label.htmlFor).click();
    });
  }
  $("more").addEventListener("click", () => loadFiles(true).catch(leave));
  const main = $("main");
  main.addEventListener("dragover", (ev) => ev.preventDefault());
  main.addEventListener("drop", (ev) => {
    ev.preventDefault();
    dropped(ev.dataTransfer).then(upload, (err) => {
      $("upload-error").textContent = `The dropped files cannot be read: ${err.message || err}`;
    });
  });
}

async function start() {
  window.addEventListener("pageshow", (ev) => { if (ev.persisted) location.reload(); });
  if (!Number.isInteger(project) || project < 1) { location.replace("/dashboard"); return; }
  startEditor();
  startFiles();
  try {
    accountTheme().catch(() => {});
    const p = await api("GET", `/api/projects/${project}`);
    $("title").textContent = p.data.name;
    $("about").textContent = p.data.description || "";
    document.title = `${p.data.name} — Valyxo`;
    $("download-all").download = `${p.data.name}.zip`;
    await loadFiles(false);
    await startScripts(project, leave);
    startAssistant($("text"), () => editing?.path ?? null);
    $("main").hidden = false;
  } catch (err) {
    leave(err);
  }
}

start();
