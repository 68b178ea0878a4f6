/* Textbook Tutor reader's panel: vanilla JS, no build step, no dependencies.
 *
 *   <script src="https://tutor.example/widget/tutor-widget.js" data-api="https://tutor.example"></script>
 *   TutorWidget.ready.then(() => TutorWidget.mount(element, {api, token, page, storageKey, signInUrl}))
 *
 * This file is the panel: turns streamed from `POST {api}/chat/stream` (server-sent events read from
 * fetch, since the request is a POST with headers), answers with their sources, personalize and
 * translate on answers, selections and the whole page, feedback, and the restored conversation.
 * Companions loaded from the same folder: tutor-markdown.js (answers as safe Markdown) and
 * tutor-drawers.js (the reader's conversations and learner profile). Model output never reaches
 * the page as HTML: every node is built with createElement/textContent.
 */
(function () {
  "use strict";

  var COMPANIONS = ["tutor-markdown.js", "tutor-drawers.js"];
  var RTL = ["ar", "fa", "he", "ur", "ps", "sd", "yi", "ckb", "dv"];
  var BUSY = "Another answer is still being written in this conversation; try again in a moment.";
  var SELECTION_QUESTION = "Explain this passage.";
  // Nastaliq first (how Urdu is read), then Naskh faces, then fonts with Arabic-script coverage that
  // Linux desktops ship (DejaVu Sans: Debian's Chromium drew boxes with a plain serif fallback).
  var URDU_FONTS =
    '"Noto Nastaliq Urdu","Jameel Noori Nastaleeq","Urdu Typesetting","Noto Naskh Arabic",' +
    '"Noto Sans Arabic","DejaVu Sans",serif';
  var CSS =
    ".tw-root{font:14px/1.5 system-ui,sans-serif;color:#1c1e21;background:#fff;border:1px solid #d0d7de;" +
    "border-radius:10px;display:flex;flex-direction:column;max-height:78vh;box-shadow:0 4px 18px rgba(0,0,0,.12)}" +
    ".tw-floating{position:fixed;right:16px;bottom:16px;width:min(420px,calc(100vw - 32px));z-index:2147483000}" +
    ".tw-collapsed{border:0;box-shadow:none;background:none;width:auto}.tw-collapsed>*:not(.tw-launcher){display:none!important}" +
    ".tw-launcher{display:none}.tw-collapsed .tw-launcher{display:block;padding:9px 16px!important;font-size:14px!important;" +
    "background:#1f5fbf!important;color:#fff!important;border-radius:20px!important;box-shadow:0 4px 14px rgba(0,0,0,.2)}" +
    ".tw-head{display:flex;align-items:center;gap:6px;padding:8px 10px;border-bottom:1px solid #eaeef2}" +
    ".tw-root [hidden]{display:none!important}.tw-head{flex-wrap:wrap}" +
    ".tw-head h2{flex:1;margin:0;font-size:15px;white-space:nowrap}.tw-bar{display:flex;flex-wrap:wrap;gap:6px;padding:6px 10px;" +
    "border-bottom:1px solid #eaeef2;background:#fbfcfd}.tw-drawer{padding:8px 10px;border-bottom:1px solid #eaeef2;" +
    "overflow-y:auto;max-height:45vh;background:#fbfcfd}.tw-drawer h3{font-size:13px;margin:0 0 6px}" +
    ".tw-log{overflow-y:auto;padding:8px 10px;flex:1;min-height:80px}" +
    ".tw-log:focus-visible,.tw-root :focus-visible{outline:2px solid #1f5fbf;outline-offset:1px}" +
    ".tw-msg{margin:6px 0;padding:6px 9px;border-radius:8px;word-wrap:break-word;overflow-wrap:anywhere}" +
    ".tw-user{background:#e7f0ff;margin-left:24px;white-space:pre-wrap}.tw-assistant{background:#f6f8fa;margin-right:8px}" +
    ".tw-route{display:block;font-size:11px;color:#57606a;text-transform:uppercase;letter-spacing:.04em}" +
    ".tw-text p{margin:.35em 0}.tw-text ul,.tw-text ol{margin:.35em 0;padding-inline-start:22px}" +
    ".tw-text .tw-h{font-size:14px;margin:.6em 0 .3em}.tw-text blockquote{margin:.4em 0;padding:0 8px;" +
    "border-inline-start:3px solid #d0d7de;color:#424a53}.tw-text code{font:12.5px ui-monospace,SFMono-Regular," +
    "Menlo,Consolas,monospace;background:#eaeef2;padding:0 3px;border-radius:4px}" +
    ".tw-code{position:relative;margin:.5em 0;text-align:left}.tw-code pre{margin:0;padding:8px 10px;background:#1f2328;color:#f0f3f6;" +
    "font:12.5px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;" +
    "border-radius:6px;overflow-x:auto}.tw-code pre code{background:none;padding:0;color:inherit;white-space:pre}" +
    ".tw-root .tw-copy{position:absolute;top:4px;right:4px;font-size:11px;padding:1px 7px;background:#f6f8fa}" +
    ".tw-table{overflow-x:auto}.tw-text table{border-collapse:collapse;margin:.4em 0;font-size:13px}" +
    ".tw-text th,.tw-text td{border:1px solid #d0d7de;padding:3px 6px;text-align:start}.tw-text th{background:#eef1f4}" +
    ".tw-text a,.tw-sources a,.tw-drawer a{color:#0b57c2}.tw-cite{font-size:11px;vertical-align:super;text-decoration:none}" +
    ".tw-msg[lang|=ur] .tw-text,.tw-msg[lang|=ur] .tw-error-message{font-family:" + URDU_FONTS + ";line-height:2.1;font-size:15px}" +
    ".tw-ungrounded{background:#fff8e1;border-inline-start:3px solid #f0b429}" +
    ".tw-note{display:block;font-size:12px;color:#6b5200;margin-top:4px}" +
    ".tw-error{background:#fdecea;border-inline-start:3px solid #d93025;color:#8c1d18}" +
    ".tw-sources{margin:6px 0 0;padding-inline-start:20px;font-size:12px}.tw-sources small{display:block;color:#57606a}" +
    ".tw-actions{display:flex;flex-wrap:wrap;align-items:center;gap:4px;margin-top:6px}" +
    ".tw-actions .tw-given{font-size:12px;color:#1a7f37}.tw-feedback{display:inline-flex;flex-wrap:wrap;" +
    "align-items:center;gap:4px}.tw-comment{display:flex;gap:4px;flex:1 1 100%}" +
    ".tw-comment input{flex:1;font:inherit;font-size:12px;padding:2px 5px}" +
    ".tw-root button[aria-pressed=true]{background:#dafbe1;border-color:#1a7f37}" +
    ".tw-form{display:flex;flex-wrap:wrap;gap:6px;padding:8px 10px;border-top:1px solid #eaeef2}" +
    ".tw-form textarea{flex:1 1 100%;min-height:38px;resize:vertical;font:inherit;padding:5px}" +
    ".tw-root button{font:inherit;font-size:12px;padding:3px 9px;border-radius:6px;border:1px solid #8c959f;" +
    "background:#fff;color:#1c1e21;cursor:pointer}.tw-root button:disabled{opacity:.5;cursor:default}" +
    ".tw-root button.tw-send{background:#1f5fbf;border-color:#1f5fbf;color:#fff}" +
    ".tw-sr{position:absolute!important;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}" +
    ".tw-threads{list-style:none;margin:0;padding:0}.tw-threads li{display:flex;gap:4px;align-items:center;margin:3px 0}" +
    ".tw-threads .tw-open{flex:1;text-align:start;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}" +
    ".tw-threads li[aria-current=true] .tw-open{font-weight:600;border-color:#1f5fbf}" +
    ".tw-profile{display:grid;grid-template-columns:auto 1fr;gap:5px 8px;align-items:center;font-size:12px}" +
    ".tw-profile select,.tw-profile input{font:inherit;font-size:12px}.tw-status{font-size:12px;color:#424a53}";

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function button(className, label, ariaLabel) {
    var node = el("button", className, label);
    node.type = "button";
    if (ariaLabel) node.setAttribute("aria-label", ariaLabel);
    return node;
  }

  function injectStyle() {
    if (document.getElementById("tutor-widget-style")) return;
    var style = el("style", null, CSS);
    style.id = "tutor-widget-style";
    document.head.appendChild(style);
  }

  function isRtl(language) {
    return !!language && RTL.indexOf(String(language).toLowerCase().split(/[-_]/)[0]) !== -1;
  }

  function markdown() {
    return window.TutorMarkdown;
  }

  /* Incremental SSE parsing: feed text chunks, get back complete {event, data} records. */
  function SseParser() {
    this.buffer = "";
  }
  SseParser.prototype.feed = function (chunk) {
    this.buffer += chunk.replace(/\r\n?/g, "\n");
    var events = [];
    var cut;
    while ((cut = this.buffer.indexOf("\n\n")) !== -1) {
      var block = this.buffer.slice(0, cut);
      this.buffer = this.buffer.slice(cut + 2);
      var name = "message";
      var data = [];
      block.split("\n").forEach(function (line) {
        if (!line || line.charAt(0) === ":") return; // keep-alive comments
        var colon = line.indexOf(":");
        var field = colon === -1 ? line : line.slice(0, colon);
        var value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") name = value;
        else if (field === "data") data.push(value);
      });
      if (data.length) events.push({ event: name, data: data.join("\n") });
    }
    return events;
  };

  /* "3 minutes", "5 hours 12 minutes": how long a Retry-After asks a reader to wait. */
  function formatWait(seconds) {
    seconds = Math.max(1, Math.ceil(Number(seconds) || 0));
    function unit(n, word) {
      return n + " " + word + (n === 1 ? "" : "s");
    }
    if (seconds < 60) return unit(seconds, "second");
    var minutes = Math.ceil(seconds / 60);
    if (minutes < 60) return unit(minutes, "minute");
    var hours = Math.floor(minutes / 60);
    return unit(hours, "hour") + (minutes % 60 ? " " + unit(minutes % 60, "minute") : "");
  }

  /* What a reader reads for a failure: {text, action} where action is "profile" or "signin" (a
   * button or link the message offers). `failure` is {status?, code?, message?, details?, retryAfter?}:
   * an HTTP error before the stream, or an `error` event in it. Codes never reach the reader. */
  function describeFailure(failure, signedIn) {
    var status = failure.status;
    var code = failure.code;
    if (code === "profile_required") {
      return {
        text: signedIn
          ? "Tell the tutor a little about yourself first: set up your learner profile, then try again."
          : "Sign in and set up your learner profile to use this.",
        action: signedIn ? "profile" : "signin",
      };
    }
    if (status === 401 || code === "unauthorized") {
      return signedIn
        ? { text: "Your session has expired; please sign in again.", action: "signin" }
        : { text: "Sign in to use this.", action: "signin" };
    }
    if (code === "thread_busy" || status === 409) return { text: BUSY };
    if (status === 429 || code === "quota_exceeded" || code === "rate_limited") {
      var wait = failure.retryAfter ? formatWait(failure.retryAfter) : null;
      if (code === "quota_exceeded") {
        return { text: "You have used today's allowance for this" + (wait ? "; you can do it again in " + wait : "") + "." };
      }
      return { text: "Too many requests" + (wait ? "; try again in " + wait : "; try again shortly") + "." };
    }
    if (code === "server_busy") {
      var busyWait = failure.retryAfter ? formatWait(failure.retryAfter) : null;
      return { text: "The tutor is answering many questions right now; please ask again" + (busyWait ? " in " + busyWait : " shortly") + "." };
    }
    if (status === 404) return { text: "This conversation is no longer available; a new one will start." };
    if (status === 413) return { text: "That is too much text to send at once." };
    if (status === 422 && failure.details && failure.details.length) {
      var detail = failure.details[0];
      var field = (detail.loc || []).slice(-1)[0];
      if (detail.type === "string_too_long" && field === "message") return { text: "Your question is too long (8,000 characters at most)." };
      if (detail.type === "string_too_long" && field === "selected_text") return { text: "The selected text is too long." };
      return { text: "The request is not valid" + (field ? " (" + field + ")" : "") + ": " + (detail.msg || "") };
    }
    if (failure.message) return { text: failure.message };
    return { text: status ? "The tutor could not answer (HTTP " + status + ")." : "The tutor could not answer." };
  }

  /* A failed HTTP response as a `failure` (see describeFailure). */
  function failureOf(response) {
    return response
      .json()
      .catch(function () {
        return null;
      })
      .then(function (json) {
        var error = (json && json.error) || {};
        return {
          status: response.status,
          code: error.code,
          message: error.message,
          details: error.details,
          retryAfter: response.headers.get("Retry-After"),
        };
      });
  }

  function Widget(root, options) {
    options = options || {};
    this.api = String(options.api || window.location.origin).replace(/\/+$/, "");
    this.options = options;
    this.storageKey = options.storageKey || "tutor-widget:thread:" + this.api;
    this.controller = null;
    this.selection = "";
    this.root = root;
    this.build(options.floating);
    this.restore();
  }

  /* The bearer token now: a string, or a function the host site's auth answers (called per request). */
  Widget.prototype.token = function () {
    var token = this.options.token;
    if (typeof token === "function") token = token();
    return token || null;
  };

  Widget.prototype.signedIn = function () {
    return !!this.token();
  };

  Widget.prototype.setToken = function (token) {
    this.options.token = token;
    this.refreshSignedIn();
  };

  /* The page's doc path: `page` (a string or a function, for single-page sites), else the URL path. */
  Widget.prototype.page = function () {
    var page = this.options.page;
    if (typeof page === "function") page = page();
    return page || window.location.pathname;
  };

  /* fetch against the API with the reader's token; resolves to the Response. */
  Widget.prototype.request = function (method, path, body, signal) {
    var headers = { Accept: "application/json" };
    var token = this.token();
    if (token) headers.Authorization = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(this.api + path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: signal,
    });
  };

  Widget.prototype.build = function (floating) {
    var self = this;
    injectStyle();
    var root = this.root;
    var id = "tw" + TutorWidget.instances.length;
    root.classList.add("tw-root");
    root.setAttribute("role", "complementary");
    root.setAttribute("aria-label", "Textbook tutor");
    if (floating) root.classList.add("tw-floating");

    this.launcher = button("tw-launcher", "Ask the book");
    this.launcher.setAttribute("aria-expanded", "true");
    var head = el("div", "tw-head");
    var title = el("h2", null, "Ask the book");
    title.id = id + "-title";
    this.threadsButton = button("tw-threads-toggle", "Conversations");
    this.profileButton = button("tw-profile-toggle", "Profile");
    this.newButton = button("tw-new", "New conversation");
    this.closeButton = button("tw-close", "–", "Minimize the tutor");
    [title, this.threadsButton, this.profileButton, this.newButton].forEach(function (n) {
      head.appendChild(n);
    });
    if (floating) head.appendChild(this.closeButton);

    // The whole page, personalized or in Urdu: the two actions the book's chapters lead with.
    var pageBar = el("div", "tw-bar tw-page-actions");
    pageBar.setAttribute("role", "group");
    pageBar.setAttribute("aria-label", "This chapter");
    this.personalizePageButton = button("tw-personalize-page", "Personalize this chapter");
    this.translatePageButton = button("tw-translate-page", "Read in Urdu");
    pageBar.appendChild(this.personalizePageButton);
    pageBar.appendChild(this.translatePageButton);

    this.drawer = el("div", "tw-drawer");
    this.drawer.hidden = true;
    this.drawer.id = id + "-drawer";

    this.log = el("div", "tw-log");
    this.log.setAttribute("role", "region");
    this.log.setAttribute("aria-label", "Conversation");
    this.log.tabIndex = 0; // scrollable: reachable by keyboard
    // Screen readers hear each finished answer once, not every streamed token.
    this.live = el("div", "tw-sr");
    this.live.setAttribute("role", "status");
    this.live.setAttribute("aria-live", "polite");

    var selectionBar = el("div", "tw-bar tw-selection-actions");
    selectionBar.setAttribute("role", "group");
    selectionBar.setAttribute("aria-label", "Selected text");
    this.selectionButton = button("tw-ask-selection", "Ask about selection");
    this.explainSelectionButton = button("tw-explain-selection", "Explain for me", "Explain the selection for me");
    this.translateSelectionButton = button("tw-translate-selection", "Translate", "Translate the selection");
    this.selectionButtons = [this.selectionButton, this.explainSelectionButton, this.translateSelectionButton];
    this.selectionButtons.forEach(function (n) {
      n.disabled = true;
      selectionBar.appendChild(n);
      // Keep the page's selection when the button is pressed (no focus change on mousedown).
      n.addEventListener("mousedown", function (event) {
        event.preventDefault();
      });
    });

    var form = el("form", "tw-form");
    form.setAttribute("aria-label", "Ask a question");
    this.input = el("textarea", "tw-input");
    this.input.placeholder = "Ask a question about the book…";
    this.input.setAttribute("aria-label", "Your question");
    this.sendButton = el("button", "tw-send", "Send");
    this.sendButton.type = "submit";
    this.stopButton = button("tw-stop", "Stop", "Stop the answer");
    this.stopButton.disabled = true;
    [this.input, this.sendButton, this.stopButton].forEach(function (n) {
      form.appendChild(n);
    });
    [this.launcher, head, pageBar, this.drawer, this.log, this.live, selectionBar, form].forEach(function (n) {
      root.appendChild(n);
    });

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var message = self.input.value.trim();
      if (message) self.ask(message);
    });
    this.input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit"));
      }
    });
    root.addEventListener("keydown", function (event) {
      if (event.key !== "Escape") return;
      if (self.controller) self.abort();
      else if (!self.drawer.hidden) self.closeDrawer();
    });
    this.selectionButton.addEventListener("click", function () {
      if (!self.selection) return;
      self.ask(self.input.value.trim() || SELECTION_QUESTION, { selected_text: self.selection, mode: "auto" });
    });
    this.explainSelectionButton.addEventListener("click", function () {
      if (self.selection) self.ask("Explain the selected text for me.", { selected_text: self.selection, mode: "personalize" });
    });
    this.translateSelectionButton.addEventListener("click", function () {
      if (!self.selection) return;
      var target = self.translationTarget();
      self.ask("Translate the selected text.", { selected_text: self.selection, mode: "translate", target_language: target });
    });
    this.personalizePageButton.addEventListener("click", function () {
      self.personalizePage();
    });
    this.translatePageButton.addEventListener("click", function () {
      self.translatePage("ur");
    });
    this.stopButton.addEventListener("click", function () {
      self.abort();
    });
    this.newButton.addEventListener("click", function () {
      self.newConversation();
    });
    this.threadsButton.addEventListener("click", function () {
      self.toggleDrawer("threads");
    });
    this.profileButton.addEventListener("click", function () {
      self.toggleDrawer("profile");
    });
    this.closeButton.addEventListener("click", function () {
      self.setOpen(false);
    });
    this.launcher.addEventListener("click", function () {
      self.setOpen(true);
    });
    [this.threadsButton, this.profileButton].forEach(function (n) {
      n.setAttribute("aria-expanded", "false");
      n.setAttribute("aria-controls", self.drawer.id);
    });
    document.addEventListener("selectionchange", function () {
      if (!self.controller) self.readSelection();
    });
    this.refreshSignedIn();
  };

  /* Conversations and the profile are a signed-in reader's: the buttons show only then. */
  Widget.prototype.refreshSignedIn = function () {
    var signedIn = this.signedIn();
    this.threadsButton.hidden = !signedIn;
    this.profileButton.hidden = !signedIn;
  };

  Widget.prototype.setOpen = function (open) {
    this.root.classList.toggle("tw-collapsed", !open);
    this.launcher.setAttribute("aria-expanded", String(open));
    (open ? this.input : this.launcher).focus();
  };

  Widget.prototype.toggleDrawer = function (name) {
    if (!this.drawer.hidden && this.drawerName === name) return this.closeDrawer();
    var drawers = TutorWidget.drawers;
    if (!drawers) return;
    this.drawerName = name;
    this.drawer.textContent = "";
    this.drawer.hidden = false;
    this.threadsButton.setAttribute("aria-expanded", String(name === "threads"));
    this.profileButton.setAttribute("aria-expanded", String(name === "profile"));
    return drawers[name](this, this.drawer);
  };

  Widget.prototype.closeDrawer = function () {
    var opener = this.drawerName === "profile" ? this.profileButton : this.threadsButton;
    this.drawer.hidden = true;
    this.drawer.textContent = "";
    this.drawerName = null;
    this.threadsButton.setAttribute("aria-expanded", "false");
    this.profileButton.setAttribute("aria-expanded", "false");
    if (!opener.hidden) opener.focus();
  };

  /* The page's selected text (a selection inside the widget itself is left alone). */
  Widget.prototype.readSelection = function () {
    var selection = window.getSelection();
    var text = selection ? selection.toString().trim() : "";
    if (text && selection.anchorNode && this.root.contains(selection.anchorNode)) return;
    this.selection = text;
    this.selectionButtons.forEach(function (n) {
      n.disabled = !text;
    });
  };

  Widget.prototype.translationTarget = function () {
    return this.options.language || (this.profile && this.profile.preferred_language) || "ur";
  };

  Widget.prototype.threadId = function () {
    try {
      return window.localStorage.getItem(this.storageKey);
    } catch (e) {
      return this.memoryThread || null;
    }
  };

  Widget.prototype.setThread = function (threadId) {
    this.memoryThread = threadId; // storage disabled: the conversation lasts as long as the page
    try {
      if (threadId) window.localStorage.setItem(this.storageKey, threadId);
      else window.localStorage.removeItem(this.storageKey);
    } catch (e) {
      /* see above */
    }
  };

  Widget.prototype.newConversation = function () {
    this.abort();
    this.setThread(null);
    this.log.textContent = "";
  };

  /* Show a kept conversation: its turns as they were streamed, sources included. A thread that
   * is gone (404) is forgotten quietly; a network failure leaves it for the next turn. */
  Widget.prototype.restore = function (threadId) {
    var self = this;
    var thread = threadId || this.threadId();
    if (!thread) return Promise.resolve();
    return this.request("GET", "/threads/" + encodeURIComponent(thread))
      .then(function (response) {
        if (response.status === 404 || response.status === 400) {
          if (self.threadId() === thread) self.setThread(null);
          return;
        }
        if (!response.ok) return;
        return response.json().then(function (detail) {
          if (self.threadId() !== thread) return;
          var fragment = document.createDocumentFragment();
          var log = self.log;
          self.log = fragment; // views append here; the whole history lands at once
          detail.messages.forEach(function (message) {
            if (message.role === "user") fragment.appendChild(el("div", "tw-msg tw-user", message.content));
            else self.answerView({ restored: true }).done({
              answer: message.content, sources: message.sources, grounded: message.grounded,
              language: message.language, route: message.route, seq: message.seq, thread_id: thread,
            });
          });
          self.log = log;
          log.insertBefore(fragment, log.firstChild);
          log.scrollTop = log.scrollHeight;
        });
      })
      .catch(function () {
        /* offline: nothing to show yet */
      });
  };

  Widget.prototype.abort = function () {
    if (this.controller) this.controller.abort();
  };

  Widget.prototype.setBusy = function (busy) {
    this.sendButton.disabled = busy;
    this.stopButton.disabled = !busy;
    this.personalizePageButton.disabled = busy;
    this.translatePageButton.disabled = busy;
    this.root.setAttribute("aria-busy", String(busy));
    if (busy) {
      this.selectionButtons.forEach(function (n) {
        n.disabled = true;
      });
    } else this.readSelection();
  };

  /* The whole chapter, adapted to the reader's profile, streamed as a conversation of its own. */
  Widget.prototype.personalizePage = function () {
    return this.ask("Personalize this chapter for me.", { mode: "personalize" }, { fresh: true });
  };

  Widget.prototype.translatePage = function (language) {
    language = language || this.translationTarget();
    var label = language === "ur" ? "Urdu" : language;
    return this.ask("Translate this chapter into " + label + ".", { mode: "translate", target_language: language }, { fresh: true });
  };

  /* One turn: `extra` may carry selected_text, mode, target_language, content. With `fresh` the
   * turn starts its own conversation (a chapter rewrite takes the page as its subject only on a
   * thread without earlier answers), which replaces the panel's once the server has accepted it. */
  Widget.prototype.ask = function (message, extra, options) {
    var self = this;
    if (this.controller) return Promise.resolve();
    options = options || {};
    var body = { message: message, mode: "auto", page: this.page() };
    Object.keys(extra || {}).forEach(function (key) {
      body[key] = extra[key];
    });
    var thread = options.fresh ? null : this.threadId();
    if (thread) body.thread_id = thread;

    if (!options.keepInput) this.input.value = "";
    var question = el("div", "tw-msg tw-user", message);
    this.log.appendChild(question);
    var view = this.answerView({ language: body.mode === "translate" ? body.target_language : null });
    var controller = (this.controller = new AbortController());
    this.setBusy(true);
    var headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
    var token = this.token();
    if (token) headers.Authorization = "Bearer " + token;
    return fetch(this.api + "/chat/stream", {
      method: "POST",
      headers: headers,
      body: JSON.stringify(body),
      signal: controller.signal,
    })
      .then(function (response) {
        if (!response.ok) {
          return failureOf(response).then(function (failure) {
            if (response.status === 404 && thread) self.setThread(null);
            view.fail(failure);
          });
        }
        return self.readStream(response, view, !!options.fresh, function (threadId) {
          if (options.fresh) {
            // The server took the new conversation: the panel now shows it alone.
            Array.prototype.slice.call(self.log.childNodes).forEach(function (node) {
              if (node !== question && node !== view.element) self.log.removeChild(node);
            });
          }
          self.setThread(threadId);
        });
      })
      .catch(function (error) {
        if (error && error.name === "AbortError") view.fail({ message: "Stopped." }, "aborted");
        else view.fail({ message: "Could not reach the tutor. Check your connection and try again." });
      })
      .then(function () {
        self.controller = null;
        self.setBusy(false);
      });
  };

  /* `deferThread`: adopt the server's thread only once the turn produces something (a fresh
   * conversation that fails at once leaves the panel's conversation as it was). */
  Widget.prototype.readStream = function (response, view, deferThread, onThread) {
    var self = this;
    var pendingThread = null;
    function adopt() {
      if (pendingThread) onThread(pendingThread);
      pendingThread = null;
    }
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var parser = new SseParser();
    var finished = false;
    function handle(record) {
      var data;
      try {
        data = JSON.parse(record.data);
      } catch (e) {
        return;
      }
      if (record.event === "metadata") {
        pendingThread = data.thread_id || null;
        if (!deferThread) adopt();
        view.route(data.route);
      } else if (record.event === "token") {
        adopt();
        view.append(data.delta || "");
      } else if (record.event === "sources") {
        adopt();
        view.sources(data.sources);
      } else if (record.event === "done") {
        adopt();
        finished = true;
        view.done(data);
        self.announce(data.answer);
        self.trackSeq(view, data.thread_id);
      } else if (record.event === "error") {
        finished = true;
        view.fail({ code: data.code, message: data.message });
      }
    }
    function pump() {
      return reader.read().then(function (result) {
        if (result.done) {
          parser.feed(decoder.decode() + "\n\n").forEach(handle);
          if (!finished) view.fail({ message: "The answer was interrupted; please try again." });
          return;
        }
        parser.feed(decoder.decode(result.value, { stream: true })).forEach(handle);
        return pump();
      });
    }
    return pump();
  };

  Widget.prototype.announce = function (text) {
    this.live.textContent = "";
    var live = this.live;
    // A fresh text node after a tick, so the same answer twice is still announced.
    window.setTimeout(function () {
      live.textContent = "The tutor answered: " + (text || "");
    }, 50);
  };

  /* Feedback rates a message by its seq, which `done` does not carry: read it from the thread. */
  Widget.prototype.trackSeq = function (view, threadId) {
    if (!this.signedIn() || !threadId) return;
    this.request("GET", "/threads/" + encodeURIComponent(threadId))
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (detail) {
        var answers = ((detail && detail.messages) || []).filter(function (m) {
          return m.role === "assistant";
        });
        if (answers.length) view.enableFeedback(threadId, answers[answers.length - 1].seq);
      })
      .catch(function () {});
  };

  Widget.prototype.sendFeedback = function (threadId, seq, rating, comment) {
    var body = { seq: seq, rating: rating };
    if (comment) body.comment = comment;
    return this.request("POST", "/threads/" + encodeURIComponent(threadId) + "/feedback", body);
  };

  /* The assistant's message element and how each event changes it. */
  Widget.prototype.answerView = function (setup) {
    var self = this;
    var log = this.log;
    var box = el("div", "tw-msg tw-assistant");
    box.setAttribute("data-state", "streaming");
    var route = el("span", "tw-route");
    var text = el("div", "tw-text");
    var list = el("ol", "tw-sources");
    list.setAttribute("aria-label", "Sources");
    var actions = el("div", "tw-actions");
    box.appendChild(route);
    box.appendChild(text);
    log.appendChild(box);
    var raw = "";
    var known = [];
    var pending = false;
    function setLanguage(language) {
      if (!language) return;
      box.setAttribute("lang", language);
      if (isRtl(language)) box.setAttribute("dir", "rtl");
      else box.removeAttribute("dir");
    }
    setLanguage(setup && setup.language);
    function scroll() {
      if (log.scrollHeight != null) log.scrollTop = log.scrollHeight;
    }
    function render() {
      pending = false;
      var renderer = markdown();
      if (!renderer) {
        text.textContent = raw;
        return;
      }
      // Built off-page, swapped in one step: no flicker while a streamed answer re-renders.
      text.replaceChildren(renderer.render(raw, { sources: known }));
      scroll();
    }
    var view = {
      element: box,
      route: function (name) {
        route.textContent = name || "";
        box.setAttribute("data-route", name || "");
      },
      append: function (delta) {
        raw += delta;
        if (!pending) {
          pending = true;
          window.requestAnimationFrame(render);
        }
      },
      sources: function (sources) {
        known = sources || [];
        list.textContent = "";
        known.forEach(function (source, index) {
          var item = el("li");
          var label = source.title || "Source";
          if (source.heading && source.heading !== source.title) label += " › " + source.heading;
          var href = window.TutorMarkdown ? window.TutorMarkdown.safeHref(source.url) : null;
          var link = el(href ? "a" : "span", null, label);
          if (href) {
            link.href = href;
            link.target = "_blank";
            link.rel = "noopener noreferrer";
            link.setAttribute("aria-label", "Source " + (index + 1) + ": " + label);
          }
          item.appendChild(link);
          if (source.quote) {
            link.title = source.quote;
            item.appendChild(el("small", null, "“" + source.quote + "”"));
          }
          list.appendChild(item);
        });
        if (list.childNodes.length && !list.parentNode) box.insertBefore(list, actions.parentNode ? actions : null);
        render();
      },
      done: function (result) {
        raw = result.answer || "";
        if (result.route) view.route(result.route);
        view.sources(result.sources);
        setLanguage(result.language);
        if (result.grounded === false) {
          box.classList.add("tw-ungrounded");
          box.appendChild(el("span", "tw-note", "Not covered by the book"));
        }
        box.setAttribute("data-state", "done");
        view.answer = raw;
        self.answerActions(view, actions, result);
        box.appendChild(actions);
        if (result.seq != null && result.thread_id) view.enableFeedback(result.thread_id, result.seq);
        scroll();
      },
      enableFeedback: function (threadId, seq) {
        if (!self.signedIn() || actions.querySelector(".tw-feedback")) return;
        box.setAttribute("data-seq", String(seq));
        actions.appendChild(self.feedbackControls(threadId, seq));
      },
      fail: function (failure, state) {
        var described = describeFailure(failure, self.signedIn());
        box.classList.add("tw-error");
        var message = el("div", "tw-error-message", described.text);
        // The panel's own sentence, not the answer's language: nothing streamed → no RTL box.
        message.setAttribute("lang", "en");
        message.setAttribute("dir", "ltr");
        if (!raw) {
          box.removeAttribute("dir");
          box.removeAttribute("lang");
        }
        box.appendChild(message);
        if (described.action === "profile" && TutorWidget.drawers) {
          var setUp = button("tw-set-profile", "Set up your profile");
          setUp.addEventListener("click", function () {
            if (self.drawerName !== "profile") self.toggleDrawer("profile");
          });
          box.appendChild(setUp);
        } else if (described.action === "signin" && self.options.signInUrl) {
          var signIn = el("a", "tw-sign-in", "Sign in");
          signIn.href = self.options.signInUrl;
          box.appendChild(signIn);
        }
        box.setAttribute("data-state", state || "error");
        self.live.textContent = described.text;
        scroll();
      },
    };
    return view;
  };

  /* Under an answer: explain it for me, read it in Urdu. */
  Widget.prototype.answerActions = function (view, actions, result) {
    var self = this;
    if (!result.answer || result.grounded === false) return;
    var explain = button("tw-explain-answer", "Explain for me", "Explain this answer for me");
    var urdu = button("tw-urdu-answer", "اردو", "Translate this answer into Urdu");
    urdu.setAttribute("lang", "ur");
    explain.addEventListener("click", function () {
      self.ask("Explain this answer for me.", { mode: "personalize", content: view.answer });
    });
    urdu.addEventListener("click", function () {
      self.ask("Translate this answer into Urdu.", { mode: "translate", content: view.answer, target_language: "ur" });
    });
    actions.appendChild(explain);
    actions.appendChild(urdu);
  };

  /* Thumbs up/down and an optional comment; shown as given once the server has it. */
  Widget.prototype.feedbackControls = function (threadId, seq) {
    var self = this;
    var group = el("span", "tw-feedback");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "Rate this answer");
    // Words, not emoji: a system without an emoji font draws empty boxes.
    var up = button("tw-up", "Helpful");
    var down = button("tw-down", "Not helpful");
    var status = el("span", "tw-given");
    status.setAttribute("role", "status");
    var comment = el("span", "tw-comment");
    comment.hidden = true;
    var field = el("input");
    field.type = "text";
    field.maxLength = 2000;
    field.setAttribute("aria-label", "Comment on this answer (optional)");
    field.placeholder = "What was good or missing? (optional)";
    var sendComment = button("tw-send-comment", "Send comment");
    comment.appendChild(field);
    comment.appendChild(sendComment);
    var rating = null;
    function rate(value, text) {
      rating = value;
      self.sendFeedback(threadId, seq, value, text).then(
        function (response) {
          if (!response.ok) {
            return failureOf(response).then(function (failure) {
              status.textContent = describeFailure(failure, self.signedIn()).text;
            });
          }
          up.setAttribute("aria-pressed", String(value === "up"));
          down.setAttribute("aria-pressed", String(value === "down"));
          status.textContent = text ? "Thanks, comment sent." : "Thanks for the feedback.";
          if (!text) comment.hidden = false;
          else comment.hidden = true;
        },
        function () {
          status.textContent = "Could not send the feedback; try again.";
        }
      );
    }
    up.setAttribute("aria-pressed", "false");
    down.setAttribute("aria-pressed", "false");
    up.addEventListener("click", function () {
      rate("up");
    });
    down.addEventListener("click", function () {
      rate("down");
    });
    function submitComment() {
      var text = field.value.trim();
      if (text && rating) rate(rating, text);
    }
    sendComment.addEventListener("click", submitComment);
    field.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        submitComment();
      }
    });
    group.appendChild(up);
    group.appendChild(down);
    group.appendChild(status);
    group.appendChild(comment);
    return group;
  };

  function mount(element, options) {
    if (typeof element === "string") element = document.querySelector(element);
    if (!element) throw new Error("TutorWidget.mount: no element");
    var widget = new Widget(element, options);
    TutorWidget.instances.push(widget);
    return widget;
  }

  var TutorWidget = (window.TutorWidget = window.TutorWidget || { instances: [] });
  TutorWidget.mount = mount;
  TutorWidget.SseParser = SseParser;
  TutorWidget.describeFailure = describeFailure;
  TutorWidget.formatWait = formatWait;
  TutorWidget.helpers = { el: el, button: button, failureOf: failureOf, describeFailure: describeFailure };

  /* The companions, loaded from this script's folder unless the page already has them. */
  var script = document.currentScript;
  var base = script && script.src ? new URL(".", script.src).href : "";
  TutorWidget.ready = Promise.all(
    COMPANIONS.map(function (file) {
      var present = file === "tutor-markdown.js" ? window.TutorMarkdown : TutorWidget.drawers;
      if (present || !base) return Promise.resolve();
      return new Promise(function (resolve) {
        var tag = document.createElement("script");
        tag.src = base + file;
        tag.onload = tag.onerror = function () {
          resolve(); // a missing companion degrades (plain text, no drawers); it never blocks the panel
        };
        document.head.appendChild(tag);
      });
    })
  );

  /* Auto-mount from the script tag (data-api, data-token, data-page, data-target, data-auto="false"). */
  if (script && script.getAttribute("data-auto") !== "false") {
    var data = script.dataset;
    var api = data.api || new URL(script.src, window.location.href).origin;
    var start = function () {
      var target = data.target && document.querySelector(data.target);
      var root = target || document.body.appendChild(document.createElement("div"));
      mount(root, { api: api, token: data.token, page: data.page, floating: !target, signInUrl: data.signIn });
    };
    TutorWidget.ready.then(function () {
      if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
      else start();
    });
  }
})();
