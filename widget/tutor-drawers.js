/* Textbook Tutor reader's panel: the signed-in reader's drawers. No dependencies, no build step.
 *
 *   TutorWidget.drawers.threads(widget, container)  — GET /threads: reopen, rename (PATCH), delete
 *   TutorWidget.drawers.profile(widget, container)  — GET/PUT /profile, the form built from the
 *                                                     server's own schema (/openapi.json)
 *
 * Loaded by tutor-widget.js from its folder. Thread titles are text from the server (often written
 * by the model), so they too only ever reach the page through textContent.
 */
(function () {
  "use strict";

  var TutorWidget = (window.TutorWidget = window.TutorWidget || { instances: [] });

  function helpers() {
    return TutorWidget.helpers;
  }

  function heading(container, text, id) {
    var h = helpers().el("h3", null, text);
    h.id = id;
    container.appendChild(h);
    container.setAttribute("role", "region");
    container.setAttribute("aria-labelledby", id);
    return h;
  }

  function statusLine(container) {
    var status = helpers().el("p", "tw-status");
    status.setAttribute("role", "status");
    container.appendChild(status);
    return status;
  }

  function explain(widget, response, status) {
    return helpers()
      .failureOf(response)
      .then(function (failure) {
        status.textContent = helpers().describeFailure(failure, widget.signedIn()).text;
      });
  }

  /* ---- Conversations ---------------------------------------------------------------------- */

  function threads(widget, container) {
    var h = helpers();
    heading(container, "Your conversations", container.id + "-heading");
    var status = statusLine(container);
    status.textContent = "Loading…";
    var list = h.el("ul", "tw-threads");
    container.appendChild(list);
    return widget
      .request("GET", "/threads?limit=50")
      .then(function (response) {
        if (!response.ok) return explain(widget, response, status);
        return response.json().then(function (rows) {
          status.textContent = rows.length ? "" : "No conversations yet.";
          rows.forEach(function (row) {
            list.appendChild(threadRow(widget, row, status));
          });
          var first = list.querySelector("button");
          if (first) first.focus();
        });
      })
      .catch(function () {
        status.textContent = "Could not reach the tutor. Check your connection and try again.";
      });
  }

  function threadTitle(row) {
    return row.title || "Untitled conversation";
  }

  function threadRow(widget, row, status) {
    var h = helpers();
    var item = h.el("li");
    item.setAttribute("data-thread", row.thread_id);
    if (row.thread_id === widget.threadId()) item.setAttribute("aria-current", "true");
    var when = new Date(row.updated_at);
    var open = h.button("tw-open", threadTitle(row));
    open.title = threadTitle(row) + " — " + when.toLocaleString();
    var rename = h.button("tw-rename", "Rename", "Rename “" + threadTitle(row) + "”");
    var remove = h.button("tw-delete", "Delete", "Delete “" + threadTitle(row) + "”");
    item.appendChild(open);
    item.appendChild(rename);
    item.appendChild(remove);
    var path = "/threads/" + encodeURIComponent(row.thread_id);

    open.addEventListener("click", function () {
      widget.abort();
      widget.setThread(row.thread_id);
      widget.log.textContent = "";
      widget.closeDrawer();
      widget.restore(row.thread_id).then(function () {
        widget.input.focus();
      });
    });
    rename.addEventListener("click", function () {
      var field = h.el("input", "tw-title");
      field.type = "text";
      field.maxLength = 200;
      field.value = row.title || "";
      field.setAttribute("aria-label", "New title");
      var save = h.button("tw-save-title", "Save");
      item.replaceChildren(field, save);
      field.focus();
      field.select();
      function restoreRow() {
        item.replaceChildren(open, rename, remove);
        rename.focus();
      }
      function submit() {
        var title = field.value.trim();
        if (!title) return restoreRow();
        widget.request("PATCH", path, { title: title }).then(function (response) {
          if (!response.ok) return explain(widget, response, status).then(restoreRow);
          row.title = title;
          open.textContent = title;
          rename.setAttribute("aria-label", "Rename “" + title + "”");
          remove.setAttribute("aria-label", "Delete “" + title + "”");
          status.textContent = "Renamed to “" + title + "”.";
          restoreRow();
        });
      }
      save.addEventListener("click", submit);
      field.addEventListener("keydown", function (event) {
        if (event.key === "Enter") {
          event.preventDefault();
          submit();
        } else if (event.key === "Escape") {
          event.stopPropagation();
          restoreRow();
        }
      });
    });
    remove.addEventListener("click", function () {
      widget.request("DELETE", path).then(function (response) {
        if (!response.ok && response.status !== 404) return explain(widget, response, status);
        if (row.thread_id === widget.threadId()) widget.newConversation();
        var next = item.nextElementSibling || item.previousElementSibling;
        item.parentNode.removeChild(item);
        status.textContent = "Deleted “" + threadTitle(row) + "”.";
        if (next) next.querySelector("button").focus();
      });
    });
    return item;
  }

  /* ---- Learner profile -------------------------------------------------------------------- */

  var schemaCache = {};

  /* The profile's fields and their allowed values, read from the server's OpenAPI schema, so a
   * value added to core/profile.py shows up here without touching the widget. */
  function profileFields(widget) {
    if (!schemaCache[widget.api]) {
      schemaCache[widget.api] = widget.request("GET", "/openapi.json").then(function (response) {
        if (!response.ok) throw new Error("no schema");
        return response.json().then(function (openapi) {
          var schemas = openapi.components.schemas;
          var profile = schemas.LearnerProfile;
          return Object.keys(profile.properties).map(function (name) {
            var property = profile.properties[name];
            var choice = (property.anyOf || [property]).filter(function (option) {
              return option.type !== "null";
            })[0];
            if (choice.$ref) choice = schemas[choice.$ref.split("/").pop()];
            return { name: name, values: choice.enum || null, description: property.description || "" };
          });
        });
      });
      schemaCache[widget.api].catch(function () {
        delete schemaCache[widget.api];
      });
    }
    return schemaCache[widget.api];
  }

  function humanize(value) {
    var text = String(value)
      .replace(/^(\d+)_(\d+)(h?)$/, "$1–$2$3")
      .replace(/_/g, " ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function profile(widget, container) {
    var h = helpers();
    heading(container, "Your learner profile", container.id + "-heading");
    var intro = h.el("p", "tw-status", "The tutor uses it to explain things for you. Every field is optional.");
    container.appendChild(intro);
    var form = h.el("form", "tw-profile");
    form.setAttribute("aria-labelledby", container.id + "-heading");
    container.appendChild(form);
    var status = statusLine(container);
    status.textContent = "Loading…";
    return Promise.all([profileFields(widget), widget.request("GET", "/profile")])
      .then(function (loaded) {
        var fields = loaded[0];
        var response = loaded[1];
        if (!response.ok) return explain(widget, response, status);
        return response.json().then(function (stored) {
          widget.profile = stored;
          var controls = {};
          fields.forEach(function (field) {
            var id = container.id + "-" + field.name;
            var label = h.el("label", null, humanize(field.name));
            label.htmlFor = id;
            var control;
            if (field.values) {
              control = h.el("select");
              control.appendChild(new Option("Not set", ""));
              field.values.forEach(function (value) {
                control.appendChild(new Option(humanize(value), value));
              });
            } else {
              control = h.el("input");
              control.type = "text";
              control.placeholder = "e.g. ur, en";
            }
            control.id = id;
            control.name = field.name;
            control.value = stored[field.name] || "";
            if (field.description) control.title = field.description;
            controls[field.name] = control;
            form.appendChild(label);
            form.appendChild(control);
          });
          var save = h.el("button", "tw-save-profile", "Save profile");
          save.type = "submit";
          form.appendChild(save);
          status.textContent = "";
          var first = form.querySelector("select,input");
          if (first) first.focus();
          form.addEventListener("submit", function (event) {
            event.preventDefault();
            var body = {};
            Object.keys(controls).forEach(function (name) {
              var value = controls[name].value.trim();
              if (value) body[name] = value;
            });
            status.textContent = "Saving…";
            widget.request("PUT", "/profile", body).then(function (saved) {
              if (!saved.ok) return explain(widget, saved, status);
              return saved.json().then(function (value) {
                widget.profile = value;
                status.textContent = "Profile saved.";
              });
            });
          });
        });
      })
      .catch(function () {
        status.textContent = "Could not load the profile form. Check your connection and try again.";
      });
  }

  TutorWidget.drawers = { threads: threads, profile: profile };
})();
