// The dashboard: the account's profile and stats, its projects (a page at a time; create,
// rename, describe, delete), a password change and logging out. Every piece of data goes
// into the page as text.
import { accountTheme, api, ApiError, el, onSubmit, showError } from "./api.js";

const $ = (id) => document.getElementById(id);

/**
 * Leaves the page for the login page, showing nothing private on the way. A session found
 * ended replaces this page in the history; a logout keeps it there, and going back to it
 * loads it anew (it is never stored), which finds the session ended and leaves again.
 */
function toLogin(keep = false) {
  $("main").hidden = true;
  $("projects").replaceChildren();
  $("profile").textContent = "";
  $("stats").replaceChildren();
  $("who").textContent = "";
  if (keep) location.assign("/login");
  else location.replace("/login");
}

/** Whether a form on the page holds something typed (that leaving would lose). */
function typed() {
  return [...$("main").querySelectorAll("input")].some((i) => i.value !== i.defaultValue);
}

/** Whether the session still holds (a 401 may be about something else). */
async function live() {
  try {
    await api("GET", "/api/auth/me");
    return true;
  } catch (err) {
    return !(err instanceof ApiError && err.status === 401);
  }
}

/**
 * Runs `f`; a session that ended (401) goes back to the login page, unless a form holds
 * something typed: then the page stays, keeping it, and the form says why it failed. A 401
 * with the session still live (a wrong current password) is the form's own failure.
 */
async function signedIn(f) {
  try {
    return await f();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401 && !(await live())) {
      if (!typed()) toLogin();
      else {
        throw new ApiError(401, {
          error: "Your session ended: nothing was saved. What you typed is kept here: log in again in another tab, then try again.",
        });
      }
    }
    throw err;
  }
}

function duration(ms) {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 60000).toFixed(1)} min`;
}

async function loadProfile() {
  const [me, stats] = await Promise.all([api("GET", "/api/auth/me"), api("GET", "/api/users/stats")]);
  const u = me.user;
  $("who").textContent = u.username;
  $("profile").textContent = `${u.username} · ${u.email} · member since ${u.created_at.slice(0, 10)}`;
  const s = stats.stats;
  const stat = (label, value) => el("div", {}, el("b", {}, value), label);
  $("stats").replaceChildren(
    stat("projects", s.projects),
    stat("scripts", s.scripts),
    stat("executions", s.executions),
    stat("total execution time", duration(s.totalExecutionTimeMs)),
  );
}

let next = null;

/** One project's row: its name and description, and what can be done with it. */
function projectItem(p) {
  const box = el("p", { class: "error", role: "alert" });
  const title = el("a", { href: `/project?id=${p.id}` }, el("strong", {}, p.name));
  const about = el("div", { class: "hint" }, p.description || "No description");
  const view = el("div", { class: "row" },
    el("div", { class: "grow" }, title, about),
    el("button", { type: "button", onclick: () => edit() }, "Rename or describe"),
    el("button", { type: "button", class: "danger", onclick: () => remove() }, "Delete"));
  const li = el("li", { "data-project": p.id }, view, box);

  function edit() {
    const name = el("input", { name: "name", value: p.name, required: true, id: `name-${p.id}` });
    const description = el("input", { name: "description", value: p.description, id: `description-${p.id}` });
    const error = el("p", { class: "error", role: "alert" });
    const form = el("form", { class: "inline", novalidate: true },
      el("label", { for: `name-${p.id}` }, "Name"), name,
      el("label", { for: `description-${p.id}` }, "Description"), description, error,
      el("div", { class: "actions" },
        el("button", { type: "submit", class: "primary" }, "Save"),
        el("button", { type: "button", onclick: () => form.replaceWith(view) }, "Cancel")));
    onSubmit(form, async (f) => {
      const r = await signedIn(() => api("PUT", `/api/projects/${p.id}`, f));
      Object.assign(p, { name: r.data.name, description: r.data.description });
      title.firstChild.textContent = p.name;
      about.textContent = p.description || "No description";
      form.replaceWith(view);
    });
    view.replaceWith(form);
    name.focus();
  }

  async function remove() {
    if (!confirm(`Delete the project "${p.name}" with its scripts and files? This cannot be undone.`)) return;
    try {
      await signedIn(() => api("DELETE", `/api/projects/${p.id}`));
      li.remove();
      $("projects-notice").textContent = `Deleted ${p.name}.`;
      loadProfile().catch(() => {});
    } catch (err) {
      showError(box, err);
    }
  }
  return li;
}

async function loadProjects(more) {
  const path = more && next ? `/api/projects?after=${encodeURIComponent(next)}` : "/api/projects";
  const page = await api("GET", path);
  const items = page.data.map(projectItem);
  if (more) $("projects").append(...items);
  else $("projects").replaceChildren(...items);
  if (!more && items.length === 0) $("projects-notice").textContent = "No projects yet: create one above.";
  next = page.next || null;
  $("more").hidden = !next;
}

async function loadTheme() {
  const { theme, themes } = await accountTheme();
  const pick = $("theme");
  pick.replaceChildren(
    el("option", { value: "", disabled: true, selected: !theme }, "Choose a theme"),
    ...themes.map((t) => el("option", { value: t, selected: t === theme }, t)));
}

async function pickTheme() {
  const theme = $("theme").value;
  try {
    await signedIn(() => api("PUT", "/api/users/theme", { theme }));
    document.documentElement.dataset.theme = theme;
    $("theme-notice").textContent = `Theme ${theme} kept with your account.`;
  } catch (err) {
    showError($("theme-notice"), err);
  }
}

/**
 * Logs out (here or everywhere). A logout that fails for any other reason than a session
 * already ended leaves the session live: the page says so and stays, never pretending.
 */
async function logout(path) {
  try {
    await api("POST", path);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      alert(`Logging out failed: ${err.message}. You are still logged in: try again.`);
      return;
    }
  }
  toLogin(true);
}

async function start() {
  // A page brought back from the browser's history is checked again, never shown as kept.
  window.addEventListener("pageshow", (ev) => { if (ev.persisted) location.reload(); });
  $("logout").addEventListener("click", () => logout("/api/auth/logout"));
  $("logout-all").addEventListener("click", () => logout("/api/auth/logout-all"));
  $("more").addEventListener("click", () => signedIn(() => loadProjects(true)).catch(() => {}));
  onSubmit($("create"), async (f) => {
    const r = await signedIn(() => api("POST", "/api/projects", f));
    $("create").reset();
    $("projects-notice").textContent = `Created ${r.data.name}.`;
    $("projects").prepend(projectItem(r.data));
    loadProfile().catch(() => {});
  });
  onSubmit($("password"), async (f) => {
    const form = $("password");
    form.querySelector(".notice").textContent = "";
    const r = await signedIn(() => api("PUT", "/api/users/password", f));
    form.reset();
    form.querySelector(".notice").textContent = r.message;
  });
  try {
    $("theme").addEventListener("change", pickTheme);
    await signedIn(() => Promise.all([loadProfile(), loadProjects(false), loadTheme()]));
    $("main").hidden = false;
    // When the page became usable, for the browser's own timing (and the server's bench).
    performance.mark("valyxo:usable");
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      $("main").hidden = false;
      showError($("projects-notice"), err);
    }
  }
}

start();
