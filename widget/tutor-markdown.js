/* Textbook Tutor: a small, safe Markdown renderer for model output. No dependencies, no build step.
 *
 *   TutorMarkdown.render(text, {sources, copyLabel}) -> DocumentFragment
 *
 * Safety: the text is never parsed as HTML. Every node is made with createElement and every piece
 * of text set with textContent, so `<img onerror=…>` in an answer is shown as those characters.
 * Links keep only http(s) targets; anything else (javascript:, data:, …) renders as plain text.
 * Supported: paragraphs, headings, lists (nested by indentation), block quotes, rules, tables,
 * fenced code (``` or ~~~; an unterminated fence runs to the end, which is what a streaming answer
 * looks like mid-block) with a copy button, inline code, **strong**, *emphasis*, [links](https://…),
 * bare https:// links, and citation markers [n] linked to source n.
 */
(function () {
  "use strict";

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function safeHref(url) {
    try {
      var parsed = new URL(url, window.location.href);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (e) {
      return null;
    }
  }

  function link(href, label) {
    var a = el("a");
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    if (label != null) a.textContent = label;
    return a;
  }

  /* Inline spans, earliest match first. Each rule: a regex and how to turn its match into nodes. */
  var INLINE = [
    { re: /`([^`\n]+)`/, make: function (m) { return el("code", null, m[1]); } },
    {
      // The target may hold one level of parentheses, as Wikipedia-style URLs do.
      re: /\[([^\]\n]+)\]\(((?:[^()\s]|\([^()\s]*\))+)(?:\s+"[^"\n]*")?\)/,
      make: function (m, ctx) {
        var href = safeHref(m[2]);
        if (!href) return document.createTextNode(m[1]); // javascript: and friends: text only
        var a = link(href);
        inline(m[1], a, ctx);
        return a;
      },
    },
    {
      re: /\[(\d{1,3})\]/,
      make: function (m, ctx) {
        var n = Number(m[1]);
        var source = ctx.sources && ctx.sources[n - 1];
        var href = source && safeHref(source.url);
        if (!href) return document.createTextNode(m[0]);
        var a = link(href, "[" + n + "]");
        a.className = "tw-cite";
        a.setAttribute("data-source", String(n));
        a.setAttribute("aria-label", "Source " + n + ": " + (source.title || "source"));
        if (source.quote) a.title = source.quote;
        return a;
      },
    },
    { re: /https?:\/\/[^\s<>()\[\]]+[^\s<>()\[\].,;:!?'"]/, make: function (m) { return link(m[0], m[0]); } },
    // Underscores never emphasise inside a word (snake_case, __dunder__ names stay as typed).
    { re: /\*\*(?=\S)([^\n]*?\S)\*\*|(?<!\w)__(?=\S)([^\n]*?\S)__(?!\w)/, make: wrap("strong") },
    { re: /\*(?=[^\s*])([^*\n]*?[^\s*])\*|(?<!\w)_(?=[^\s_])([^_\n]*?[^\s_])_(?!\w)/, make: wrap("em") },
  ];

  function wrap(tag) {
    return function (m, ctx) {
      var node = el(tag);
      inline(m[1] != null ? m[1] : m[2], node, ctx);
      return node;
    };
  }

  function inline(text, parent, ctx) {
    while (text) {
      var best = null;
      for (var i = 0; i < INLINE.length; i++) {
        var m = INLINE[i].re.exec(text);
        if (m && (!best || m.index < best.m.index)) best = { m: m, rule: INLINE[i] };
      }
      if (!best) {
        parent.appendChild(document.createTextNode(text));
        return;
      }
      if (best.m.index) parent.appendChild(document.createTextNode(text.slice(0, best.m.index)));
      parent.appendChild(best.rule.make(best.m, ctx));
      text = text.slice(best.m.index + best.m[0].length);
    }
  }

  function codeBlock(lines, language, ctx) {
    var wrapper = el("div", "tw-code");
    wrapper.setAttribute("dir", "ltr"); // code reads left to right even inside an Urdu answer
    var pre = el("pre");
    var code = el("code", null, lines.join("\n"));
    if (language) code.setAttribute("data-language", language);
    pre.appendChild(code);
    var copy = el("button", "tw-copy", ctx.copyLabel || "Copy");
    copy.type = "button";
    copy.setAttribute("aria-label", "Copy code");
    copy.addEventListener("click", function () {
      copyText(code.textContent).then(
        function () { copy.textContent = "Copied"; },
        function () { copy.textContent = "Copy failed"; }
      );
    });
    wrapper.appendChild(copy);
    wrapper.appendChild(pre);
    return wrapper;
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    return new Promise(function (resolve, reject) {
      var area = el("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var ok = document.execCommand && document.execCommand("copy");
      document.body.removeChild(area);
      (ok ? resolve : reject)();
    });
  }

  function splitRow(line) {
    var row = line.trim().replace(/^\|/, "").replace(/\|$/, "");
    return row.split(/(?<!\\)\|/).map(function (cell) { return cell.trim().replace(/\\\|/g, "|"); });
  }

  var FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
  var HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
  var RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
  var ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
  var TABLE_SEP = /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/;

  function isBlockStart(line, next) {
    return (
      FENCE.test(line) || HEADING.test(line) || RULE.test(line) || ITEM.test(line) ||
      /^\s*>/.test(line) || (line.indexOf("|") !== -1 && next != null && TABLE_SEP.test(next))
    );
  }

  /* Block structure, line by line. */
  function blocks(lines, parent, ctx) {
    var i = 0;
    while (i < lines.length) {
      var line = lines[i];
      var m;
      if (!line.trim()) {
        i++;
      } else if ((m = FENCE.exec(line))) {
        var fence = m[1];
        var body = [];
        i++;
        while (i < lines.length && lines[i].trim().indexOf(fence) !== 0) body.push(lines[i++]);
        i++; // the closing fence (or past the end, for an unterminated one)
        parent.appendChild(codeBlock(body, m[2], ctx));
      } else if ((m = HEADING.exec(line))) {
        // Answers live inside a panel: their headings start below the panel's own levels.
        var heading = el("h" + Math.min(6, m[1].length + 2), "tw-h");
        inline(m[2], heading, ctx);
        parent.appendChild(heading);
        i++;
      } else if (RULE.test(line)) {
        parent.appendChild(el("hr"));
        i++;
      } else if (/^\s*>/.test(line)) {
        var quoted = [];
        while (i < lines.length && /^\s*>/.test(lines[i])) quoted.push(lines[i++].replace(/^\s*>\s?/, ""));
        var quote = el("blockquote");
        blocks(quoted, quote, ctx);
        parent.appendChild(quote);
      } else if (line.indexOf("|") !== -1 && i + 1 < lines.length && TABLE_SEP.test(lines[i + 1])) {
        i = table(lines, i, parent, ctx);
      } else if (ITEM.test(line)) {
        i = list(lines, i, parent, ctx);
      } else {
        var para = [];
        while (i < lines.length && lines[i].trim() && !(para.length && isBlockStart(lines[i], lines[i + 1]))) {
          para.push(lines[i++].trim());
        }
        var p = el("p");
        inline(para.join("\n"), p, ctx);
        parent.appendChild(p);
      }
    }
  }

  function table(lines, i, parent, ctx) {
    var wrapper = el("div", "tw-table");
    var tableNode = el("table");
    var head = el("thead");
    var headRow = el("tr");
    splitRow(lines[i]).forEach(function (cell) {
      var th = el("th");
      th.setAttribute("scope", "col");
      inline(cell, th, ctx);
      headRow.appendChild(th);
    });
    head.appendChild(headRow);
    tableNode.appendChild(head);
    var bodyNode = el("tbody");
    i += 2;
    while (i < lines.length && lines[i].trim() && lines[i].indexOf("|") !== -1) {
      var row = el("tr");
      splitRow(lines[i++]).forEach(function (cell) {
        var td = el("td");
        inline(cell, td, ctx);
        row.appendChild(td);
      });
      bodyNode.appendChild(row);
    }
    tableNode.appendChild(bodyNode);
    wrapper.appendChild(tableNode);
    parent.appendChild(wrapper);
    return i;
  }

  /* A list and, through indentation, the lists nested in its items. */
  function list(lines, i, parent, ctx) {
    var first = ITEM.exec(lines[i]);
    var indent = first[1].length;
    var ordered = /\d/.test(first[2]);
    var listNode = el(ordered ? "ol" : "ul");
    if (ordered && parseInt(first[2], 10) !== 1) listNode.start = parseInt(first[2], 10);
    while (i < lines.length) {
      var m = ITEM.exec(lines[i]);
      if (!m || m[1].length !== indent || /\d/.test(m[2]) !== ordered) break;
      var content = [m[3]];
      i++;
      // The item's continuation: indented lines, and blank lines followed by indented ones.
      while (i < lines.length) {
        var line = lines[i];
        var nested = ITEM.exec(line);
        if (nested && nested[1].length <= indent) break;
        if (!line.trim()) {
          if (i + 1 < lines.length && /^\s+\S/.test(lines[i + 1]) && lines[i + 1].search(/\S/) > indent) {
            content.push("");
            i++;
            continue;
          }
          break;
        }
        if (!nested && line.search(/\S/) <= indent && isBlockStart(line, lines[i + 1])) break;
        content.push(line.replace(new RegExp("^\\s{0," + (indent + 4) + "}"), ""));
        i++;
      }
      var item = el("li");
      var inner = content.some(function (l) { return ITEM.test(l) || FENCE.test(l) || !l.trim(); });
      if (inner) blocks(content, item, ctx);
      else inline(content.join("\n"), item, ctx);
      // A tight item holds one paragraph: unwrap it so lists look like lists.
      if (item.childNodes.length === 1 && item.firstChild.nodeName === "P") {
        while (item.firstChild.firstChild) item.appendChild(item.firstChild.firstChild);
        item.removeChild(item.firstChild);
      }
      listNode.appendChild(item);
      while (i < lines.length && !lines[i].trim() && ITEM.test(lines[i + 1] || "")) i++;
    }
    parent.appendChild(listNode);
    return i;
  }

  function render(text, options) {
    var ctx = options || {};
    var fragment = document.createDocumentFragment();
    blocks(String(text || "").replace(/\r\n?/g, "\n").split("\n"), fragment, ctx);
    return fragment;
  }

  window.TutorMarkdown = { render: render, safeHref: safeHref };
})();
