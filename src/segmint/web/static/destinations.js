// Segmint destinations UI: the Destinations / Logs tabs of the audience page and
// auto-submitting the platform chooser (confirmation dialogs: app.js). No inline handlers (CSP).
(function () {
  "use strict";

  var chosenTab = {}; // tablist id or label -> selected tab id, kept across htmx swaps

  function tabsOf(tablist) {
    return Array.prototype.slice.call(tablist.querySelectorAll('[role="tab"]'));
  }

  function selectTab(tab, focus) {
    var tablist = tab.closest('[role="tablist"]');
    if (!tablist) return;
    tabsOf(tablist).forEach(function (other) {
      var selected = other === tab;
      other.setAttribute("aria-selected", selected ? "true" : "false");
      other.setAttribute("tabindex", selected ? "0" : "-1");
      var panel = document.getElementById(other.getAttribute("aria-controls"));
      if (panel) panel.hidden = !selected;
    });
    chosenTab[tablist.getAttribute("aria-label") || ""] = tab.id;
    if (focus) tab.focus();
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target : null;
    if (!target) return;
    var tab = target.closest('[role="tab"]');
    if (tab && tab.closest(".sync-tabs")) {
      selectTab(tab, false);
      return;
    }
  });

  document.addEventListener("keydown", function (event) {
    var tab = event.target.closest ? event.target.closest('.sync-tabs [role="tab"]') : null;
    if (!tab) return;
    var tabs = tabsOf(tab.closest('[role="tablist"]'));
    var index = tabs.indexOf(tab);
    var next = null;
    if (event.key === "ArrowRight") next = tabs[(index + 1) % tabs.length];
    else if (event.key === "ArrowLeft") next = tabs[(index - 1 + tabs.length) % tabs.length];
    else if (event.key === "Home") next = tabs[0];
    else if (event.key === "End") next = tabs[tabs.length - 1];
    if (next) {
      event.preventDefault();
      selectTab(next, true);
    }
  });

  // After the panel is replaced (Instant Sync, link, unlink ...), keep the tab the user chose.
  document.addEventListener("htmx:afterSwap", function (event) {
    var root = event.detail && event.detail.target;
    if (!root || root.id !== "sync-panel") return;
    root.querySelectorAll('.sync-tabs').forEach(function (tablist) {
      var id = chosenTab[tablist.getAttribute("aria-label") || ""];
      var tab = id ? document.getElementById(id) : null;
      if (tab) selectTab(tab, false);
    });
  });

  // <select data-autosubmit>: submit its form when the choice changes.
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("select[data-autosubmit]") && target.form) {
      if (typeof target.form.requestSubmit === "function") target.form.requestSubmit();
      else target.form.submit();
    }
  });
})();
