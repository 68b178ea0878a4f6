/* Textbook Tutor chat widget: vanilla JS, no build step, no dependencies.
 *
 *   <script src="https://tutor.example/widget/tutor-widget.js" data-api="https://tutor.example"></script>
 *   TutorWidget.mount(element, {api, token, page, storageKey})
 *
 * Streams answers from `POST {api}/chat/stream` (server-sent events read from fetch, since the
 * request is a POST with headers). Model output only ever reaches the page through textContent.
 */
(function () {
  "use strict";

  var RTL = ["ar", "fa", "he", "ur", "ps", "sd", "yi", "ckb", "dv"];
  var BUSY = "Another answer is still being written in this conversation; try again in a moment.";
  var SELECTION_QUESTION = "Explain this passage.";
  var CSS =
    ".tw-root{font:14px/1.45 system-ui,sans-serif;color:#1c1e21;background:#fff;border:1px solid #d0d7de;" +
    "border-radius:10px;display:flex;flex-direction:column;max-height:70vh;box-shadow:0 4px 18px rgba(0,0,0,.12)}" +
    ".tw-floating{position:fixed;right:16px;bottom:16px;width:min(380px,calc(100vw - 32px));z-index:2147483000}" +
    ".tw-head{display:flex;align-items:center;gap:8px;padding:8px 10px;border-bottom:1px solid #eaeef2;font-weight:600}" +
    ".tw-head span{flex:1}.tw-log{overflow-y:auto;padding:8px 10px;flex:1;min-height:60px}" +
    ".tw-msg{margin:6px 0;padding:6px 9px;border-radius:8px;white-space:pre-wrap;word-wrap:break-word}" +
    ".tw-user{background:#e7f0ff;margin-left:24px}.tw-assistant{background:#f6f8fa;margin-right:12px}" +
    ".tw-route{display:block;font-size:11px;color:#6a737d;text-transform:uppercase;letter-spacing:.04em}" +
    ".tw-ungrounded{background:#fff8e1;border-left:3px solid #f0b429}" +
    ".tw-note{display:block;font-size:12px;color:#8a6d00;margin-top:4px}" +
    ".tw-error{background:#fdecea;border-left:3px solid #d93025;color:#8c1d18}" +
    ".tw-sources{margin:6px 0 0;padding-left:20px;font-size:12px;white-space:normal}" +
    ".tw-sources small{display:block;color:#6a737d}" +
    ".tw-form{display:flex;flex-wrap:wrap;gap:6px;padding:8px 10px;border-top:1px solid #eaeef2}" +
    ".tw-form textarea{flex:1 1 100%;min-height:38px;resize:vertical;font:inherit;padding:5px}" +
    ".tw-root button{font:inherit;font-size:12px;padding:3px 9px;border-radius:6px;border:1px solid #c7ced6;" +
    "background:#fff;cursor:pointer}.tw-root button:disabled{opacity:.45;cursor:default}" +
    ".tw-root button.tw-send{background:#2e6fd8;border-color:#2e6fd8;color:#fff}";

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
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

  function safeHref(url) {
    try {
      var parsed = new URL(url, window.location.href);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (e) {
      return null;
    }
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

  /* A readable message for a failed request (never a stack trace). */
  function describeError(status, body) {
    var error = (body && body.error) || {};
    if (status === 409) return BUSY;
    if (status === 401) return "Your session has expired; please sign in again.";
    if (status === 404) return "This conversation is no longer available; a new one will start.";
    if (status === 413) return "That is too much text to send at once.";
    if (status === 422 && error.details && error.details.length) {
      var detail = error.details[0];
      var field = (detail.loc || []).slice(-1)[0];
      if (detail.type === "string_too_long" && field === "message") return "Your question is too long (8,000 characters at most).";
      if (detail.type === "string_too_long" && field === "selected_text") return "The selected text is too long.";
      return "The request is not valid: " + (field ? field + ": " : "") + (detail.msg || "");
    }
    if (status === 429) return error.message || "Too many requests; try again later.";
    return error.message || "The tutor could not answer (HTTP " + status + ").";
  }

  function Widget(root, options) {
    options = options || {};
    this.api = String(options.api || window.location.origin).replace(/\/+$/, "");
    this.token = options.token || null;
    this.page = options.page || null;
    this.storageKey = options.storageKey || "tutor-widget:thread:" + this.api;
    this.controller = null;
    this.selection = "";
    this.root = root;
    this.build(options.floating);
  }

  Widget.prototype.build = function (floating) {
    var self = this;
    injectStyle();
    var root = this.root;
    root.classList.add("tw-root");
    if (floating) root.classList.add("tw-floating");
    var head = el("div", "tw-head");
    head.appendChild(el("span", null, "Ask the book"));
    this.newButton = el("button", "tw-new", "New conversation");
    this.newButton.type = "button";
    head.appendChild(this.newButton);
    this.log = el("div", "tw-log");
    this.log.setAttribute("aria-live", "polite");
    var form = el("form", "tw-form");
    this.input = el("textarea", "tw-input");
    this.input.placeholder = "Ask a question about the book…";
    this.input.setAttribute("aria-label", "Your question");
    this.sendButton = el("button", "tw-send", "Send");
    this.sendButton.type = "submit";
    this.selectionButton = el("button", "tw-ask-selection", "Ask about selection");
    this.selectionButton.type = "button";
    this.selectionButton.disabled = true;
    this.stopButton = el("button", "tw-stop", "Stop");
    this.stopButton.type = "button";
    this.stopButton.disabled = true;
    [this.input, this.sendButton, this.selectionButton, this.stopButton].forEach(function (n) {
      form.appendChild(n);
    });
    root.appendChild(head);
    root.appendChild(this.log);
    root.appendChild(form);

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
    // Keep the page's selection when the button is pressed (no focus change on mousedown).
    this.selectionButton.addEventListener("mousedown", function (event) {
      event.preventDefault();
    });
    this.selectionButton.addEventListener("click", function () {
      if (!self.selection) return;
      self.ask(self.input.value.trim() || SELECTION_QUESTION, { selected_text: self.selection, mode: "auto" });
    });
    this.stopButton.addEventListener("click", function () {
      self.abort();
    });
    this.newButton.addEventListener("click", function () {
      self.newConversation();
    });
    document.addEventListener("selectionchange", function () {
      if (!self.controller) self.readSelection();
    });
  };

  /* The page's selected text (a selection inside the widget itself is left alone). */
  Widget.prototype.readSelection = function () {
    var selection = window.getSelection();
    var text = selection ? selection.toString().trim() : "";
    if (text && selection.anchorNode && this.root.contains(selection.anchorNode)) return;
    this.selection = text;
    this.selectionButton.disabled = !text;
  };

  Widget.prototype.threadId = function () {
    try {
      return window.localStorage.getItem(this.storageKey);
    } catch (e) {
      return null;
    }
  };

  Widget.prototype.setThread = function (threadId) {
    try {
      if (threadId) window.localStorage.setItem(this.storageKey, threadId);
      else window.localStorage.removeItem(this.storageKey);
    } catch (e) {
      /* storage disabled: the conversation lasts as long as the page */
    }
  };

  Widget.prototype.newConversation = function () {
    this.abort();
    this.setThread(null);
    this.log.textContent = "";
  };

  Widget.prototype.abort = function () {
    if (this.controller) this.controller.abort();
  };

  Widget.prototype.setBusy = function (busy) {
    this.sendButton.disabled = busy;
    this.stopButton.disabled = !busy;
    if (busy) this.selectionButton.disabled = true;
    else this.readSelection();
  };

  /* One turn: `extra` may carry selected_text, mode, target_language, content. */
  Widget.prototype.ask = function (message, extra) {
    var self = this;
    if (this.controller) return Promise.resolve();
    var body = { message: message, mode: "auto", page: this.page || window.location.pathname };
    Object.keys(extra || {}).forEach(function (key) {
      body[key] = extra[key];
    });
    var thread = this.threadId();
    if (thread) body.thread_id = thread;
    var headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
    if (this.token) headers.Authorization = "Bearer " + this.token;

    this.input.value = "";
    this.log.appendChild(el("div", "tw-msg tw-user", message));
    var view = this.answerView();
    var controller = (this.controller = new AbortController());
    this.setBusy(true);
    return fetch(this.api + "/chat/stream", {
      method: "POST",
      headers: headers,
      body: JSON.stringify(body),
      signal: controller.signal,
    })
      .then(function (response) {
        if (!response.ok) {
          return response
            .json()
            .catch(function () {
              return null;
            })
            .then(function (json) {
              if (response.status === 404) self.setThread(null);
              view.fail(describeError(response.status, json));
            });
        }
        return self.readStream(response, view);
      })
      .catch(function (error) {
        if (error && error.name === "AbortError") view.fail("Stopped.", "aborted");
        else view.fail("Could not reach the tutor. Check your connection and try again.");
      })
      .then(function () {
        self.controller = null;
        self.setBusy(false);
      });
  };

  Widget.prototype.readStream = function (response, view) {
    var self = this;
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
        if (data.thread_id) self.setThread(data.thread_id);
        view.route(data.route);
      } else if (record.event === "token") {
        view.append(data.delta || "");
      } else if (record.event === "sources") {
        view.sources(data.sources);
      } else if (record.event === "done") {
        finished = true;
        view.done(data);
      } else if (record.event === "error") {
        finished = true;
        view.fail(data.code === "thread_busy" ? BUSY : data.message || "The tutor could not answer.");
      }
    }
    function pump() {
      return reader.read().then(function (result) {
        if (result.done) {
          parser.feed(decoder.decode() + "\n\n").forEach(handle);
          if (!finished) view.fail("The answer was interrupted; please try again.");
          return;
        }
        parser.feed(decoder.decode(result.value, { stream: true })).forEach(handle);
        return pump();
      });
    }
    return pump();
  };

  /* The assistant's message element and how each event changes it. */
  Widget.prototype.answerView = function () {
    var log = this.log;
    var box = el("div", "tw-msg tw-assistant");
    box.setAttribute("data-state", "streaming");
    var route = el("span", "tw-route");
    var text = el("div", "tw-text");
    var list = el("ol", "tw-sources");
    box.appendChild(route);
    box.appendChild(text);
    log.appendChild(box);
    function scroll() {
      log.scrollTop = log.scrollHeight;
    }
    return {
      element: box,
      route: function (name) {
        route.textContent = name || "";
        box.setAttribute("data-route", name || "");
      },
      append: function (delta) {
        text.textContent += delta;
        scroll();
      },
      sources: function (sources) {
        list.textContent = "";
        (sources || []).forEach(function (source) {
          var item = el("li");
          var label = source.title || "Source";
          if (source.heading && source.heading !== source.title) label += " › " + source.heading;
          var href = safeHref(source.url);
          var link = el(href ? "a" : "span", null, label);
          if (href) {
            link.href = href;
            link.target = "_blank";
            link.rel = "noopener noreferrer";
          }
          if (source.quote) {
            link.title = source.quote;
            item.appendChild(link);
            item.appendChild(el("small", null, "“" + source.quote + "”"));
          } else {
            item.appendChild(link);
          }
          list.appendChild(item);
        });
        if (list.childNodes.length && !list.parentNode) box.appendChild(list);
        scroll();
      },
      done: function (result) {
        text.textContent = result.answer || "";
        if (result.route) this.route(result.route);
        this.sources(result.sources);
        if (isRtl(result.language)) box.setAttribute("dir", "rtl");
        if (result.language) box.setAttribute("lang", result.language);
        if (result.grounded === false) {
          box.classList.add("tw-ungrounded");
          box.appendChild(el("span", "tw-note", "Not covered by the book"));
        }
        box.setAttribute("data-state", "done");
        scroll();
      },
      fail: function (message, state) {
        box.classList.add("tw-error");
        box.appendChild(el("div", "tw-error-message", message));
        box.setAttribute("data-state", state || "error");
        scroll();
      },
    };
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

  /* Auto-mount from the script tag (data-api, data-token, data-page, data-target, data-auto="false"). */
  var script = document.currentScript;
  if (script && script.getAttribute("data-auto") !== "false") {
    var data = script.dataset;
    var api = data.api || new URL(script.src, window.location.href).origin;
    var start = function () {
      var target = data.target && document.querySelector(data.target);
      var root = target || document.body.appendChild(document.createElement("div"));
      mount(root, { api: api, token: data.token, page: data.page, floating: !target });
    };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
    else start();
  }
})();
