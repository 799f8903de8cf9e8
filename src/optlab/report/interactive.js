/* optlab report page (see optlab/report/interactive.py): draws the Plotly charts as their
 * section is shown, drives their toolbars, selects the problem shown, sorts the tables.
 * When the first charts are drawn, <html> gets data-ready="true". */
(function () {
  "use strict";

  var template = document.getElementById("optlab-template"); // absent from a page without charts
  var TEMPLATE = template ? JSON.parse(template.textContent) : null;
  var CONFIG = { displaylogo: false, responsive: true, showLink: false };
  var charts = new Map(); // plot element -> {spec, x: index of the x variant shown, own, ready}

  function render(plot) {
    if (charts.has(plot)) {
      return charts.get(plot).ready;
    }
    var spec = JSON.parse(document.getElementById(plot.id + "-spec").textContent);
    var layout = spec.figure.layout;
    layout.template = TEMPLATE;
    var entry = { spec: spec, x: 0, own: null, ready: null };
    entry.ready = Plotly.newPlot(plot, spec.figure.data, layout, CONFIG).then(function () {
      plot.dataset.rendered = "true";
    });
    charts.set(plot, entry);
    return entry.ready;
  }

  function shown(element) {
    return !element.closest("section.problem[hidden]");
  }

  function renderShown() {
    var plots = Array.prototype.filter.call(document.querySelectorAll("div.plot"), shown);
    return Promise.all(plots.map(render));
  }

  /* The x axis: swap in the per-trace arrays of another unit (the first unit's arrays,
   * the figure's own, are kept aside the first time). */
  function setX(plot, key) {
    var entry = charts.get(plot);
    var variants = entry.spec.x;
    var index = variants.findIndex(function (v) { return v.key === key; });
    if (index < 0 || index === entry.x) {
      return Promise.resolve();
    }
    if (!entry.own) {
      entry.own = {};
      var keys = Object.keys(variants.find(function (v, i) { return i > 0; }).traces);
      keys.forEach(function (name) {
        entry.own[name] = plot.data.map(function (trace) { return trace[name]; });
      });
    }
    entry.x = index;
    var traces = index === 0 ? entry.own : variants[index].traces;
    return Plotly.update(plot, traces, variants[index].layout);
  }

  function setY(plot, type) {
    return Plotly.relayout(plot, { "yaxis.type": type, "yaxis.autorange": true });
  }

  /* Each seed's curve: shown where its optimizer is shown, "legendonly" where the legend
   * hid it (a later legend click shows it with its group), hidden when switched off. */
  function setSeeds(plot, on) {
    var indices = [];
    var visible = [];
    plot.data.forEach(function (trace, i) {
      if (trace.meta !== "seed") {
        return;
      }
      var mean = plot.data.find(function (t) {
        return t.meta === "mean" && t.legendgroup === trace.legendgroup;
      });
      var hidden = mean && mean.visible === "legendonly";
      indices.push(i);
      visible.push(on ? (hidden ? "legendonly" : true) : false);
    });
    return indices.length ? Plotly.restyle(plot, { visible: visible }, indices) : Promise.resolve();
  }

  function toolbarPlot(element) {
    var bar = element.closest(".controls");
    return bar ? document.getElementById(bar.dataset.plot) : null;
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest(".controls button[data-value]");
    if (!button) {
      return;
    }
    var plot = toolbarPlot(button);
    var group = button.closest("[data-control]");
    var value = button.dataset.value;
    render(plot).then(function () {
      return group.dataset.control === "x" ? setX(plot, value) : setY(plot, value);
    }).then(function () {
      group.querySelectorAll("button").forEach(function (b) {
        b.setAttribute("aria-pressed", b === button ? "true" : "false");
      });
    });
  });

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.dataset && box.dataset.control === "seeds") {
      var plot = toolbarPlot(box);
      render(plot).then(function () { return setSeeds(plot, box.checked); });
    }
  });

  /* Problem sections and the selector. */
  function wrapSections() {
    var sections = [];
    document.querySelectorAll("h2.problem").forEach(function (heading) {
      var section = document.createElement("section");
      section.className = "problem";
      section.dataset.problem = heading.textContent;
      heading.parentNode.insertBefore(section, heading);
      var node = heading;
      while (node && !(node !== heading && node.nodeType === 1 && /^H[12]$/.test(node.tagName))) {
        var next = node.nextSibling;
        section.appendChild(node);
        node = next;
      }
      sections.push(section);
    });
    return sections;
  }

  function addPicker(sections) {
    if (!sections.length) {
      return;
    }
    var nav = document.createElement("nav");
    nav.id = "problem-picker";
    var label = document.createElement("label");
    label.textContent = "Problem";
    var select = document.createElement("select");
    select.id = "problem-select";
    label.appendChild(select);
    var all = new Option("all problems (" + sections.length + ")", "");
    select.appendChild(all);
    sections.forEach(function (section) {
      select.appendChild(new Option(section.dataset.problem, section.dataset.problem));
    });
    var hint = document.createElement("span");
    hint.className = "hint";
    hint.textContent = "charts: click a legend entry to hide it, double-click to show it alone; "
      + "drag to zoom, double-click to reset; click a table header to sort";
    nav.appendChild(label);
    nav.appendChild(hint);
    sections[0].parentNode.insertBefore(nav, sections[0]);

    function show(name) {
      sections.forEach(function (section) {
        section.hidden = Boolean(name) && section.dataset.problem !== name;
      });
      return renderShown();
    }
    select.addEventListener("change", function () { show(select.value); });
    function fromHash() {
      var target = location.hash ? document.getElementById(decodeURIComponent(location.hash.slice(1))) : null;
      var section = target ? target.closest("section.problem") : null;
      return section ? section.dataset.problem : null;
    }
    window.addEventListener("hashchange", function () {
      var name = fromHash();
      if (name) {
        select.value = name;
        show(name);
      }
    });
    select.value = fromHash() || sections[0].dataset.problem;
    sections.forEach(function (section) {
      section.hidden = section.dataset.problem !== select.value;
    });
  }

  /* Sortable tables: numbers (the leading number of a cell) as numbers, "-" last. */
  var NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?/i;

  function sortKey(cell) {
    var text = cell.textContent.trim();
    if (text === "" || text === "-" || /^-\s/.test(text) || /^nan/i.test(text)) {
      return null;
    }
    if (/^-?inf/i.test(text)) {
      return text[0] === "-" ? -Infinity : Infinity;
    }
    var match = text.match(NUMBER);
    return match ? parseFloat(match[0]) : text.toLowerCase();
  }

  function compare(a, b) {
    if (a === b) { return 0; }
    if (a === null) { return 1; }
    if (b === null) { return -1; }
    if (typeof a !== typeof b) { return typeof a === "number" ? -1 : 1; }
    return typeof a === "number" ? a - b : a.localeCompare(b);
  }

  function sortable(table) {
    var headers = table.querySelectorAll("thead th");
    var body = table.tBodies[0];
    if (!body) {
      return;
    }
    headers.forEach(function (header, column) {
      header.title = "sort by this column";
      header.addEventListener("click", function () {
        var descending = header.getAttribute("aria-sort") === "ascending";
        headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
        header.setAttribute("aria-sort", descending ? "descending" : "ascending");
        var rows = Array.prototype.map.call(body.rows, function (row, index) {
          return { row: row, index: index, key: sortKey(row.cells[column] || row) };
        });
        rows.sort(function (a, b) {
          var order = compare(a.key, b.key);
          if (descending && a.key !== null && b.key !== null) { order = -order; }
          return order || a.index - b.index;
        });
        rows.forEach(function (item) { body.appendChild(item.row); });
      });
    });
  }

  addPicker(wrapSections());
  document.querySelectorAll("table").forEach(sortable);
  renderShown().then(function () {
    document.documentElement.dataset.ready = "true";
  });
})();
