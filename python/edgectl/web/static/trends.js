// Trends: the history of a tag (min/max downsampled by the server, /api/history), its loop's
// setpoint when the tag is a loop's PV, phase changes and alarms as markers, and live points
// appended from the server-sent events (/api/stream). Charts by dygraphs (vendor/).
(function () {
  "use strict";
  var chartDiv = document.getElementById("chart");
  var tagSel = document.getElementById("tag");
  var winSel = document.getElementById("window");
  var loops = JSON.parse(chartDiv.getAttribute("data-loops") || "{}");
  var graph = null, src = null, rows = [], markers = [], nlive = 0, spTag = null;

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (r.status === 401) { window.location = "/login?expired=1"; throw new Error("401"); }
      return r.json();
    });
  }
  function spOf(tag) {
    // a loop's PV (or its setpoint tag itself): the loop's setpoint tag is "<loop>.sp"
    var found = null;
    Object.keys(loops).forEach(function (l) {
      if (loops[l] === tag && tag !== l + ".sp") { found = l + ".sp"; }
    });
    return Promise.resolve(found);
  }
  function underlay(ctx, area, g) {
    markers.forEach(function (m) {
      var x = g.toDomXCoord(m.time_s / 3600.0);
      if (x < area.x || x > area.x + area.w) { return; }
      ctx.strokeStyle = m.kind === "phase" ? "#0969da" : "#cf222e";
      ctx.beginPath(); ctx.moveTo(x, area.y); ctx.lineTo(x, area.y + area.h); ctx.stroke();
      ctx.fillStyle = ctx.strokeStyle; ctx.fillText(m.label, x + 3, area.y + 12);
    });
  }
  function draw(tag, unit) {
    var labels = spTag ? ["time (h)", tag, spTag] : ["time (h)", tag];
    var opts = {
      labels: labels, ylabel: tag + (unit ? " (" + unit + ")" : ""), xlabel: "run time (h)",
      connectSeparatedPoints: true, labelsDiv: document.getElementById("legend"),
      underlayCallback: underlay, legend: "always"
    };
    if (graph) { graph.updateOptions(Object.assign({ file: rows }, opts)); }
    else { graph = new Dygraph(chartDiv, rows, opts); }
    document.getElementById("npoints").textContent = String(rows.length);
  }
  function load() {
    var tag = tagSel.value, win = Number(winSel.value);
    if (src) { src.close(); src = null; }
    getJSON("/api/info").then(function (info) {
      var end = info.time_s, start = win > 0 ? Math.max(0, end - win) : 0;
      var q = "&start_s=" + start + "&end_s=" + end + "&buckets=" +
        Math.max(200, Math.min(2000, chartDiv.clientWidth || 800));
      return spOf(tag).then(function (sp) {
        spTag = sp;
        var reqs = [getJSON("/api/history?tag=" + encodeURIComponent(tag) + q),
                    getJSON("/api/markers")];
        if (sp) { reqs.push(getJSON("/api/history?tag=" + encodeURIComponent(sp) + q)); }
        return Promise.all(reqs);
      });
    }).then(function (res) {
      var h = res[0];
      markers = res[1];
      rows = h.time_s.map(function (t, i) {
        return spTag ? [t / 3600.0, h.value[i], null] : [t / 3600.0, h.value[i]];
      });
      if (spTag) {
        res[2].time_s.forEach(function (t, i) { rows.push([t / 3600.0, null, res[2].value[i]]); });
        rows.sort(function (a, b) { return a[0] - b[0]; });
      }
      if (!rows.length) { rows = spTag ? [[0, null, null]] : [[0, null]]; }
      draw(tag, h.unit);
      live(tag, h.unit);
    });
  }
  function live(tag, unit) {
    var names = spTag ? [tag, spTag] : [tag];
    src = new EventSource("/api/stream?tags=" + encodeURIComponent(names.join(",")));
    var lastT = null;
    src.onmessage = function (ev) {
      var d = JSON.parse(ev.data), t = d.tags[tag];
      if (!t || t.time_s === lastT) { return; }
      lastT = t.time_s;
      var row = [t.time_s / 3600.0, t.value];
      if (spTag) { row.push(d.tags[spTag] ? d.tags[spTag].value : null); }
      rows.push(row);
      nlive += 1;
      document.getElementById("nlive").textContent = String(nlive);
      document.getElementById("last-value").textContent = String(t.value);
      if (nlive % 4 === 1 || rows.length < 50) { draw(tag, unit); }
      else { document.getElementById("npoints").textContent = String(rows.length); }
    };
    src.addEventListener("expired", function () { src.close(); window.location = "/login?expired=1"; });
  }
  tagSel.addEventListener("change", function () { graph = null; chartDiv.innerHTML = ""; load(); });
  winSel.addEventListener("change", load);
  load();
})();
