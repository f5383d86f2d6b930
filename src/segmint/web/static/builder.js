// Segmint audience builder. The page's state is ONE JSON document: the audience definition
// itself (the schema the REST API takes), every node with a stable id. Every edit changes it
// at once (on `input`, not on blur), so what you see is what runs and what is saved.
// The server validates, estimates, runs and saves; the newest estimate always wins.
(function () {
  "use strict";

  var dataEl = document.getElementById("builder-data");
  if (!dataEl) return;
  var boot = JSON.parse(dataEl.textContent);
  var doc = boot.definition;
  var audience = boot.audience || {};
  var audienceId = audience.id || null;

  // UI-only facts about nodes (not part of the definition): value type, raw typed text.
  var meta = {};
  var filterIds = new WeakMap();
  var serverErrors = {}; // node id -> [{field, message}]
  var seq = 0;
  var estimateSeq = 0;
  var estimateTimer = null;
  var estimateAbort = null;
  var revision = 0;
  var runRevision = -1;
  var lastValid = null; // {dynamic, size, revision}
  var showErrors = false;

  var tree = document.getElementById("builder-tree");
  var estimateEl = document.getElementById("estimate");
  var announceEl = document.getElementById("announce");
  var summaryEl = document.getElementById("error-summary");
  var jsonEl = document.getElementById("definition-json");
  var typeEl = document.getElementById("builder-type");

  // --- vocabularies ------------------------------------------------------------------------
  var KINDS = [
    ["event", "Performed an event"],
    ["aggregate", "Total / average of an event property"],
    ["sequence", "Did one event, then another"],
    ["trait", "User trait"],
    ["utm", "UTM campaign parameter"],
    ["demographic", "Location, language, age, gender"],
    ["technology", "Browser, OS, device"],
    ["audience", "Member of another audience"]
  ];
  var OPS = {
    text: [["equals", "is"], ["not_equals", "is not"], ["in", "is one of"], ["not_in", "is not one of"],
      ["contains", "contains"], ["not_contains", "does not contain"], ["starts_with", "starts with"],
      ["ends_with", "ends with"], ["matches_regex", "matches pattern"], ["is_set", "is known"],
      ["is_not_set", "is unknown"]],
    number: [["equals", "="], ["not_equals", "≠"], ["gt", ">"], ["gte", "≥"], ["lt", "<"], ["lte", "≤"],
      ["between", "is between"], ["in", "is one of"], ["not_in", "is not one of"], ["is_set", "is known"],
      ["is_not_set", "is unknown"]],
    boolean: [["equals", "is"], ["not_equals", "is not"], ["is_set", "is known"], ["is_not_set", "is unknown"]],
    date: [["before", "is before"], ["after", "is after"], ["in_window", "is within"], ["is_set", "is known"],
      ["is_not_set", "is unknown"]]
  };
  var AGG_OPS = [["gt", ">"], ["gte", "≥"], ["lt", "<"], ["lte", "≤"], ["equals", "="], ["not_equals", "≠"], ["between", "is between"]];
  var OP_WORDS = {};
  Object.keys(OPS).forEach(function (t) { OPS[t].forEach(function (o) { OP_WORDS[o[0]] = o[1]; }); });
  var TYPE_LABELS = [["text", "Text"], ["number", "Number"], ["boolean", "True/false"], ["date", "Date"]];
  var UNITS = [["days", "days"], ["weeks", "weeks"], ["months", "months"], ["hours", "hours"], ["minutes", "minutes"]];
  var DEMO_FIELDS = [["country", "Country"], ["region", "Region"], ["city", "City"], ["language", "Language"], ["age", "Age"], ["gender", "Gender"]];
  var TECH_FIELDS = [["browser", "Browser"], ["os", "Operating system"], ["device_type", "Device type"]];
  var UTM_PARAMS = [["source", "utm_source"], ["medium", "utm_medium"], ["campaign", "utm_campaign"], ["term", "utm_term"], ["content", "utm_content"]];
  var TOUCHES = [["any", "any touch"], ["first", "first touch"], ["last", "last touch"]];
  var FUNCTIONS = [["sum", "total"], ["avg", "average"], ["min", "smallest"], ["max", "largest"], ["count_distinct", "number of distinct"]];
  var COUNT_OPS = [["at_least", "at least"], ["at_most", "at most"], ["exactly", "exactly"]];

  // --- ids and tree helpers ----------------------------------------------------------------
  function allIds(node, out) {
    out = out || {};
    if (node && node.id) out[node.id] = true;
    (node && node.conditions || []).forEach(function (c) { allIds(c, out); });
    return out;
  }
  function newId(prefix) {
    var taken = allIds(doc.root);
    var id;
    do { seq += 1; id = prefix + seq; } while (taken[id]);
    return id;
  }
  function ensureIds(node, path) {
    if (!node.id) node.id = path;
    if (isGroup(node)) {
      if (!Array.isArray(node.conditions)) node.conditions = [];
      node.conditions.forEach(function (c, i) { ensureIds(c, path + ".conditions[" + i + "]"); });
    }
  }
  function isGroup(node) { return node && (node.kind === "and" || node.kind === "or"); }
  function filterId(f) {
    if (!filterIds.has(f)) { seq += 1; filterIds.set(f, "f" + seq); }
    return filterIds.get(f);
  }
  function findParent(node, id, parent) {
    if (node.id === id) return { node: node, parent: parent };
    if (!isGroup(node)) return null;
    for (var i = 0; i < node.conditions.length; i++) {
      var found = findParent(node.conditions[i], id, node);
      if (found) return found;
    }
    return null;
  }
  function clone(value) { return JSON.parse(JSON.stringify(value)); }
  function reid(node) {
    node.id = newId(isGroup(node) ? "g" : "c");
    if (isGroup(node)) node.conditions.forEach(reid);
  }
  function metaOf(id) { return meta[id] || (meta[id] = { raw: {} }); }

  // Group numbering (for names) in pre-order.
  function groupNumbers() {
    var numbers = {};
    var n = 0;
    (function walk(node) {
      if (!isGroup(node)) return;
      n += 1; numbers[node.id] = n;
      node.conditions.forEach(walk);
    })(doc.root);
    return numbers;
  }

  // --- value types -------------------------------------------------------------------------
  function inferType(op, value) {
    if (["before", "after", "in_window"].indexOf(op) >= 0) return "date";
    var v = Array.isArray(value) ? value[0] : value;
    if (typeof v === "number") return "number";
    if (typeof v === "boolean") return "boolean";
    return "text";
  }
  function valueType(node, holder, key) {
    if (node.kind === "demographic") return node.field === "age" ? "number" : "text";
    if (node.kind === "technology" || node.kind === "utm") return "text";
    var m = metaOf(key);
    if (!m.type) m.type = inferType(holder.operator, holder.value);
    return m.type;
  }
  function needsValue(op) { return op !== "is_set" && op !== "is_not_set"; }

  function parseValue(type, op, raw1, raw2) {
    // Returns {value, problem}: value is what the definition holds (null when incomplete).
    function one(text) {
      text = (text || "").trim();
      if (text === "") return { problem: type === "number" ? "Enter a number" : "Enter a value" };
      if (type === "number") {
        var num = Number(text);
        if (!isFinite(num)) return { problem: "“" + text + "” is not a number" };
        return { value: num };
      }
      if (type === "boolean") return { value: text === "true" };
      return { value: text };
    }
    if (!needsValue(op)) return { value: null };
    if (op === "between") {
      var a = one(raw1), b = one(raw2);
      if (a.problem || b.problem) return { value: null, problem: "Enter both numbers of the range" };
      return { value: [a.value, b.value] };
    }
    if (op === "in" || op === "not_in") {
      var parts = (raw1 || "").split(",").map(function (s) { return s.trim(); }).filter(Boolean);
      if (!parts.length) return { value: null, problem: "Enter one or more values, separated by commas" };
      var out = [];
      for (var i = 0; i < parts.length; i++) {
        var p = one(parts[i]);
        if (p.problem) return { value: null, problem: p.problem };
        out.push(p.value);
      }
      return { value: out };
    }
    var r = one(raw1);
    return { value: r.problem ? null : r.value, problem: r.problem };
  }
  function rawFromValue(value, index) {
    if (value === null || value === undefined) return "";
    if (Array.isArray(value)) {
      if (index !== undefined) return value[index] === undefined ? "" : String(value[index]);
      return value.join(", ");
    }
    if (typeof value === "object") return "";
    return String(value);
  }

  // --- plain-English labels (for button names and the breakdown) ------------------------------
  function windowWords(w) {
    if (!w) return "";
    if (w.type === "relative") {
      if (w.last) return " in the last " + Number(w.last).toLocaleString("en-US") + " " + (w.unit || "days");
      return " between " + (w.from_ago || 0) + " and " + (w.to_ago || 0) + " " + (w.unit || "days") + " ago";
    }
    if (w.type === "absolute") return " from " + (w.from || "…") + " to " + (w.to || "…");
    if (w.type === "calendar") return " in calendar " + w.unit + "s " + (w.from_ago || 0) + " ago";
    return "";
  }
  function compareWords(op, value) {
    var words = OP_WORDS[op] || op;
    if (!needsValue(op)) return words;
    if (op === "equals") words = "equals";
    if (op === "in_window") return words + windowWords(value);
    if (Array.isArray(value)) return words + " " + value.join(op === "between" ? " and " : ", ");
    return words + " " + (value === null || value === undefined || value === "" ? "(no value)" : String(value));
  }
  function label(node) {
    var text;
    switch (node.kind) {
      case "and": case "or":
        text = (node.kind === "and" ? "all" : "any") + " of " + node.conditions.length + " conditions"; break;
      case "event":
        text = (node.performed === false ? "did not perform " : "performed ") + (node.event || "(no event)") + windowWords(node.window); break;
      case "aggregate":
        text = (node.function || "sum") + " of " + (node.property || "(no property)") + " on " + (node.event || "(no event)") + " " + compareWords(node.operator, node.value); break;
      case "sequence":
        text = (node.first.event || "(no event)") + (node.followed === false ? " not followed by " : " then ") + (node.then.event || "(no event)"); break;
      case "trait": text = "trait " + (node.trait || "(no trait)") + " " + compareWords(node.operator, node.value); break;
      case "utm": text = "utm_" + node.parameter + " " + compareWords(node.operator, node.value); break;
      case "demographic": case "technology": text = node.field.replace("_", " ") + " " + compareWords(node.operator, node.value); break;
      case "audience": text = (node.member === false ? "not a member of " : "member of ") + (node.audience || "(no audience)"); break;
      default: text = node.kind;
    }
    return (node.negate ? "NOT " : "") + text;
  }

  // --- new nodes -----------------------------------------------------------------------------
  function blankCondition(kind, id) {
    var base = { id: id || newId("c"), kind: kind };
    switch (kind) {
      case "event": return Object.assign(base, { event: "", performed: true, count: { operator: "at_least", value: 1 }, filters: [], window: null });
      case "aggregate": return Object.assign(base, { event: "", property: "", function: "sum", operator: "gt", value: null, filters: [], window: null });
      case "sequence": return Object.assign(base, { first: { event: "" }, then: { event: "" }, followed: true, within: { amount: 1, unit: "days" }, window: null });
      case "trait": return Object.assign(base, { trait: "", operator: "equals", value: null });
      case "utm": return Object.assign(base, { parameter: "source", touch: "any", operator: "equals", value: null, window: null });
      case "demographic": return Object.assign(base, { field: "country", operator: "equals", value: null });
      case "technology": return Object.assign(base, { field: "browser", operator: "equals", value: null });
      case "audience": return Object.assign(base, { audience: "", member: true });
    }
    return base;
  }

  // --- completeness (client side: what is missing, said plainly) ------------------------------
  function problemsOf(node) {
    var out = [];
    function need(cond, field, message) { if (cond) out.push({ field: field, message: message }); }
    function checkWindow(w, field) {
      if (!w) return;
      if (w.type === "relative") need(!(w.last >= 1), field + ".last", "Enter how many " + (w.unit || "days") + " (1 or more)");
      if (w.type === "absolute") {
        need(!w.from && !w.to, field + ".from", "Choose a start date, an end date or both");
        need(w.from && w.to && w.from >= w.to, field + ".from", "The start date must be before the end date");
      }
    }
    function checkCompare(holder, key, field) {
      var m = metaOf(key);
      if (m.problem && needsValue(holder.operator)) out.push({ field: field, message: m.problem });
      else if (needsValue(holder.operator) && holder.operator !== "in_window" && (holder.value === null || holder.value === undefined)) {
        out.push({ field: field, message: "Enter a value" });
      }
      if (holder.operator === "in_window") checkWindow(holder.value, field);
    }
    function checkFilters(filters, field) {
      (filters || []).forEach(function (f, i) {
        need(!f.property, field + "[" + i + "].property", "Choose a property for this filter");
        checkCompare(f, filterId(f), field + "[" + i + "].value");
      });
    }
    switch (node.kind) {
      case "and": case "or":
        need(!node.conditions.length, "conditions", "This group is empty: add a condition to it or remove the group"); break;
      case "event":
        need(!node.event, "event", "Choose an event");
        need(!(node.count && node.count.value >= 0 && Math.floor(node.count.value) === node.count.value), "count.value", "Enter how many times (a whole number)");
        checkFilters(node.filters, "filters"); checkWindow(node.window, "window"); break;
      case "aggregate":
        need(!node.event, "event", "Choose an event");
        need(!node.property, "property", "Choose the number property to add up");
        checkCompare(node, node.id, "value"); checkFilters(node.filters, "filters"); checkWindow(node.window, "window"); break;
      case "sequence":
        need(!node.first.event, "first.event", "Choose the first event");
        need(!node.then.event, "then.event", "Choose the event that follows");
        need(node.within && !(node.within.amount >= 1), "within.amount", "Enter the time allowed between the events (1 or more)");
        checkWindow(node.window, "window"); break;
      case "trait":
        need(!node.trait, "trait", "Choose a trait");
        checkCompare(node, node.id, "value"); break;
      case "utm": case "demographic": case "technology":
        checkCompare(node, node.id, "value");
        if (node.kind === "utm") checkWindow(node.window, "window"); break;
      case "audience":
        need(!node.audience, "audience", "Choose an audience"); break;
    }
    return out;
  }
  function allProblems() {
    var list = [];
    (function walk(node) {
      var mine = problemsOf(node);
      if (!mine.length && serverErrors[node.id]) mine = serverErrors[node.id];
      mine.forEach(function (p) { list.push({ id: node.id, field: p.field, message: p.message, node: node }); });
      if (isGroup(node)) node.conditions.forEach(walk);
    })(doc.root);
    return list;
  }

  // --- DOM helpers -----------------------------------------------------------------------------
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "text") e.textContent = v;
      else if (k === "className") e.className = v;
      else if (k === "value") e.value = v;
      else if (k === "checked") e.checked = !!v;
      else e.setAttribute(k, v === true ? "" : v);
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }
  function ctlId(nodeId, field) { return "n-" + nodeId + "-" + field.replace(/[^A-Za-z0-9_-]/g, "_"); }
  function field(nodeId, fieldName, labelText, control, opts) {
    control.id = ctlId(nodeId, fieldName);
    control.setAttribute("data-node", nodeId);
    control.setAttribute("data-field", fieldName);
    var wrap = el("div", { className: "bf" + (opts && opts.wide ? " bf-wide" : "") }, [
      el("label", { "for": control.id, text: labelText, className: opts && opts.hideLabel ? "visually-hidden" : "" }),
      control
    ]);
    return wrap;
  }
  function select(options, value) {
    var s = el("select");
    options.forEach(function (o) { s.appendChild(el("option", { value: o[0], text: o[1] })); });
    s.value = value;
    return s;
  }

  // --- rendering -----------------------------------------------------------------------------
  function render() {
    var active = document.activeElement;
    var activeId = active && active.id && tree.contains(active) ? active.id : null;
    var caret = null;
    if (activeId && typeof active.selectionStart === "number") {
      try { caret = [active.selectionStart, active.selectionEnd]; } catch (e) { caret = null; }
    }
    var numbers = groupNumbers();
    tree.textContent = "";
    tree.appendChild(renderGroup(doc.root, null, numbers, 0));
    if (activeId) {
      var again = document.getElementById(activeId);
      if (again) {
        again.focus();
        if (caret && typeof again.setSelectionRange === "function") {
          try { again.setSelectionRange(caret[0], caret[1]); } catch (e) { /* not a text box */ }
        }
      }
    }
    markProblems();
    jsonEl.value = JSON.stringify(doc, null, 2);
  }

  function groupTitle(group, parent, numbers) {
    var n = numbers[group.id];
    var how = group.kind === "and" ? "match ALL of these" : "match ANY of these";
    var where = parent ? " (inside Group " + numbers[parent.id] + ")" : " (top level)";
    return "Group " + n + ": " + how + where + (group.negate ? ", excluded (NOT)" : "");
  }

  function renderGroup(group, parent, numbers, depth) {
    var n = numbers[group.id];
    var headId = "h-" + group.id;
    var box = el("div", { role: "group", "aria-labelledby": headId, className: "bgroup depth-" + Math.min(depth, 4) + (group.negate ? " negated" : ""), "data-node": group.id, id: "node-" + group.id });
    var head = el("div", { className: "bgroup-head" });
    head.appendChild(el("span", { id: headId, className: "bgroup-title", text: groupTitle(group, parent, numbers) }));
    var comb = select([["and", "ALL (and)"], ["or", "ANY (or)"]], group.kind);
    head.appendChild(field(group.id, "kind", "Match for Group " + n, comb));
    var neg = el("input", { type: "checkbox", checked: !!group.negate });
    var negWrap = field(group.id, "negate", "Exclude (NOT) Group " + n, neg);
    negWrap.className = "bf bf-check";
    negWrap.appendChild(negWrap.firstChild); // label after the box
    head.appendChild(negWrap);
    if (parent) head.appendChild(nodeActions(group, parent, "Group " + n));
    box.appendChild(head);
    var errBox = el("p", { id: "err-" + group.id, className: "node-error", hidden: true });
    box.appendChild(errBox);
    var list = el("ol", { className: "bchildren" });
    if (!group.conditions.length) {
      list.appendChild(el("li", { className: "empty-group muted", text: parent ? "This group is empty." : "No conditions yet: add one below." }));
    }
    group.conditions.forEach(function (child, i) {
      var li = el("li", { className: "bchild" });
      if (i > 0) li.appendChild(el("span", { className: "combinator", text: group.kind === "and" ? "and" : "or" }));
      if (isGroup(child)) li.appendChild(renderGroup(child, group, numbers, depth + 1));
      else li.appendChild(renderCondition(child, group, i, numbers));
      list.appendChild(li);
    });
    box.appendChild(list);
    var foot = el("div", { className: "bgroup-foot" }, [
      el("button", { type: "button", className: "btn btn-small", "data-action": "add-condition", "data-node": group.id, id: "add-c-" + group.id, text: "+ Add condition", "aria-label": "Add condition to Group " + n }),
      el("button", { type: "button", className: "btn btn-small", "data-action": "add-group", "data-node": group.id, id: "add-g-" + group.id, text: "+ Add group", "aria-label": "Add group inside Group " + n })
    ]);
    box.appendChild(foot);
    return box;
  }

  function nodeActions(node, parent, what) {
    var i = parent.conditions.indexOf(node);
    var name = isGroup(node) ? what : "condition: " + label(node);
    var box = el("div", { className: "node-actions" });
    [["move-up", "↑", "Move up " + name, i === 0],
     ["move-down", "↓", "Move down " + name, i === parent.conditions.length - 1],
     ["duplicate", "Copy", "Duplicate " + name, false],
     ["remove", "✕", "Remove " + name, false]].forEach(function (a) {
      box.appendChild(el("button", { type: "button", className: "icon-btn", "data-action": a[0], "data-node": node.id, id: a[0] + "-" + node.id, "aria-label": a[2], title: a[2], "aria-disabled": a[3] ? "true" : null, text: a[1] }));
    });
    return box;
  }

  function renderCondition(node, parent, index, numbers) {
    var headId = "h-" + node.id;
    var n = numbers[parent.id];
    var box = el("div", { role: "group", "aria-labelledby": headId, className: "bcond" + (node.negate ? " negated" : ""), "data-node": node.id, id: "node-" + node.id });
    var head = el("div", { className: "bcond-head" });
    head.appendChild(el("span", { id: headId, className: "bcond-title", text: "Condition " + (index + 1) + " of " + parent.conditions.length + " in Group " + n }));
    head.appendChild(nodeActions(node, parent, ""));
    box.appendChild(head);
    var row = el("div", { className: "bcond-fields" });
    row.appendChild(field(node.id, "kindpick", "Condition type", select(KINDS, node.kind)));
    renderFields(node, row);
    {
      var neg = el("input", { type: "checkbox", checked: !!node.negate });
      var w = field(node.id, "negate", "Exclude (NOT)", neg);
      w.className = "bf bf-check"; w.appendChild(w.firstChild);
      row.appendChild(w);
    }
    box.appendChild(row);
    if (node.kind === "event" || node.kind === "aggregate") box.appendChild(renderFilters(node));
    box.appendChild(el("p", { id: "err-" + node.id, className: "node-error", hidden: true }));
    return box;
  }

  function textInput(value, listId, placeholder) {
    return el("input", { type: "text", value: value || "", list: listId || null, autocomplete: "off", spellcheck: "false", placeholder: placeholder || null });
  }

  function renderFields(node, row) {
    var id = node.id;
    switch (node.kind) {
      case "event":
        row.appendChild(field(id, "performed", "Did or did not", select([["true", "performed"], ["false", "did not perform"]], String(node.performed !== false))));
        row.appendChild(field(id, "event", "Event", textInput(node.event, "dl-events", "event name")));
        row.appendChild(field(id, "count.operator", "How often", select(COUNT_OPS, node.count.operator)));
        row.appendChild(field(id, "count.value", "Times", el("input", { type: "number", min: "0", step: "1", value: String(node.count.value), className: "narrow" })));
        renderWindow(node, "window", row);
        break;
      case "aggregate":
        row.appendChild(field(id, "function", "Aggregate", select(FUNCTIONS, node.function)));
        row.appendChild(field(id, "property", "Property", textInput(node.property, propsList(node.event), "number property")));
        row.appendChild(field(id, "event", "Of event", textInput(node.event, "dl-events", "event name")));
        renderWindow(node, "window", row);
        renderCompare(node, node, id, "", row, AGG_OPS);
        break;
      case "sequence":
        row.appendChild(field(id, "first.event", "First event", textInput(node.first.event, "dl-events", "event name")));
        row.appendChild(field(id, "followed", "Then", select([["true", "followed by"], ["false", "NOT followed by"]], String(node.followed !== false))));
        row.appendChild(field(id, "then.event", "Second event", textInput(node.then.event, "dl-events", "event name")));
        var within = node.within || { amount: "", unit: "days" };
        row.appendChild(field(id, "within.amount", "Within", el("input", { type: "number", min: "1", step: "1", value: String(within.amount || ""), className: "narrow", placeholder: "any" })));
        row.appendChild(field(id, "within.unit", "Within unit", select([["minutes", "minutes"], ["hours", "hours"], ["days", "days"], ["weeks", "weeks"]], within.unit || "days")));
        renderWindow(node, "window", row);
        ["first", "then"].forEach(function (step) {
          if (node[step].filters && node[step].filters.length) {
            row.appendChild(el("p", { className: "hint", text: "The " + step + " step also has " + node[step].filters.length + " property filter(s) from the JSON definition; they are applied." }));
          }
        });
        break;
      case "trait":
        row.appendChild(field(id, "trait", "Trait", textInput(node.trait, "dl-traits", "trait key")));
        renderCompare(node, node, id, "", row, null);
        break;
      case "utm":
        row.appendChild(field(id, "parameter", "Parameter", select(UTM_PARAMS, node.parameter)));
        row.appendChild(field(id, "touch", "Touch", select(TOUCHES, node.touch || "any")));
        renderCompare(node, node, id, "", row, null);
        if ((node.touch || "any") === "any") renderWindow(node, "window", row);
        break;
      case "demographic":
        row.appendChild(field(id, "field", "Field", select(DEMO_FIELDS, node.field)));
        renderCompare(node, node, id, "", row, null);
        break;
      case "technology":
        row.appendChild(field(id, "field", "Field", select(TECH_FIELDS, node.field)));
        renderCompare(node, node, id, "", row, null);
        break;
      case "audience":
        row.appendChild(field(id, "member", "Membership", select([["true", "is a member of"], ["false", "is not a member of"]], String(node.member !== false))));
        row.appendChild(field(id, "audience", "Audience", textInput(node.audience, "dl-audiences", "audience name")));
        break;
    }
  }

  function valuesListFor(node) {
    if (node.kind === "demographic" && node.field !== "age") return loadValues("demographic." + node.field);
    if (node.kind === "technology") return loadValues("technology." + node.field);
    if (node.kind === "utm") return loadValues("utm." + node.parameter + "." + (node.touch || "any"));
    if (node.kind === "trait" && node.trait) return traitValuesList(node.trait);
    return null;
  }

  // The operator and value editor for `holder` (a node or a filter); `key` owns its meta.
  function renderCompare(node, holder, key, prefix, row, fixedOps) {
    var id = node.id;
    var type = fixedOps ? "number" : valueType(node, holder, key);
    var m = metaOf(key);
    var canChooseType = !fixedOps && (holder !== node || node.kind === "trait");
    if (canChooseType) {
      var types = TYPE_LABELS.filter(function (t) { return t[0] !== "date" || node.kind === "trait"; });
      row.appendChild(field(id, prefix + "valuetype", "Value type", select(types, type)));
    }
    var ops = fixedOps || OPS[type];
    row.appendChild(field(id, prefix + "operator", "Operator", select(ops, holder.operator)));
    var op = holder.operator;
    if (!needsValue(op)) return;
    if (op === "in_window") {
      renderWindow(holder, prefix + "value", row, id, true);
      return;
    }
    var raw1 = m.raw.value !== undefined ? m.raw.value : rawFromValue(holder.value, op === "between" ? 0 : undefined);
    if (type === "boolean") {
      row.appendChild(field(id, prefix + "value", "Value", select([["", "— choose —"], ["true", "true"], ["false", "false"]], raw1)));
      return;
    }
    if (type === "date") {
      row.appendChild(field(id, prefix + "value", "Date", el("input", { type: "date", value: raw1 })));
      return;
    }
    var listId = holder === node ? valuesListFor(node) : null;
    var inputType = type === "number" && op !== "in" && op !== "not_in" ? "number" : "text";
    var hint = op === "in" || op === "not_in" ? "values, comma-separated" : (type === "number" ? "number" : "value");
    row.appendChild(field(id, prefix + "value", op === "between" ? "From" : "Value", el("input", { type: inputType, value: raw1, list: listId, autocomplete: "off", placeholder: hint, step: inputType === "number" ? "any" : null })));
    if (op === "between") {
      var raw2 = m.raw.value2 !== undefined ? m.raw.value2 : rawFromValue(holder.value, 1);
      row.appendChild(field(id, prefix + "value2", "To", el("input", { type: "number", step: "any", value: raw2 })));
    }
    if (type === "text" && ["equals", "not_equals", "in", "not_in", "contains", "not_contains", "starts_with", "ends_with"].indexOf(op) >= 0) {
      var ci = el("input", { type: "checkbox", checked: !!holder.case_insensitive });
      var w = field(id, prefix + "case_insensitive", "Ignore case", ci);
      w.className = "bf bf-check"; w.appendChild(w.firstChild);
      row.appendChild(w);
    }
  }

  // `holder[key]` is a window (or null = any time). For in_window values the key is "value".
  function renderWindow(holder, fieldName, row, nodeId, required) {
    var id = nodeId || holder.id;
    var key = fieldName.split(".").pop();
    var w = holder[key];
    var mode = !w ? "ever" : (w.type === "absolute" ? "between" : (w.type === "relative" && w.last ? "last" : "other"));
    var modes = [["ever", "at any time"], ["last", "in the last…"], ["between", "between dates"]];
    if (required) modes = modes.slice(1);
    if (mode === "other") modes.push(["other", w.type === "calendar" ? "calendar period (from JSON)" : "relative range (from JSON)"]);
    row.appendChild(field(id, fieldName + ".mode", "When", select(modes, mode)));
    if (mode === "last") {
      row.appendChild(field(id, fieldName + ".last", "Last", el("input", { type: "number", min: "1", step: "1", value: w.last === null || w.last === undefined ? "" : String(w.last), className: "narrow" })));
      row.appendChild(field(id, fieldName + ".unit", "Unit", select(UNITS, w.unit || "days")));
    } else if (mode === "between") {
      row.appendChild(field(id, fieldName + ".from", "From date", el("input", { type: "date", value: (w.from || "").slice(0, 10) })));
      row.appendChild(field(id, fieldName + ".to", "To date (not included)", el("input", { type: "date", value: (w.to || "").slice(0, 10) })));
    } else if (mode === "other") {
      row.appendChild(el("span", { className: "hint", text: windowWords(w).trim() }));
    }
  }

  function renderFilters(node) {
    var box = el("div", { className: "bfilters" });
    (node.filters || []).forEach(function (f, i) {
      var fid = filterId(f);
      var prefix = "filters[" + i + "].";
      var row = el("div", { className: "bfilter", role: "group", "aria-label": "Filter " + (i + 1) + " on " + (node.event || "the event") });
      row.appendChild(el("span", { className: "combinator", text: i === 0 ? "where" : "and" }));
      row.appendChild(field(node.id, prefix + "property", "Property", textInput(f.property, propsList(node.event), "property")));
      renderCompare(node, f, fid, prefix, row, null);
      row.appendChild(el("button", { type: "button", className: "icon-btn", "data-action": "remove-filter", "data-node": node.id, "data-index": String(i), id: "rmf-" + node.id + "-" + i, "aria-label": "Remove filter: " + (f.property || "(no property)") + " " + compareWords(f.operator, f.value), text: "✕" }));
      box.appendChild(row);
    });
    box.appendChild(el("button", { type: "button", className: "btn btn-small btn-quiet", "data-action": "add-filter", "data-node": node.id, id: "addf-" + node.id, text: "+ Where property…", "aria-label": "Add property filter to condition: " + label(node) }));
    return box;
  }

  // --- problems on screen -------------------------------------------------------------------------
  function markProblems() {
    tree.querySelectorAll("[aria-invalid]").forEach(function (e) { e.removeAttribute("aria-invalid"); e.removeAttribute("aria-describedby"); });
    tree.querySelectorAll(".node-error").forEach(function (e) { e.hidden = true; e.textContent = ""; });
    tree.querySelectorAll(".has-problem").forEach(function (e) { e.classList.remove("has-problem"); });
    var problems = allProblems();
    problems.forEach(function (p) {
      var box = document.getElementById("node-" + p.id);
      var msg = document.getElementById("err-" + p.id);
      if (!box || !msg) return;
      // Hide what the user has not touched yet only until they try to run or save.
      if (!showErrors && !metaOf(p.id).touched) return;
      box.classList.add("has-problem");
      msg.hidden = false;
      msg.textContent = (msg.textContent ? msg.textContent + " " : "") + p.message + ".";
      var control = controlFor(p.id, p.field);
      if (control) {
        control.setAttribute("aria-invalid", "true");
        control.setAttribute("aria-describedby", msg.id);
      }
    });
    return problems;
  }
  function controlFor(nodeId, fieldName) {
    var candidates = [fieldName, fieldName.replace(/\.(last|from|to)$/, ".mode"), fieldName.split(".")[0]];
    for (var i = 0; i < candidates.length; i++) {
      var c = document.getElementById(ctlId(nodeId, candidates[i]));
      if (c) return c;
    }
    if (fieldName === "conditions") return document.getElementById("add-c-" + nodeId);
    var box = document.getElementById("node-" + nodeId);
    return box ? box.querySelector("input, select") : null;
  }
  function showSummary(problems, action) {
    summaryEl.textContent = "";
    if (!problems.length) { summaryEl.hidden = true; return; }
    summaryEl.appendChild(el("h2", { text: "Fix " + problems.length + " problem" + (problems.length > 1 ? "s" : "") + " before you " + action }));
    var ul = el("ul");
    var numbers = groupNumbers();
    problems.forEach(function (p) {
      var control = p.node ? controlFor(p.id, p.field) : null;
      var where = !p.node ? "" : (isGroup(p.node) ? "Group " + numbers[p.node.id] : label(p.node)) + ": ";
      var a = el("a", { href: "#" + (control ? control.id : "node-" + p.id), text: where + p.message });
      a.addEventListener("click", function (ev) { ev.preventDefault(); if (control) control.focus(); });
      ul.appendChild(el("li", {}, [a]));
    });
    summaryEl.appendChild(ul);
    summaryEl.hidden = false;
    summaryEl.focus();
  }

  // --- applying edits ------------------------------------------------------------------------------
  function changed(structural) {
    revision += 1;
    if (!structural) markProblems();
    jsonEl.value = JSON.stringify(doc, null, 2);
    if (!summaryEl.hidden) {
      var left = allProblems();
      if (!left.length) summaryEl.hidden = true;
    }
    if (runRevision >= 0) document.getElementById("run-stale").hidden = runRevision === revision;
    keepDraft();
    scheduleEstimate();
  }

  // --- unsaved changes: a warning before leaving, and a draft kept for this tab ---------------
  // The draft lives in sessionStorage (this tab only, gone when it closes), one per audience
  // version, so Back or a reload brings the work back; a save or "Discard draft" removes it.
  var DRAFT_KEY = "segmint:builder-draft:" + (audienceId ? audienceId + ":v" + audience.version : "new");
  var savedJson = null; // the definition as loaded: nothing to lose while the builder holds it
  var leaving = false; // set once a save succeeded: going to the audience page loses nothing
  function unsaved() { return !leaving && JSON.stringify(doc) !== savedJson; }
  function keepDraft() {
    try {
      if (unsaved()) sessionStorage.setItem(DRAFT_KEY, JSON.stringify({ definition: doc }));
      else sessionStorage.removeItem(DRAFT_KEY);
    } catch (e) { /* storage full or disabled: the warning before leaving still works */ }
  }
  function storedDraft() {
    try {
      var stored = JSON.parse(sessionStorage.getItem(DRAFT_KEY) || "null");
      var definition = stored && stored.definition;
      return definition && isGroup(definition.root) && JSON.stringify(definition) !== savedJson ? definition : null;
    } catch (e) { return null; }
  }
  function discardDraft() {
    doc = JSON.parse(savedJson);
    meta = {}; serverErrors = {}; showErrors = false;
    summaryEl.hidden = true;
    document.getElementById("draft-note").hidden = true;
    render();
    changed(true);
    announce("Draft discarded: the builder shows the " + (audienceId ? "saved definition" : "empty audience") + " again.");
    document.getElementById("builder-title").focus();
  }
  window.addEventListener("beforeunload", function (ev) {
    if (!unsaved()) return;
    ev.preventDefault();
    ev.returnValue = ""; // older browsers need it to ask
  });

  function holderFor(node, fieldName) {
    // The object a field lives on, and the key inside it ("filters[1].value" → filter, "value").
    var m = /^filters\[(\d+)\]\.(.+)$/.exec(fieldName);
    if (m) {
      var f = node.filters[Number(m[1])];
      return { obj: f, key: m[2], metaKey: filterId(f) };
    }
    return { obj: node, key: fieldName, metaKey: node.id };
  }
  function shapeOf(op) {
    if (!needsValue(op)) return "none";
    if (op === "between") return "pair";
    if (op === "in" || op === "not_in") return "list";
    return op === "in_window" ? "window" : "one";
  }
  function resetValue(obj, m) { obj.value = null; m.raw = {}; m.problem = null; delete obj.case_insensitive; }

  function onEdit(ev) {
    var target = ev.target;
    var nodeId = target.getAttribute("data-node");
    var fieldName = target.getAttribute("data-field");
    if (!nodeId || !fieldName) return;
    // Selects and checkboxes report through `change`; text boxes through `input` (at once).
    var discrete = target.tagName === "SELECT" || target.type === "checkbox";
    if (discrete && ev.type === "input") return;
    var found = findParent(doc.root, nodeId, null);
    if (!found) return;
    var node = found.node;
    var value = target.type === "checkbox" ? target.checked : target.value;
    if (!discrete && ev.type === "change") {
      // The text was applied on `input` already; leaving the box only adopts a known type.
      var known = holderFor(node, fieldName);
      if (known.key === "trait") adoptKnownType(node, value);
      if (known.key === "property" && known.obj !== node) adoptKnownType(node, value, known.obj);
      return;
    }
    metaOf(nodeId).touched = true;
    delete serverErrors[nodeId];
    var h = holderFor(node, fieldName);
    var obj = h.obj, key = h.key, m = metaOf(h.metaKey);
    var rerender = discrete;
    if (fieldName === "kindpick") {
      var fresh = blankCondition(value, node.id);
      if (node.negate) fresh.negate = true;
      replaceNode(found, fresh);
      meta[node.id] = { raw: {}, touched: false };
      announce("Condition type changed to " + KINDS.filter(function (k) { return k[0] === value; })[0][1] + "; its fields were reset.");
    } else if (fieldName === "count.value") {
      node.count.value = value === "" ? null : Number(value);
    } else if (fieldName === "count.operator") {
      node.count.operator = value;
    } else if (fieldName === "within.amount") {
      if (value === "") node.within = null;
      else { node.within = node.within || { unit: "days" }; node.within.amount = Number(value); }
    } else if (fieldName === "within.unit") {
      node.within = node.within || { amount: 1 };
      node.within.unit = value;
    } else if (fieldName === "first.event" || fieldName === "then.event") {
      node[fieldName.split(".")[0]].event = value;
    } else if (key === "kind") {
      obj.kind = value;
    } else if (key === "performed" || key === "followed" || key === "member") {
      obj[key] = value === "true";
    } else if (key === "negate" || key === "case_insensitive") {
      if (value) obj[key] = true; else delete obj[key];
      rerender = key === "negate";
    } else if (key === "valuetype") {
      m.type = value;
      obj.operator = OPS[value][0][0];
      resetValue(obj, m);
      announce("Value type changed to " + value + ": the operator and value were reset.");
    } else if (key === "operator") {
      var oldShape = shapeOf(obj.operator);
      obj.operator = value;
      var newShape = shapeOf(value);
      if (oldShape !== newShape) {
        if (newShape === "window") { resetValue(obj, m); obj.value = { type: "relative", last: 30, unit: "days" }; }
        else if (newShape === "none") resetValue(obj, m);
        else if (oldShape === "window") resetValue(obj, m);
        else reparse(node, obj, h.metaKey);
      }
      if (!needsValue(value)) delete obj.case_insensitive;
    } else if (key === "value" || key === "value2") {
      m.raw[key] = value;
      reparse(node, obj, h.metaKey);
      rerender = false;
    } else if (/\.mode$/.test(key)) {
      var wk = key.replace(/\.mode$/, "");
      if (value === "ever") obj[wk] = null;
      else if (value === "last") obj[wk] = { type: "relative", last: 30, unit: "days" };
      else if (value === "between") obj[wk] = { type: "absolute" };
    } else if (/^(window|value)\.(last|unit|from|to)$/.test(key)) {
      var parts = key.split(".");
      var w = obj[parts[0]];
      if (parts[1] === "last") w.last = value === "" ? null : Number(value);
      else if (parts[1] === "unit") w.unit = value;
      else if (value) w[parts[1]] = value;
      else delete w[parts[1]];
      rerender = false;
    } else if (key === "function" || key === "parameter" || key === "touch" || key === "field") {
      obj[key] = value;
      if (key === "touch" && value !== "any") obj.window = null;
      if (key === "field") { obj.operator = "equals"; resetValue(obj, m); }
    } else {
      // A text field: event, property, trait, audience.
      obj[key] = value;
      if (key === "event") loadProperties(value);
    }
    if (rerender) render(); else refreshLabels();
    changed(rerender);
  }

  function reparse(node, obj, metaKey) {
    var m = metaOf(metaKey);
    var type = node.kind === "aggregate" && obj === node ? "number" : valueType(node, obj, metaKey);
    var between = obj.operator === "between";
    var raw1 = m.raw.value !== undefined ? m.raw.value : rawFromValue(obj.value, between ? 0 : undefined);
    var raw2 = m.raw.value2 !== undefined ? m.raw.value2 : rawFromValue(obj.value, 1);
    var parsed = parseValue(type, obj.operator, raw1, raw2);
    obj.value = parsed.value === undefined ? null : parsed.value;
    m.problem = parsed.problem || null;
  }

  // Button names follow what the condition says now (no re-render while typing).
  function refreshLabels() {
    (function walk(node, parent) {
      if (parent && !isGroup(node)) {
        var name = "condition: " + label(node);
        [["move-up", "Move up "], ["move-down", "Move down "], ["duplicate", "Duplicate "], ["remove", "Remove "]].forEach(function (a) {
          var b = document.getElementById(a[0] + "-" + node.id);
          if (b) { b.setAttribute("aria-label", a[1] + name); b.title = a[1] + name; }
        });
        var add = document.getElementById("addf-" + node.id);
        if (add) add.setAttribute("aria-label", "Add property filter to condition: " + label(node));
      }
      if (isGroup(node)) node.conditions.forEach(function (c) { walk(c, node); });
    })(doc.root, null);
  }

  function replaceNode(found, fresh) {
    if (!found.parent) { doc.root = fresh; return; }
    var list = found.parent.conditions;
    list[list.indexOf(found.node)] = fresh;
  }

  // When a known trait / property is picked, its type comes with it (and resets the value).
  function adoptKnownType(node, key, filter) {
    var known = filter ? (propCache[node.event] || []) : (traitCache || []);
    var info = known.filter(function (k) { return k.key === key; })[0];
    if (!info) return;
    var type = { number: "number", boolean: "boolean", string: "text" }[info.type];
    var holder = filter || node;
    var mk = filter ? filterId(filter) : node.id;
    var m = metaOf(mk);
    if (!type || type === valueType(node, holder, mk)) return;
    m.type = type;
    holder.operator = OPS[type][0][0];
    holder.value = null; m.raw = {}; m.problem = null;
    delete holder.case_insensitive;
    render();
    changed(true);
    announce(key + " holds " + info.type + " values: the operator and value were reset.");
  }

  // --- structural operations (synchronous; never wait for the network) --------------------------------
  function firstControl(nodeId) {
    var box = document.getElementById("node-" + nodeId);
    return box ? box.querySelector("select, input") : null;
  }
  function onAction(ev) {
    var button = ev.target.closest("button[data-action]");
    if (!button || !tree.contains(button)) return;
    ev.preventDefault();
    if (button.getAttribute("aria-disabled") === "true") return;
    var action = button.getAttribute("data-action");
    var found = findParent(doc.root, button.getAttribute("data-node"), null);
    if (!found) return;
    var node = found.node, parent = found.parent, focusId = null, focusEl = null;
    var list = parent ? parent.conditions : null;
    var index = list ? list.indexOf(node) : -1;
    if (action === "add-condition") {
      var c = blankCondition("event");
      node.conditions.push(c);
      focusId = c.id;
      announce("Condition added to the group.");
    } else if (action === "add-group") {
      var g = { id: newId("g"), kind: node.kind === "and" ? "or" : "and", conditions: [] };
      var first = blankCondition("event");
      g.conditions.push(first);
      node.conditions.push(g);
      focusId = first.id;
      announce("Group added, with a first condition.");
    } else if (action === "remove") {
      list.splice(index, 1);
      var what = isGroup(node) ? "Group removed." : "Condition removed: " + label(node) + ".";
      announce(what);
      if (index > 0) focusId = list[index - 1].id;
      else if (list.length) focusId = list[0].id;
      else focusEl = "add-c-" + parent.id;
    } else if (action === "duplicate") {
      var copy = clone(node);
      reid(copy);
      copyMeta(node, copy);
      list.splice(index + 1, 0, copy);
      focusId = copy.id;
      announce("Duplicated: " + label(node) + ".");
    } else if (action === "move-up" || action === "move-down") {
      var to = action === "move-up" ? index - 1 : index + 1;
      if (to < 0 || to >= list.length) return;
      list.splice(index, 1);
      list.splice(to, 0, node);
      announce((isGroup(node) ? "Group" : "Condition") + " moved to position " + (to + 1) + " of " + list.length + ".");
      render();
      var again = document.getElementById(action + "-" + node.id);
      if (!again || again.getAttribute("aria-disabled") === "true") again = document.getElementById((action === "move-up" ? "move-down-" : "move-up-") + node.id);
      if (again) again.focus();
      changed(true);
      return;
    } else if (action === "add-filter") {
      node.filters = node.filters || [];
      var f = { property: "", operator: "equals", value: null };
      node.filters.push(f);
      render();
      var input = document.getElementById(ctlId(node.id, "filters[" + (node.filters.length - 1) + "].property"));
      if (input) input.focus();
      changed(true);
      return;
    } else if (action === "remove-filter") {
      node.filters.splice(Number(button.getAttribute("data-index")), 1);
      render();
      var back = document.getElementById("addf-" + node.id);
      if (back) back.focus();
      announce("Filter removed.");
      changed(true);
      return;
    }
    render();
    var target = focusEl ? document.getElementById(focusEl) : (focusId ? firstControl(focusId) : null);
    if (target) target.focus();
    changed(true);
  }
  function copyMeta(from, to) {
    if (meta[from.id]) meta[to.id] = clone(meta[from.id]);
    (from.filters || []).forEach(function (f, i) {
      var mk = filterId(f);
      if (meta[mk]) meta[filterId(to.filters[i])] = clone(meta[mk]);
    });
    if (isGroup(from)) from.conditions.forEach(function (c, i) { copyMeta(c, to.conditions[i]); });
  }

  function announce(text) {
    announceEl.textContent = "";
    setTimeout(function () { announceEl.textContent = text; }, 30);
  }

  // --- server calls ------------------------------------------------------------------------------
  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }
  function post(url, body, signal) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf(), "Accept": "application/json" },
      body: JSON.stringify(body),
      signal: signal,
      credentials: "same-origin"
    }).then(function (r) {
      return r.json().catch(function () { return { message: "The server answered " + r.status + "." }; })
        .then(function (data) { data._status = r.status; return data; });
    });
  }
  function getJson(url) {
    return fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; }).catch(function () { return null; });
  }
  function definitionBody(extra) {
    var body = { definition: doc };
    if (audienceId) body.audience_id = audienceId;
    return Object.assign(body, extra || {});
  }
  function applyServerErrors(errors) {
    serverErrors = {};
    (errors || []).forEach(function (e) {
      (serverErrors[e.id] = serverErrors[e.id] || []).push({ field: e.field || "", message: e.message });
      metaOf(e.id).touched = true;
    });
    markProblems();
  }

  function scheduleEstimate() {
    clearTimeout(estimateTimer);
    if (estimateAbort) { estimateAbort.abort(); estimateAbort = null; }
    estimateSeq += 1;
    lastValid = null;
    var local = allLocalProblems();
    if (!doc.root.conditions || !doc.root.conditions.length) {
      setEstimate("Add a condition to see an estimate.", "idle");
      return;
    }
    if (local.length) {
      setEstimate("Estimate unavailable: complete " + local.length + " field" + (local.length > 1 ? "s" : "") + " (highlighted).", "invalid");
      return;
    }
    setEstimate("Updating estimate…", "busy");
    var mySeq = estimateSeq;
    var myRevision = revision;
    estimateTimer = setTimeout(function () {
      var controller = new AbortController();
      estimateAbort = controller;
      post("/ui/builder/estimate", definitionBody(), controller.signal).then(function (data) {
        if (mySeq !== estimateSeq) return; // an older definition: never shown
        estimateAbort = null;
        if (data._status >= 400) {
          setEstimate("Estimate unavailable: " + (data.message || "the server refused the query") + ".", "invalid");
          return;
        }
        applyServerErrors(data.errors);
        if (!data.valid) {
          setEstimate("Estimate unavailable: fix " + data.errors.length + " problem" + (data.errors.length > 1 ? "s" : "") + " (highlighted).", "invalid");
          return;
        }
        lastValid = { dynamic: data.dynamic, size: data.size, revision: myRevision };
        setEstimate("About " + data.size.toLocaleString("en-US") + " people match (of " + data.profiles.toLocaleString("en-US") + " profiles).", "ok");
        typeEl.textContent = data.dynamic ? "Dynamic: uses rolling windows, re-evaluated on a schedule."
          : data.windowed ? "Static: fixed date ranges only, computed once."
          : "Static: no rolling window, computed once (add one, such as “in the last 30 days”, to keep it current).";
      }).catch(function (err) {
        if (err && err.name === "AbortError") return;
        if (mySeq === estimateSeq) setEstimate("Estimate unavailable: Segmint could not be reached.", "invalid");
      });
    }, 400);
  }
  function allLocalProblems() {
    var list = [];
    (function walk(node) {
      problemsOf(node).forEach(function (p) { list.push(p); });
      if (isGroup(node)) node.conditions.forEach(walk);
    })(doc.root);
    return list;
  }
  function setEstimate(text, state) {
    estimateEl.textContent = text;
    estimateEl.setAttribute("data-state", state);
    estimateEl.setAttribute("data-revision", String(revision));
  }

  // Blocks Run / Save while anything is incomplete; returns true when it is clear to go.
  function readyFor(action) {
    showErrors = true;
    var problems = markProblems();
    if (problems.length) { showSummary(problems, action); return false; }
    summaryEl.hidden = true;
    return true;
  }

  // --- Run query ------------------------------------------------------------------------------------
  function runQuery() {
    if (!readyFor("run the query")) return;
    var button = document.getElementById("run-query");
    button.disabled = true;
    button.textContent = "Running…";
    var myRevision = revision;
    post("/ui/builder/run", definitionBody({ sample_size: 20 })).then(function (data) {
      button.disabled = false; button.textContent = "Run query";
      if (data._status >= 400 || !data.valid) {
        applyServerErrors(data.errors);
        showSummary(data.errors ? allProblems() : [{ id: "root", field: "", message: data.message, node: null }], "run the query");
        return;
      }
      runRevision = myRevision;
      showRun(data);
    }).catch(function () {
      button.disabled = false; button.textContent = "Run query";
      window.segmint && window.segmint.toast && window.segmint.toast("Segmint could not be reached. Retry.", true);
    });
  }
  function showRun(data) {
    var box = document.getElementById("run-results");
    box.hidden = false;
    document.getElementById("run-stale").hidden = runRevision === revision;
    document.getElementById("run-size").textContent = data.size.toLocaleString("en-US");
    document.getElementById("run-of").textContent = "of " + data.profiles.toLocaleString("en-US") + " profiles, as of " + data.as_of.replace("T", " ").slice(0, 16) + " UTC";
    var ex = document.getElementById("run-explanations");
    ex.textContent = "";
    if (data.explanations && data.explanations.length) {
      ex.appendChild(el("h3", { text: data.size === 0 ? "Why is it empty?" : "Conditions that match nobody" }));
      var ul = el("ul", { className: "explanations" });
      data.explanations.forEach(function (t) { ul.appendChild(el("li", { text: t })); });
      ex.appendChild(ul);
    }
    var bd = document.getElementById("run-breakdown");
    bd.textContent = "";
    var table = el("table", { className: "breakdown" }, [el("thead", {}, [el("tr", {}, [el("th", { scope: "col", text: "Condition" }), el("th", { scope: "col", text: "Matches on its own" })])])]);
    var tb = el("tbody");
    data.diagnostics.forEach(function (d) {
      var tr = el("tr", { className: d.count === 0 ? "zero" : "" }, [
        el("td", { style: "padding-left:" + (0.5 + d.depth * 1.25) + "rem", text: d.label }),
        el("td", { className: "num", text: d.count.toLocaleString("en-US") })
      ]);
      tb.appendChild(tr);
      if (d.steps && d.steps.length > 1) {
        d.steps.forEach(function (s, i) {
          if (i === 0) return;
          tb.appendChild(el("tr", { className: "step" }, [
            el("td", { style: "padding-left:" + (1.5 + d.depth * 1.25) + "rem", text: "after adding “" + s.child_label + "” (" + (d.kind === "and" ? "and" : "or") + ")" }),
            el("td", { className: "num", text: s.count.toLocaleString("en-US") })
          ]));
        });
      }
    });
    table.appendChild(tb);
    bd.appendChild(el("div", { className: "table-wrap" }, [table]));
    var sm = document.getElementById("run-sample");
    sm.textContent = "";
    if (!data.sample.length) {
      sm.appendChild(el("p", { className: "muted", text: "No members to show." }));
    } else {
      var st = el("table", { className: "sample" }, [el("thead", {}, [el("tr", {}, ["Profile", "User id", "Email", "Country", "Last seen", "Traits"].map(function (h) { return el("th", { scope: "col", text: h }); }))])]);
      var sb = el("tbody");
      data.sample.forEach(function (s) {
        var traits = Object.keys(s.traits || {}).map(function (k) { return k + ": " + s.traits[k]; }).join(", ");
        sb.appendChild(el("tr", {}, [s.profile_id, s.user_id || "—", s.email || "—", s.country || "—", (s.last_seen || "").replace("T", " ").slice(0, 16), traits].map(function (v) { return el("td", { text: String(v) }); })));
      });
      st.appendChild(sb);
      sm.appendChild(el("div", { className: "table-wrap" }, [st]));
    }
    box.focus();
  }

  // --- Save & Activate dialog ------------------------------------------------------------------------
  var dialog = document.getElementById("save-dialog");
  var nameInput = document.getElementById("audience-name");
  var nameStatus = document.getElementById("name-status");
  var suggestionButton = document.getElementById("use-suggestion");
  var intervalSelect = document.getElementById("refresh-interval");
  var warmupBox = document.getElementById("warmup");
  var saveError = document.getElementById("save-error");
  var warmupNote = document.getElementById("warmup-note");
  var nameSeq = 0, nameTimer = null, forecastSeq = 0, dialogDynamic = true, opener = null;
  var warmupWanted = warmupBox.checked; // the user's choice, kept while it cannot apply

  // The warm-up refreshes daily: with an interval of a day or less it would change nothing.
  function syncWarmup() {
    var applies = Number(intervalSelect.value) > boot.warmup_above_seconds;
    if (!applies && !warmupBox.disabled) warmupWanted = warmupBox.checked;
    warmupBox.disabled = !applies;
    warmupBox.checked = applies && warmupWanted;
    warmupNote.hidden = applies;
  }

  function openSave() {
    if (!readyFor("save")) return;
    opener = document.activeElement;
    saveError.hidden = true;
    post("/ui/builder/validate", definitionBody()).then(function (data) {
      if (!data.valid) {
        applyServerErrors(data.errors);
        showSummary(allProblems(), "save");
        return;
      }
      dialogDynamic = data.dynamic;
      document.getElementById("save-type").textContent = data.dynamic ? "Dynamic" : "Static";
      document.getElementById("save-type-help").textContent = data.dynamic
        ? "It uses rolling windows (such as “last 30 days”): people enter and leave at every refresh."
        : data.windowed
          ? "All its windows are fixed date ranges: it is computed once when activated; nobody is added or removed later."
          : "It has no rolling window: it is computed once when activated, and nobody is added or removed later. To keep it current, give a condition a rolling window such as “in the last 365 days”.";
      document.getElementById("schedule-fields").hidden = !data.dynamic;
      if (typeof dialog.showModal === "function") dialog.showModal(); else dialog.setAttribute("open", "");
      nameInput.focus();
      // A name already there (editing) is checked; an empty box is not an error yet.
      if (nameInput.value.trim()) checkName(); else clearNameResult();
      syncWarmup();
      updateForecast();
      if (audienceId && audience.status === "active") loadImpact();
    });
  }
  function closeSave() {
    if (typeof dialog.close === "function") dialog.close(); else dialog.removeAttribute("open");
    if (opener && opener.focus) opener.focus();
  }
  function checkName() {
    clearTimeout(nameTimer);
    var name = nameInput.value;
    var mySeq = ++nameSeq;
    nameTimer = setTimeout(function () {
      post("/ui/builder/names/check", { name: name, audience_id: audienceId }).then(function (data) {
        if (mySeq !== nameSeq) return;
        showNameResult(data.ok, data.ok ? "“" + name + "” is available." : data.message, data.suggestion);
      });
    }, 250);
  }
  function clearNameResult() {
    ++nameSeq;
    clearTimeout(nameTimer);
    nameStatus.textContent = "";
    nameStatus.className = "name-status";
    nameInput.removeAttribute("aria-invalid");
    suggestionButton.hidden = true;
  }
  function showNameResult(ok, message, suggestion) {
    nameStatus.textContent = message || "";
    nameStatus.className = "name-status " + (ok ? "ok" : "bad");
    if (ok) nameInput.removeAttribute("aria-invalid"); else nameInput.setAttribute("aria-invalid", "true");
    if (!ok && suggestion && suggestion !== nameInput.value) {
      suggestionButton.hidden = false;
      suggestionButton.textContent = "Use “" + suggestion + "”";
      suggestionButton.setAttribute("data-name", suggestion);
    } else {
      suggestionButton.hidden = true;
    }
  }
  function updateForecast() {
    var out = document.getElementById("forecast-text");
    var mySeq = ++forecastSeq;
    var body = definitionBody({ warmup: warmupWanted, refresh_interval_seconds: dialogDynamic ? Number(intervalSelect.value) : null });
    if (lastValid && lastValid.revision === revision) body.size = lastValid.size;
    out.textContent = "Calculating…";
    post("/ui/builder/forecast", body).then(function (data) {
      if (mySeq !== forecastSeq) return;
      if (data._status >= 400 || !data.valid) { out.textContent = data.message || "No forecast available."; return; }
      out.textContent = data.sentence + ". Schedule: " + data.schedule + ". Workspace total for the next " + data.days + " days with this audience: about " + data.workspace_total.toLocaleString("en-US") + " events.";
      document.getElementById("schedule-text").textContent = dialogDynamic ? "Schedule: " + data.schedule + "." : "";
    });
  }
  function loadImpact() {
    var box = document.getElementById("impact");
    var text = document.getElementById("impact-text");
    box.hidden = false;
    text.textContent = "Comparing with the current members…";
    post("/ui/builder/impact", definitionBody()).then(function (data) {
      if (data._status >= 400 || !data.available) { text.textContent = data.message || ("No impact preview: " + (data.reason || "not available") + "."); return; }
      text.textContent = "If saved now: " + data.summary + ".";
    });
  }
  function submitSave(ev) {
    ev.preventDefault();
    var submit = document.getElementById("save-submit");
    submit.disabled = true;
    saveError.hidden = true;
    // Where the warm-up cannot apply the choice is kept as made, for a later longer interval.
    var body = definitionBody({ name: nameInput.value.trim(), warmup: warmupWanted, refresh_interval_seconds: dialogDynamic ? Number(intervalSelect.value) : null });
    post("/ui/builder/save", body).then(function (data) {
      submit.disabled = false;
      if (data.ok) {
        leaving = true;
        try { sessionStorage.removeItem(DRAFT_KEY); } catch (e) { /* nothing kept */ }
        window.location.assign(data.url);
        return;
      }
      if (data.field === "name") {
        showNameResult(false, data.message, data.suggestion);
        saveError.textContent = "Not saved: the name cannot be used (see below).";
        saveError.hidden = false;
        nameInput.focus();
        return;
      }
      if (data.errors) {
        closeSave();
        applyServerErrors(data.errors);
        showSummary(allProblems(), "save");
        return;
      }
      saveError.textContent = "Not saved: " + (data.message || "the server refused it") ;
      saveError.hidden = false;
    }).catch(function () {
      submit.disabled = false;
      saveError.textContent = "Not saved: Segmint could not be reached. Retry.";
      saveError.hidden = false;
    });
  }

  // --- suggestions (datalists filled from tracked data) ------------------------------------------------
  var lists = document.getElementById("datalists");
  var propCache = {}, traitCache = null, valueCache = {};
  function fillList(id, values) {
    var dl = document.getElementById(id);
    if (!dl) { dl = el("datalist", { id: id }); lists.appendChild(dl); }
    dl.textContent = "";
    values.forEach(function (v) { dl.appendChild(el("option", { value: v[0], label: v[1] || null })); });
  }
  function listIdFor(prefix, name) { return prefix + name.replace(/[^A-Za-z0-9_-]/g, "_"); }
  function propsList(event) { if (!event) return null; loadProperties(event); return listIdFor("dl-props-", event); }
  function loadProperties(event) {
    if (!event || propCache[event]) return;
    propCache[event] = [];
    getJson("/ui/builder/suggest/properties?event=" + encodeURIComponent(event)).then(function (data) {
      if (!data) return;
      propCache[event] = data.properties;
      fillList(listIdFor("dl-props-", event), data.properties.map(function (p) { return [p.key, p.type + (p.examples.length ? " · e.g. " + p.examples.slice(0, 3).join(", ") : "")]; }));
    });
  }
  function traitValuesList(key) {
    var id = listIdFor("dl-tv-", key);
    var info = (traitCache || []).filter(function (k) { return k.key === key; })[0];
    if (info) fillList(id, info.examples.map(function (v) { return [v]; }));
    return id;
  }
  function loadValues(fieldKey) {
    var id = listIdFor("dl-v-", fieldKey);
    if (!valueCache[fieldKey]) {
      valueCache[fieldKey] = true;
      getJson("/ui/builder/suggest/values?field=" + encodeURIComponent(fieldKey)).then(function (data) {
        if (data) fillList(id, data.values.map(function (v) { return [v.value, v.count.toLocaleString("en-US") + " profiles"]; }));
      });
    }
    return id;
  }
  function loadSuggestions() {
    getJson("/ui/builder/suggest/events").then(function (data) {
      if (data) fillList("dl-events", data.events.map(function (e) { return [e.name, e.count.toLocaleString("en-US") + " events"]; }));
    });
    getJson("/ui/builder/suggest/traits").then(function (data) {
      if (!data) return;
      traitCache = data.traits;
      fillList("dl-traits", data.traits.map(function (t) { return [t.key, t.type]; }));
    });
    getJson("/ui/builder/suggest/audiences").then(function (data) {
      if (data) fillList("dl-audiences", data.audiences.filter(function (a) { return !audience.name || a.name !== audience.name; }).map(function (a) { return [a.name, a.status]; }));
    });
  }

  // --- start ------------------------------------------------------------------------------------------
  ensureIds(doc.root, "root");
  if (!isGroup(doc.root)) doc.root = { id: newId("g"), kind: "and", conditions: [doc.root] };
  savedJson = JSON.stringify(doc);
  var draft = storedDraft();
  if (draft) {
    doc = draft;
    ensureIds(doc.root, "root");
    document.getElementById("draft-note").hidden = false;
  }
  (function walk(node) {
    if (node.event) loadProperties(node.event);
    if (isGroup(node)) node.conditions.forEach(walk);
  })(doc.root);
  tree.addEventListener("input", onEdit);
  tree.addEventListener("change", onEdit);
  tree.addEventListener("click", onAction);
  document.getElementById("builder").addEventListener("submit", function (ev) { ev.preventDefault(); });
  document.getElementById("run-query").addEventListener("click", runQuery);
  document.getElementById("open-save").addEventListener("click", openSave);
  document.getElementById("save-cancel").addEventListener("click", closeSave);
  document.getElementById("save-form").addEventListener("submit", submitSave);
  dialog.addEventListener("cancel", function () { setTimeout(function () { if (opener && opener.focus) opener.focus(); }, 0); });
  nameInput.addEventListener("input", checkName);
  intervalSelect.addEventListener("change", function () { syncWarmup(); updateForecast(); });
  warmupBox.addEventListener("change", function () { warmupWanted = warmupBox.checked; updateForecast(); });
  document.getElementById("draft-discard").addEventListener("click", discardDraft);
  suggestionButton.addEventListener("click", function () {
    nameInput.value = suggestionButton.getAttribute("data-name");
    suggestionButton.hidden = true;
    nameInput.focus();
    checkName();
  });
  loadSuggestions();
  render();
  scheduleEstimate();
  window.segmintBuilder = { definition: function () { return clone(doc); } };
})();
