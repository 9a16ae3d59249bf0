/* Adjudication page: record the consensus from the keyboard, row by row.
 *
 * The keys only fill in and send the row's own form (the per-row Save: same URL, same fields, same
 * action on the server), one at a time, each with the version the previous answer carried: the board
 * comes back as the answer and replaces the old one. Without this file every row still has its
 * dropdown and Save button.
 *   j/k, ↓/↑   move between rows (globals, then utterances)
 *   [ / ]      accept coder A's / coder B's code (or rating) on the focused row
 *   code keys  type a code, as on the coding page (g p w q s c a l e x, 0/n); 1–5 rate a global
 *   ⌫          clear the row's consensus
 *   Ctrl+Enter submit the consensus (a dialog: Enter confirms, Esc cancels)
 *   >          the next transcript of the round waiting for a consensus
 */
(function () {
  "use strict";

  var dataEl = document.getElementById("adjudication-data");
  if (!dataEl) return;
  var cfg = JSON.parse(dataEl.textContent);
  var msg = cfg.messages;
  var csrf = (function () {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; }
    catch (e) { return ""; }
  })();

  var current = null;   // id of the focused row
  var queue = [];       // {row, value}: changes not yet answered, oldest first
  var busy = false;

  function $(id) { return document.getElementById(id); }
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#board tr[data-stop]")); }
  function showState(text) { var el = $("save-state"); if (el) el.textContent = text; }

  function setCurrent(id, scroll) {
    var old = current && $(current);
    if (old) old.classList.remove("is-current");
    var el = id && $(id);
    if (!el) { current = null; return; }
    current = id;
    el.classList.add("is-current");
    el.focus({preventScroll: true});
    if (scroll) {
      var r = el.getBoundingClientRect();
      if (r.top < 10 || r.bottom > window.innerHeight - 10) el.scrollIntoView({block: "center"});
    }
  }
  function move(delta) {
    var list = rows();
    if (!list.length) return;
    var i = list.findIndex(function (el) { return el.id === current; });
    var next = i < 0 ? 0 : Math.min(Math.max(i + delta, 0), list.length - 1);
    setCurrent(list[next].id, true);
  }

  /* The board was replaced (our answer or an htmx Save): mark the focused row again. */
  function afterSwap() {
    var el = current && $(current);
    if (el) {
      el.classList.add("is-current");
      if (!document.activeElement || document.activeElement === document.body) el.focus({preventScroll: true});
    }
  }
  document.body.addEventListener("htmx:afterSwap", afterSwap);

  function pump() {
    if (busy || !queue.length) return;
    var op = queue[0];
    var row = $(op.row);
    var form = row && row.querySelector("form");
    if (!form) { queue = []; return; }
    var field = form.querySelector("select");
    field.value = op.value;
    // The row's own form, as the Save button would send it (its version is the latest board's).
    var body = new URLSearchParams(new FormData(form));
    busy = true;
    showState(msg.saving);
    fetch(cfg.urls.save, {
      method: "POST", body: body, credentials: "same-origin",
      headers: {"HX-Request": "true", "X-CSRFToken": csrf, "Accept": "text/html"},
    }).then(function (resp) {
      return resp.text().then(function (text) { return {ok: resp.ok, text: text}; });
    }).then(function (r) {
      busy = false;
      queue.shift();
      if (!r.ok) { queue = []; showState(msg.failed); return; }
      var tpl = document.createElement("template");
      tpl.innerHTML = r.text.trim();
      var board = tpl.content.querySelector("#board");
      if (board && $("board")) $("board").replaceWith(board);
      afterSwap();
      if (board && board.querySelector("#board-error")) { queue = []; showState(""); return; }
      if (queue.length) pump(); else showState(msg.saved);
    }).catch(function () {
      busy = false;
      queue = [];
      showState(msg.failed);
    });
  }

  function record(value) {
    var el = current && $(current);
    if (!el || !el.querySelector("form")) return;
    queue.push({row: el.id, value: value});
    pump();
    move(1);
  }

  var dialog = $("submit-dialog");
  function openSubmit() {
    var button = $("consensus-submit");
    if (!button) return;
    if (busy || queue.length) { showState(msg.wait); return; }
    if (!dialog || typeof dialog.showModal !== "function") { button.form.requestSubmit(button); return; }
    dialog.returnValue = "";  // an earlier choice must not count again
    dialog.showModal();
    var confirm = $("submit-confirm");
    if (confirm) confirm.focus();
  }
  if (dialog) dialog.addEventListener("close", function () {
    var button = $("consensus-submit");
    if (dialog.returnValue === "submit" && button) button.form.requestSubmit(button);
  });

  function openNext() {
    if (busy || queue.length) { showState(msg.wait); return; }
    if (cfg.urls.next) location.href = cfg.urls.next;
    else showState(msg.none_left);
  }

  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.isComposing) return;
    if (dialog && dialog.open) return;  // the dialog's own keys: Enter submits, Esc cancels
    if ((e.ctrlKey || e.metaKey) && !e.altKey && e.key === "Enter") {
      if (cfg.editable) { e.preventDefault(); openSubmit(); }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    if (t && t.matches("textarea, select, [contenteditable], input:not([type=checkbox]):not([type=radio])")) return;
    var key = e.key;
    if (key === ">") { e.preventDefault(); openNext(); return; }
    if (!cfg.editable) return;
    if (key === "j" || key === "ArrowDown") { e.preventDefault(); move(1); return; }
    if (key === "k" || key === "ArrowUp") { e.preventDefault(); move(-1); return; }
    var el = current && $(current);
    if (!el) return;
    if (key === "[" || key === "]") {
      e.preventDefault();
      var value = el.dataset[key === "[" ? "a" : "b"];
      if (value) record(value);
      return;
    }
    if (key === "Backspace" || key === "Delete") { e.preventDefault(); queue.push({row: el.id, value: ""}); pump(); return; }
    if (el.hasAttribute("data-utterance")) {
      var code = key.length === 1 ? cfg.hotkeys[key.toLowerCase()] : null;
      if (code) { e.preventDefault(); record(code); }
    } else if (el.hasAttribute("data-scale")) {
      var n = parseInt(key, 10);
      if (key.length === 1 && n >= cfg.globalMin && n <= cfg.globalMax) { e.preventDefault(); record(String(n)); }
    }
  });

  document.addEventListener("click", function (e) {
    var row = e.target.closest && e.target.closest("#board tr[data-stop]");
    if (!row) return;
    var old = current && $(current);
    if (old) old.classList.remove("is-current");
    current = row.id;
    row.classList.add("is-current");
  });

  // Start on the first row without a consensus (the agreed ones are filled in already).
  if (cfg.editable) {
    var list = rows();
    var first = list.find(function (el) { return !el.dataset.consensus; }) || list[0];
    if (first) setCurrent(first.id, true);
  }
})();
