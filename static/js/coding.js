/* MITI coding page: keyboard-first coding that never loses work.
 *
 * Every change is an operation in a per-tab queue that is mirrored to localStorage before it is sent,
 * and sent one at a time (each POST carries the version the previous answer returned, so a tab never
 * conflicts with itself). The server answers with the changed part of the page (HTMX conventions:
 * HX-Request header, out-of-band swaps by id) and the new version in X-Assignment-Version.
 *   - network error, timeout, 5xx: the operation stays queued, is shown as pending and retried;
 *   - 409 (changed in another tab/device, or submitted): never retried blindly — the queue stops and
 *     the page says so; after a reload the coder chooses to apply or discard what was not saved;
 *   - a reload with a queue that is still based on the current version just flushes it.
 * The page works without this file: every button is a plain form that posts and redirects back.
 */
(function () {
  "use strict";

  var dataEl = document.getElementById("coding-data");
  if (!dataEl) return;
  var cfg = JSON.parse(dataEl.textContent);
  var msg = cfg.messages;
  var csrf = (function () {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; }
    catch (e) { return ""; }
  })();

  var state = {
    version: cfg.version,
    current: null,       // id of the focused stop (utterance row or global scale)
    busy: false,         // a request is in flight
    blocked: false,      // a 409 stopped the queue until reload
    retryDelay: 1000,
    retryTimer: null,
    savedOnce: false,
  };
  var queue = [];        // operations not yet confirmed by the server, oldest first
  var stale = [];        // operations from before a conflict, waiting for the coder's decision

  // ---------------------------------------------------------------------------------------------
  // Storage: one entry per assignment and tab, so two tabs never overwrite each other's queue.
  // ---------------------------------------------------------------------------------------------
  var PREFIX = "mi-coding-queue:" + cfg.assignment + ":";
  var tabId = (function () {
    try {
      var id = sessionStorage.getItem("mi-coding-tab");
      if (!id) {
        id = Math.random().toString(36).slice(2) + Date.now().toString(36);
        sessionStorage.setItem("mi-coding-tab", id);
      }
      return id;
    } catch (e) { return "tab"; }
  })();
  var KEY = PREFIX + tabId;
  // An entry not refreshed for this long belongs to a closed tab. Browsers slow timers in hidden tabs
  // to about one a minute, so anything shorter could take over the queue of a tab that is still open.
  var ORPHAN_AFTER_MS = 3 * 60 * 1000;

  function readEntry(key) {
    try { return JSON.parse(localStorage.getItem(key) || "null"); } catch (e) { return null; }
  }
  function persist(closing) {
    try {
      if (!queue.length && !stale.length) localStorage.removeItem(KEY);
      else localStorage.setItem(KEY, JSON.stringify(
        {version: state.version, ops: queue, stale: stale, seen: Date.now(), closed: !!closing}));
    } catch (e) { /* storage full or disabled: the queue still lives in memory */ }
  }
  setInterval(function () { if (queue.length || stale.length) persist(); }, 5000);
  // A tab that goes away marks its leftovers, so the next page for this assignment takes them over
  // at once (a reload of this same tab finds them under its own key anyway).
  window.addEventListener("pagehide", function () { if (queue.length || stale.length) persist(true); });

  // ---------------------------------------------------------------------------------------------
  // DOM helpers
  // ---------------------------------------------------------------------------------------------
  function $(id) { return document.getElementById(id); }
  function stops() { return Array.prototype.slice.call(document.querySelectorAll("[data-stop]")); }
  function targetId(op) {
    if (op.kind === "code" || op.kind === "clear") return "u-" + op.utterance;
    if (op.kind === "global") return "g-" + op.scale;
    return null;
  }
  function opValue(op) { return op.kind === "code" ? op.code : op.kind === "global" ? String(op.value) : ""; }
  function confirmedValue(el) { return el.hasAttribute("data-utterance") ? el.dataset.code || "" : el.dataset.value || ""; }

  /* Show an utterance/scale with its latest queued value (dashed = not saved yet) or the saved one. */
  function renderTarget(el) {
    if (!el) return;
    var pending = null;
    for (var i = queue.length - 1; i >= 0; i--) {
      if (targetId(queue[i]) === el.id) { pending = queue[i]; break; }
    }
    var value = pending ? opValue(pending) : confirmedValue(el);
    var buttons = el.querySelectorAll("button.cb, button.rb");
    for (var j = 0; j < buttons.length; j++) {
      var on = buttons[j].value === value && value !== "";
      buttons[j].setAttribute("aria-pressed", on ? "true" : "false");
      buttons[j].classList.toggle("is-pending", on && !!pending);
    }
    el.classList.toggle(el.hasAttribute("data-utterance") ? "is-coded" : "is-rated", value !== "");
  }
  function renderPending() {
    queue.forEach(function (op) { var id = targetId(op); if (id) renderTarget($(id)); });
  }

  function setCurrent(id, scroll) {
    var old = state.current && $(state.current);
    if (old) old.classList.remove("is-current");
    var el = id && $(id);
    if (!el) { state.current = null; return; }
    state.current = id;
    el.classList.add("is-current");
    if (!el.contains(document.activeElement)) el.focus({preventScroll: true});
    if (scroll) {
      var r = el.getBoundingClientRect();
      var top = 70;  // the sticky header
      if (r.top < top || r.bottom > window.innerHeight - 20) el.scrollIntoView({block: "center"});
    }
  }
  function move(delta) {
    var list = stops();
    if (!list.length) return;
    var i = list.findIndex(function (el) { return el.id === state.current; });
    var next = i < 0 ? 0 : Math.min(Math.max(i + delta, 0), list.length - 1);
    setCurrent(list[next].id, true);
  }

  /* Replace every element of the answer that has an id (the changed part and out-of-band swaps). */
  function swap(html) {
    var tpl = document.createElement("template");
    tpl.innerHTML = html;
    Array.prototype.slice.call(tpl.content.children).forEach(function (el) {
      if (!el.id) return;
      var old = $(el.id);
      if (!old) return;
      el.removeAttribute("hx-swap-oob");
      old.replaceWith(el);
    });
    if (state.current) {
      var cur = $(state.current);
      if (cur) {
        cur.classList.add("is-current");
        if (!document.activeElement || document.activeElement === document.body) cur.focus({preventScroll: true});
      }
    }
    renderPending();
  }

  function fmt(text, n) { return text.replace("%(n)s", n); }
  function showState(kind, text) {
    var el = $("save-state");
    if (!el) return;
    el.className = "save-state is-" + kind;
    el.textContent = text;
  }
  function showAlert(html) {
    // Server answers are the #coding-alert partial itself; an empty string just clears the box.
    if (html) { swap(html); return; }
    var box = $("coding-alert");
    if (box) box.innerHTML = "";
  }
  function textAlert(text, actions) {
    var box = $("coding-alert");
    if (!box) return;
    box.innerHTML = "";
    var div = document.createElement("div");
    div.className = "alert alert-error";
    div.textContent = text + " ";
    (actions || []).forEach(function (a) {
      var b = document.createElement(a.href ? "a" : "button");
      b.textContent = a.label;
      if (a.href) b.href = a.href; else { b.type = "button"; b.addEventListener("click", a.onClick); }
      if (a.id) b.id = a.id;
      div.appendChild(b);
    });
    box.appendChild(div);
  }

  // ---------------------------------------------------------------------------------------------
  // Sending
  // ---------------------------------------------------------------------------------------------
  function enqueue(op) {
    op.id = Date.now().toString(36) + Math.random().toString(36).slice(2, 6);
    queue.push(op);
    persist();  // first to storage, then to the network: a reload or crash cannot lose it
    var id = targetId(op);
    if (id) renderTarget($(id));
    pump();
  }

  function send(op) {
    var body = new URLSearchParams();
    body.set("version", String(state.version));
    var url = cfg.urls[op.kind];
    if (op.kind === "code") { body.set("utterance", op.utterance); body.set("code", op.code); if (op.accept) body.set("accept", "1"); }
    else if (op.kind === "clear") { body.set("utterance", op.utterance); }
    else if (op.kind === "global") { body.set("scale", op.scale); body.set("value", op.value === "" ? "" : String(op.value)); }
    var ctrl = new AbortController();
    var timer = setTimeout(function () { ctrl.abort(); }, 15000);
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      signal: ctrl.signal,
      headers: {"HX-Request": "true", "X-CSRFToken": csrf, "Accept": "text/html"},
    }).finally(function () { clearTimeout(timer); });
  }

  function scheduleRetry(text) {
    showState("failed", fmt(text, queue.length));
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(pump, state.retryDelay);
    state.retryDelay = Math.min(state.retryDelay * 2, 8000);
  }

  function pump() {
    if (state.busy || state.blocked || !queue.length) return;
    state.busy = true;
    clearTimeout(state.retryTimer);
    showState("saving", msg.saving);
    var op = queue[0];
    send(op).then(function (resp) {
      var version = resp.headers.get("X-Assignment-Version");
      return resp.text().then(function (text) { return {resp: resp, version: version, text: text}; });
    }).then(function (r) {
      state.busy = false;
      var status = r.resp.status;
      if (status === 200 && r.version !== null) {
        queue.shift();
        state.version = parseInt(r.version, 10);
        state.retryDelay = 1000;
        persist();
        var target = r.resp.headers.get("X-Coding-Target");
        swap(r.text);
        if (op.kind === "undo" && target && $(target)) setCurrent(target, true);
        if (queue.length) { pump(); return; }
        state.savedOnce = true;
        showState("saved", msg.saved);
        var box = $("coding-alert");
        if (box && box.dataset.transient) { box.innerHTML = ""; delete box.dataset.transient; }
      } else if (status === 409) {
        // Changed elsewhere or submitted: never overwrite, never retry blindly.
        state.blocked = true;
        persist();
        showAlert(r.text);
        showState("conflict", msg.conflict);
      } else if (status === 400) {
        queue.shift();
        persist();
        showAlert(r.text);
        var box2 = $("coding-alert");
        if (box2) box2.dataset.transient = "1";
        var id = targetId(op);
        if (id) renderTarget($(id));
        showState("failed", "");
        pump();
      } else if (status >= 500 || status === 429 || status === 408) {
        scheduleRetry(msg.pending);
      } else {
        // 401/403, or a login page after the session ended: keep everything and try again later.
        scheduleRetry(msg.session);
      }
    }).catch(function () {
      state.busy = false;
      scheduleRetry(msg.offline);
    });
  }
  window.addEventListener("online", function () { state.retryDelay = 1000; pump(); });

  // ---------------------------------------------------------------------------------------------
  // Restoring what a previous load (or a closed tab) left unsaved
  // ---------------------------------------------------------------------------------------------
  function stillDiffers(op) {
    var id = targetId(op);
    if (!id) return true;  // an undo cannot be compared: let the coder decide
    var el = $(id);
    return !!el && confirmedValue(el) !== opValue(op);
  }
  function restore() {
    var entries = [];
    var own = readEntry(KEY);
    if (own) entries.push({key: KEY, entry: own});
    try {
      for (var i = 0; i < localStorage.length; i++) {
        var key = localStorage.key(i);
        if (key && key.indexOf(PREFIX) === 0 && key !== KEY) {
          var entry = readEntry(key);
          if (entry && (entry.closed || Date.now() - (entry.seen || 0) > ORPHAN_AFTER_MS)) {
            entries.push({key: key, entry: entry});
          }
        }
      }
    } catch (e) { /* no storage */ }
    entries.forEach(function (item) {
      var e = item.entry;
      if (cfg.editable && e.version === cfg.version) queue = queue.concat(e.ops || []);
      else stale = stale.concat(e.ops || []);
      stale = stale.concat(e.stale || []);
      if (item.key !== KEY) { try { localStorage.removeItem(item.key); } catch (err) { /* ignore */ } }
    });
    stale = stale.filter(stillDiffers);
    persist();
    renderPending();
    if (stale.length) askAboutStale();
    if (queue.length) pump();
  }
  function askAboutStale() {
    var actions = [{label: msg.discard, id: "discard-stale", onClick: function () {
      stale = []; persist(); showAlert("");
    }}];
    if (cfg.editable) {
      actions.unshift({label: msg.apply, id: "apply-stale", onClick: function () {
        queue = queue.concat(stale); stale = []; persist(); showAlert(""); renderPending(); pump();
      }});
    }
    textAlert(fmt(cfg.editable ? msg.stale_queue : msg.readonly + " (" + stale.length + ")", stale.length), actions);
  }

  // ---------------------------------------------------------------------------------------------
  // Input: keys, clicks, forms
  // ---------------------------------------------------------------------------------------------
  var advanceBox = $("auto-advance");
  try {
    if (advanceBox && localStorage.getItem("mi-coding-advance") === "0") advanceBox.checked = false;
  } catch (e) { /* ignore */ }
  if (advanceBox) advanceBox.addEventListener("change", function () {
    try { localStorage.setItem("mi-coding-advance", advanceBox.checked ? "1" : "0"); } catch (e) { /* ignore */ }
  });
  function autoAdvance() { return !advanceBox || advanceBox.checked; }

  function toggleHints(event) {
    var panel = $("hints-panel");
    if (!panel) return;
    if (event) event.preventDefault();
    panel.hidden = !panel.hidden;
    var toggle = $("hints-toggle");
    if (toggle) toggle.setAttribute("aria-expanded", panel.hidden ? "false" : "true");
  }
  var hintsToggle = $("hints-toggle");
  if (hintsToggle) hintsToggle.addEventListener("click", toggleHints);

  function undo() {
    // A change still waiting in this tab is simply dropped; a saved one is undone on the server.
    var sendable = queue.length - (state.busy ? 1 : 0);
    if (sendable > 0 && queue[queue.length - 1].kind !== "undo") {
      var op = queue.pop();
      persist();
      var id = targetId(op);
      if (id) { renderTarget($(id)); setCurrent(id, true); }
      if (!queue.length && !state.busy) showState("saved", msg.saved);
      return;
    }
    enqueue({kind: "undo"});
  }

  /* Submit (Ctrl+Enter): a confirm dialog, Enter submits and Esc cancels; the form itself checks that
   * every change is saved, and the server that everything is coded. */
  var submitDialog = $("submit-dialog");
  function openSubmit() {
    var button = $("submit-button");
    if (!button) return;
    if (!submitDialog || typeof submitDialog.showModal !== "function") { button.form.requestSubmit(button); return; }
    submitDialog.returnValue = "";  // an earlier choice must not count again
    submitDialog.showModal();
    var confirm = $("submit-confirm");
    if (confirm) confirm.focus();
  }
  if (submitDialog) submitDialog.addEventListener("close", function () {
    if (submitDialog.returnValue !== "submit") return;
    var button = $("submit-button");
    if (button) button.form.requestSubmit(button);
  });

  /* Next transcript (>): the next pending or in-progress one in the coder's queue, after every change
   * here is saved. */
  function openNext() {
    if (queue.length || state.busy || stale.length) { textAlert(msg.wait_next); pump(); return; }
    if (cfg.urls.next) location.href = cfg.urls.next;
    else textAlert(msg.queue_empty);
  }

  function codeCurrent(code) {
    var el = state.current && $(state.current);
    if (!el || !el.hasAttribute("data-utterance")) return false;
    enqueue({kind: "code", utterance: parseInt(el.dataset.utterance, 10), code: code});
    return true;
  }

  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.isComposing) return;
    if (submitDialog && submitDialog.open) return;  // the dialog's own keys: Enter submits, Esc cancels
    if ((e.ctrlKey || e.metaKey) && !e.altKey && e.key === "Enter") {
      if (cfg.editable && !state.blocked) { e.preventDefault(); openSubmit(); }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    if (t && (t.matches("textarea, select, [contenteditable], input:not([type=checkbox]):not([type=radio])"))) return;
    var key = e.key;
    if (key === "?") { toggleHints(e); return; }
    if (key === ">") { e.preventDefault(); openNext(); return; }
    if (key === "j" || key === "ArrowDown") { e.preventDefault(); move(1); return; }
    if (key === "k" || key === "ArrowUp") { e.preventDefault(); move(-1); return; }
    if (!cfg.editable || state.blocked) return;
    if (key === "u") { e.preventDefault(); undo(); return; }
    var el = state.current && $(state.current);
    if (!el) return;
    if (el.hasAttribute("data-utterance")) {
      var code = key.length === 1 ? cfg.hotkeys[key.toLowerCase()] : null;
      if (key === "Enter" && el.dataset.suggestion) {
        // Assisted rounds: take the machine's suggested code as it is (recorded as accepted).
        e.preventDefault();
        enqueue({kind: "code", utterance: parseInt(el.dataset.utterance, 10), code: el.dataset.suggestion, accept: true});
        if (autoAdvance()) move(1);
      } else if (code) {
        e.preventDefault();
        codeCurrent(code);
        if (autoAdvance()) move(1);
      } else if (key === "Backspace" || key === "Delete") {
        e.preventDefault();
        enqueue({kind: "clear", utterance: parseInt(el.dataset.utterance, 10)});
      }
    } else if (el.hasAttribute("data-scale")) {
      var n = parseInt(key, 10);
      if (key.length === 1 && n >= cfg.globalMin && n <= cfg.globalMax) {
        e.preventDefault();
        enqueue({kind: "global", scale: el.dataset.scale, value: n});
        if (autoAdvance() && el.nextElementSibling && el.nextElementSibling.hasAttribute("data-stop")) move(1);
      } else if (key === "Backspace" || key === "Delete") {
        e.preventDefault();
        enqueue({kind: "global", scale: el.dataset.scale, value: ""});
      }
    }
  });

  document.addEventListener("click", function (e) {
    var stop = e.target.closest && e.target.closest("[data-stop]");
    if (stop) setCurrent(stop.id, false);
  });

  document.addEventListener("submit", function (e) {
    var form = e.target;
    var kind = form.dataset && form.dataset.coding;
    if (!kind) return;
    if (kind === "submit") {
      if (queue.length || state.busy || stale.length) {
        e.preventDefault();
        textAlert(msg.wait_submit);
        pump();
        return;
      }
      form.querySelector("input[name=version]").value = String(state.version);
      return;  // a normal POST: the server checks completeness and redirects to the read-only page
    }
    e.preventDefault();
    if (state.blocked) return;
    var button = e.submitter;
    if (kind === "undo") { undo(); return; }
    if (!button) return;
    if (kind === "code") {
      var row = form.closest("[data-stop]");
      if (row) setCurrent(row.id, false);
      enqueue({kind: "code", utterance: parseInt(form.querySelector("input[name=utterance]").value, 10), code: button.value, accept: button.dataset.accept === "1"});
    } else if (kind === "global") {
      var scale = form.querySelector("input[name=scale]").value;
      setCurrent("g-" + scale, false);
      enqueue({kind: "global", scale: scale, value: parseInt(button.value, 10)});
    }
  });

  // ---------------------------------------------------------------------------------------------
  // Start: restore unsaved work, then focus where the coder left off.
  // ---------------------------------------------------------------------------------------------
  restore();
  var start = null;
  if (location.hash && $(location.hash.slice(1)) && $(location.hash.slice(1)).hasAttribute("data-stop")) {
    start = location.hash.slice(1);
  } else {
    var list = stops();
    var firstOpen = list.find(function (el) { return confirmedValue(el) === "" && !queue.some(function (op) { return targetId(op) === el.id; }); });
    start = (firstOpen || list[0] || {}).id || null;
  }
  if (start) setCurrent(start, !!location.hash || start !== (stops()[0] || {}).id);
  // A read-only page offers the next transcript: focused, so Enter opens it (j/k still move).
  var nextCta = !cfg.editable && !location.hash && $("next-cta");
  if (nextCta) nextCta.focus();
})();
