// The head view: pick a layer and head; lines join each query token (left) to the key
// tokens (right) it attends to, opacity = attention weight. Hover a token to show only its
// lines. Reads the recorded patterns embedded in the page; draws, computes nothing else.
(function () {
  "use strict";
  var holder = document.getElementById("head-view-data");
  if (!holder) { return; }
  var data = JSON.parse(holder.textContent);
  var svg = document.getElementById("head-view-svg");
  var layerSel = document.getElementById("head-view-layer");
  var headSel = document.getElementById("head-view-head");
  var caption = document.getElementById("head-view-caption");
  var NS = "http://www.w3.org/2000/svg";
  var n = data.tokens.length, rowH = 20, top = 24, left = 10, colW = 150, gap = 220;
  var width = left + colW + gap + colW + 10, height = top + rowH * n + 10;
  svg.setAttribute("viewBox", "0 0 " + width + " " + height);
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));

  function option(sel, value, text) {
    var o = document.createElement("option");
    o.value = String(value); o.textContent = text; sel.appendChild(o);
  }
  function headName(l, h) {
    var c = data.circuit[l + "," + h];
    return "H" + h + (c ? " (" + c + ")" : "");
  }
  for (var l = 0; l < data.layers; l++) { option(layerSel, l, "L" + l); }
  function fillHeads() {
    var l = Number(layerSel.value);
    while (headSel.firstChild) { headSel.removeChild(headSel.firstChild); }
    for (var h = 0; h < data.heads; h++) { option(headSel, h, headName(l, h)); }
  }
  function el(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function short(t) { return t.length > 18 ? t.slice(0, 17) + "\u2026" : t; }
  function draw() {
    var l = Number(layerSel.value), h = Number(headSel.value);
    var a = data.patterns[l][h];
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    if (a === null) {
      svg.appendChild(el("text", {x: left, y: 14}, "not included: the page carries the " +
        "circuit's heads first and stops at its size limit"));
      caption.textContent = "L" + l + headName(l, h) + ": pattern not included in this report.";
      return;
    }
    svg.appendChild(el("text", {x: left, y: 14, "font-weight": "bold"}, "query"));
    svg.appendChild(el("text", {x: left + colW + gap, y: 14, "font-weight": "bold"}, "key"));
    var lines = el("g", {"class": "attn-lines"});
    svg.appendChild(lines);
    for (var q = 0; q < n; q++) {
      for (var k = 0; k < n; k++) {
        var w = a[q][k];
        if (w < 0.02) { continue; }
        var ln = el("line", {
          x1: left + colW, y1: top + rowH * q + 6, x2: left + colW + gap, y2: top + rowH * k + 6,
          stroke: "#b2182b", "stroke-width": String(1 + 3 * w), "stroke-opacity": String(w),
          "data-q": String(q), "data-k": String(k)
        });
        ln.appendChild(el("title", {}, "query " + q + " \u2192 key " + k + ": " + w.toFixed(2)));
        lines.appendChild(ln);
      }
    }
    for (var i = 0; i < n; i++) {
      var tq = el("text", {x: left + colW - 6, y: top + rowH * i + 10, "text-anchor": "end",
        "data-q": String(i)}, i + ":" + short(data.tokens[i]));
      var tk = el("text", {x: left + colW + gap + 6, y: top + rowH * i + 10,
        "data-k": String(i)}, i + ":" + short(data.tokens[i]));
      svg.appendChild(tq); svg.appendChild(tk);
    }
    caption.textContent = "L" + l + headName(l, h) + " on example 1: line opacity and width = " +
      "attention weight (weights under 0.02 not drawn); hover a token to isolate its lines.";
  }
  function focus(attr, idx) {
    var all = svg.querySelectorAll("line");
    for (var i = 0; i < all.length; i++) {
      var on = idx === null || all[i].getAttribute(attr) === idx;
      all[i].style.display = on ? "" : "none";
    }
  }
  svg.addEventListener("mouseover", function (ev) {
    var t = ev.target;
    if (t.hasAttribute && t.hasAttribute("data-q") && t.tagName === "text") {
      focus("data-q", t.getAttribute("data-q"));
    } else if (t.hasAttribute && t.hasAttribute("data-k") && t.tagName === "text") {
      focus("data-k", t.getAttribute("data-k"));
    }
  });
  svg.addEventListener("mouseleave", function () { focus(null, null); });
  layerSel.addEventListener("change", function () { fillHeads(); draw(); });
  headSel.addEventListener("change", draw);
  layerSel.value = String(data.start[0]);
  fillHeads();
  headSel.value = String(data.start[1]);
  draw();
})();
