// Segmint web UI: htmx set-up (CSRF header, error messages), the charts and confirmation
// dialogs.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Exposed for page scripts (the builder sends it with fetch).
  window.segmint = window.segmint || {};
  window.segmint.csrfToken = csrfToken;

  function toast(message, isError) {
    var box = document.getElementById("toast");
    if (!box) return;
    box.textContent = message;
    box.classList.toggle("toast-error", !!isError);
    box.classList.add("toast-visible");
    clearTimeout(box._timer);
    box._timer = setTimeout(function () { box.classList.remove("toast-visible"); }, 6000);
  }
  window.segmint.toast = toast;

  function errorMessage(xhr) {
    var text = xhr.responseText || "";
    try {
      var body = JSON.parse(text);
      if (body && body.message) return body.message;
    } catch (e) { /* not JSON: an HTML error page */ }
    var doc = new DOMParser().parseFromString(text, "text/html");
    var alert = doc.querySelector('[role="alert"]');
    if (alert && alert.textContent.trim()) return alert.textContent.trim();
    return "The request failed (" + xhr.status + "). Reload the page and try again.";
  }

  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });
  document.addEventListener("htmx:responseError", function (event) {
    toast(errorMessage(event.detail.xhr), true);
    // A switch whose change was refused goes back to the state that is true.
    var elt = event.detail.elt;
    if (elt && elt.matches && elt.matches('input[type="checkbox"]')) {
      elt.checked = !elt.checked;
    }
  });
  document.addEventListener("htmx:sendError", function () {
    toast("Segmint could not be reached. Check the server is running, then retry.", true);
  });

  // --- charts: <div data-chart="ID"> + <script type="application/json" id="ID"> ----------
  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  // One point alone would get an x range of years: show a day either side instead.
  function xScale(spec) {
    var scale = { time: spec.time !== false };
    if (spec.daily && spec.x.length > 1) {
      // Half a day of room on each side so the first and last bars are whole.
      scale.range = function (u, min, max) { return [min - 43200, max + 43200]; };
    } else if (spec.x.length === 1) {
      var x = spec.x[0];
      scale.range = function () { return [x - 86400, x + 86400]; };
    }
    return scale;
  }

  // Bars always start at zero (a cut axis would exaggerate differences).
  function yScale(spec) {
    var bars = (spec.series || []).some(function (s) { return s.bars; });
    if (!bars) return {};
    return {
      range: function (u, min, max) {
        var low = Math.min(0, min || 0);
        var high = Math.max(0, max || 0);
        if (high === low) high = low + 1;
        return [low, high + (high - low) * 0.08];
      }
    };
  }

  // Daily data: one tick per day (or week), labelled with the date, never with hours.
  function xAxis(spec) {
    if (!spec.daily) return {};
    return {
      space: 50,
      incrs: [86400, 86400 * 7, 86400 * 28],
      values: function (u, vals) {
        return vals.map(function (v) { return new Date(v * 1000).toISOString().slice(5, 10); });
      }
    };
  }

  function drawChart(el) {
    if (el._drawn || typeof window.uPlot === "undefined") return;
    var source = document.getElementById(el.getAttribute("data-chart"));
    if (!source) return;
    var spec;
    try { spec = JSON.parse(source.textContent); } catch (e) { return; }
    if (!spec.x || spec.x.length === 0) return;
    var colors = [cssVar("--accent", "#2f6fde"), cssVar("--good", "#1f8a4c"), cssVar("--bad", "#c2413b")];
    var series = [{}];
    var data = [spec.x];
    (spec.series || []).forEach(function (s, i) {
      series.push({
        label: s.label,
        stroke: colors[i % colors.length],
        width: 2,
        fill: s.bars ? colors[i % colors.length] + "b3"
          : (i === 0 && spec.fill ? cssVar("--accent-soft", "rgba(47,111,222,0.12)") : undefined),
        paths: s.bars ? window.uPlot.paths.bars({ size: [0.7, 60] }) : undefined,
        points: { show: !s.bars && spec.x.length < 40 },
        value: function (u, v) { return v == null ? "—" : Number(v).toLocaleString(); }
      });
      data.push(s.values);
    });
    el._drawn = true;
    var width = Math.max(300, el.clientWidth || 800);
    var chart = new window.uPlot({
      width: width,
      height: spec.height || 240,
      series: series,
      scales: { x: xScale(spec), y: yScale(spec) },
      axes: [xAxis(spec), { values: function (u, vals) { return vals.map(function (v) { return Number(v).toLocaleString(); }); }, size: 70 }],
      legend: { show: true }
    }, data, el);
    el.setAttribute("data-ready", "true");
    window.addEventListener("resize", function () {
      chart.setSize({ width: Math.max(300, el.clientWidth), height: spec.height || 240 });
    });
  }

  function drawCharts(root) {
    (root || document).querySelectorAll("[data-chart]").forEach(drawChart);
  }

  // --- small helpers used by pages ------------------------------------------------------
  // <select data-navigate> : go to the chosen option's value (no inline handlers: CSP).
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("select[data-navigate]") && target.value) {
      window.location.assign(target.value);
    }
  });

  // Confirmation dialogs: <button data-open-dialog="ID"> opens <dialog id="ID">; a
  // [data-close-dialog] inside it closes it; focus goes back to the button that opened it.
  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target : null;
    if (!target) return;
    var opener = target.closest("[data-open-dialog]");
    if (opener) {
      var dialog = document.getElementById(opener.getAttribute("data-open-dialog"));
      if (dialog && typeof dialog.showModal === "function" && !dialog.open) {
        dialog._opener = opener;
        dialog.showModal();
      }
      return;
    }
    var closer = target.closest("[data-close-dialog]");
    if (closer) {
      var open = closer.closest("dialog");
      if (open && open.open) {
        open.close();
        if (open._opener && document.body.contains(open._opener)) open._opener.focus();
      }
    }
  });

  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSettle", function (event) { drawCharts(event.target); });
})();
