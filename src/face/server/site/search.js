// Finding text in an editor's field: Ctrl-F opens the find bar (with the selected word, if
// any); Enter there selects the next match in the text and goes back to it; F3 or Ctrl-G
// finds the next one from the text, with Shift the one before, wrapping around at the
// ends; Esc in the bar closes it. Case is ignored unless the search has a capital letter.

/** The start of every match of `needle` in `text`. */
function matches(text, needle) {
  const out = [];
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + needle.length)) out.push(at);
  return out;
}

/**
 * `text` in lower case, each character keeping its place: a character whose lower case is
 * longer ("İ" is "i̇") stays as it is, so that a match's place is its place in `text`.
 */
function lower(text) {
  const quick = text.toLowerCase();
  if (quick.length === text.length) return quick;
  return text.replace(/[\s\S]/gu, (c) => {
    const l = c.toLowerCase();
    return l.length === c.length ? l : c;
  });
}

/** Wires the find bar `bar` (its search field, and a status line) to the field `area`. */
export function editorSearch(area, bar) {
  const field = bar.querySelector("input");
  const state = bar.querySelector("[role=status]");

  /** Selects the next match after the selection (`back`: the one before it); true if any. */
  function find(back) {
    const query = field.value;
    if (!query) {
      state.textContent = "Type what to find.";
      return false;
    }
    const fold = query === query.toLowerCase();
    const text = fold ? lower(area.value) : area.value;
    const all = matches(text, fold ? lower(query) : query);
    if (all.length === 0) {
      state.textContent = `“${query}” is not in the text.`;
      return false;
    }
    let i = back
      ? all.findLastIndex((at) => at < area.selectionStart)
      : all.findIndex((at) => at >= area.selectionEnd);
    let wrapped = false;
    if (i < 0) {
      i = back ? all.length - 1 : 0;
      wrapped = true;
    }
    const at = all[i];
    area.focus();
    area.setSelectionRange(at, at + query.length);
    // Scrolled so that the match's line is in the middle of the field.
    const line = area.value.slice(0, at).split("\n").length - 1;
    const height = parseFloat(getComputedStyle(area).lineHeight) || 20;
    area.scrollTop = Math.max(0, line * height - area.clientHeight / 2);
    area.dispatchEvent(new Event("scroll"));
    state.textContent = `Match ${i + 1} of ${all.length}${wrapped ? `, from the ${back ? "end" : "start"} again` : ""} (F3: next, Shift-F3: the one before).`;
    return true;
  }

  area.addEventListener("keydown", (ev) => {
    const mod = ev.ctrlKey || ev.metaKey;
    if (mod && !ev.altKey && ev.key.toLowerCase() === "f") {
      ev.preventDefault();
      const picked = area.value.slice(area.selectionStart, area.selectionEnd);
      if (picked && !picked.includes("\n")) field.value = picked;
      bar.hidden = false;
      field.focus();
      field.select();
    } else if (ev.key === "F3" || (mod && !ev.altKey && ev.key.toLowerCase() === "g")) {
      if (bar.hidden || !field.value) return;
      ev.preventDefault();
      find(ev.shiftKey);
    }
  });
  field.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      find(ev.shiftKey);
    } else if (ev.key === "Escape") {
      ev.preventDefault();
      bar.hidden = true;
      state.textContent = "";
      area.focus();
    }
  });
}
