// Overview: live values by server-sent events (/api/stream), and the speed achieved
// (simulated seconds per wall second, over the last updates).
(function () {
  "use strict";
  var cells = document.querySelectorAll("[data-tag]");
  if (!cells.length) { return; }
  var names = [];
  cells.forEach(function (c) { names.push(c.getAttribute("data-tag")); });
  var src = new EventSource("/api/stream?tags=" + encodeURIComponent(names.join(",")));
  var first = null;
  function fmt(v) {
    if (v === null || v === undefined) { return "NaN"; }
    return Number(v).toPrecision(4).replace(/\.?0+$/, "");
  }
  src.onmessage = function (ev) {
    var d = JSON.parse(ev.data);
    Object.keys(d.tags).forEach(function (n) {
      var t = d.tags[n];
      var v = document.querySelector('[data-tag="' + n + '"]');
      var q = document.querySelector('[data-quality="' + n + '"]');
      if (v) { v.textContent = fmt(t.value); }
      if (q) { q.textContent = t.quality; }
    });
    var ph = document.getElementById("f-phase");
    if (ph) { ph.textContent = d.phase || "-"; }
    var now = performance.now() / 1000.0;
    if (first === null) { first = [now, d.time_s]; return; }
    if (now - first[0] > 0.5) {
      document.getElementById("speed").textContent =
        ((d.time_s - first[1]) / (now - first[0])).toFixed(1) + "x";
    }
  };
  src.addEventListener("expired", function () { src.close(); window.location = "/login?expired=1"; });
  src.addEventListener("stopped", function () { src.close(); });
})();
