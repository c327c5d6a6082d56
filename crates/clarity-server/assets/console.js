// Clarity console: progressive enhancement only (every page is readable without it).
// Zoom on images, the saliency-overlay toggle, launching a sweep, resuming or probing one (also
// scoped to a case and cell), adding the probe to the report (POST JSON), the probe page's layer
// toggles and the live progress of a job (server-sent events).
// Talks to this server only.
(function () {
  "use strict";
  document.querySelectorAll("img.zoomable").forEach(function (img) {
    img.addEventListener("click", function () { img.classList.toggle("zoomed"); });
  });
  var toggle = document.getElementById("toggle-overlay");
  if (toggle) {
    toggle.addEventListener("change", function () {
      document.querySelectorAll("img.overlay").forEach(function (o) {
        o.style.display = toggle.checked ? "" : "none";
      });
    });
  }
  // Posts `body` to /api/v1/jobs and opens the job's page, or shows the error in `err`.
  var startJob = function (body, err) {
    err.textContent = "";
    fetch("/api/v1/jobs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (j) { return { ok: r.ok, body: j }; });
    }).then(function (r) {
      if (r.ok) { window.location.href = "/jobs/" + r.body.id; }
      else { err.textContent = r.body.error || "could not start the sweep"; }
    }).catch(function (e) { err.textContent = String(e); });
  };
  // The sweep page's Resume / Run probe buttons: {kind, sweep}.
  document.querySelectorAll("button.job-start").forEach(function (btn) {
    btn.addEventListener("click", function () {
      startJob({ kind: btn.getAttribute("data-kind"), sweep: btn.getAttribute("data-sweep") },
        document.getElementById("sweep-job-error"));
    });
  });
  // The sweep page's scoped probe: a case, a cell, regions, grid and top-k.
  var probeForm = document.getElementById("probe-form");
  if (probeForm) {
    probeForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var regions = probeForm.querySelector("input[name=probe-regions]:checked");
      startJob({
        kind: "probe",
        sweep: probeForm.getAttribute("data-sweep"),
        case: document.getElementById("probe-case").value,
        cell: Number(document.getElementById("probe-cell").value),
        regions: regions ? regions.value : "saliency",
        grid: Number(document.getElementById("probe-grid").value),
        top_k: Number(document.getElementById("probe-topk").value)
      }, document.getElementById("probe-form-error"));
    });
  }
  // The counterfactual console: layer toggles and the heatmap's opacity.
  var stack = document.getElementById("probe-stack");
  if (stack) {
    var heat = document.getElementById("probe-heatmap");
    var outlines = document.getElementById("probe-outlines");
    var opacity = document.getElementById("t-opacity");
    var bind = function (id, f) {
      var e = document.getElementById(id);
      if (e) { e.addEventListener("input", f); e.addEventListener("change", f); f(); }
    };
    bind("t-heatmap", function () {
      if (heat) { heat.style.display = document.getElementById("t-heatmap").checked ? "" : "none"; }
    });
    bind("t-opacity", function () {
      if (heat) { heat.style.opacity = String(opacity.value / 100); }
      var v = document.getElementById("opacity-value");
      if (v) { v.textContent = opacity.value; }
    });
    bind("t-outlines", function () {
      if (outlines) { outlines.classList.toggle("hide-evidence", !document.getElementById("t-outlines").checked); }
    });
    bind("t-controls", function () {
      if (outlines) { outlines.classList.toggle("hide-controls", !document.getElementById("t-controls").checked); }
    });
  }
  var form = document.getElementById("launch-form");
  if (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      startJob({ config: document.getElementById("config").value },
        document.getElementById("launch-error"));
    });
  }
  var postForm = document.getElementById("post-form");
  if (postForm) {
    postForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      startJob({
        toml: document.getElementById("toml").value,
        save_as: document.getElementById("save-as").value
      }, document.getElementById("post-error"));
    });
  }
  var job = document.getElementById("job");
  if (job) {
    var id = job.getAttribute("data-job");
    var set = function (k, v) { var e = document.getElementById(k); if (e) { e.textContent = v; } };
    var show = function (p) {
      document.getElementById("bar").value = p.percent;
      set("percent", p.percent);
      set("status", p.status);
      set("phase", p.phase);
      set("done", p.done);
      set("planned", p.planned === null ? "?" : p.planned);
      set("failed", p.failed);
      set("rate", p.rate);
      set("eta", p.eta_s === null ? "–" : p.eta_s);
      if (p.error) { set("job-error", p.error); }
      if (p.status === "finished") {
        document.querySelectorAll("a.job-result").forEach(function (a) { a.hidden = false; });
      }
      document.getElementById("cancel").disabled = p.status !== "running";
    };
    var es = new EventSource("/api/v1/jobs/" + id + "/events");
    es.addEventListener("progress", function (ev) {
      var p = JSON.parse(ev.data);
      show(p);
      if (p.status !== "running") { es.close(); }
    });
    document.getElementById("cancel").addEventListener("click", function () {
      fetch("/api/v1/jobs/" + id + "/cancel", { method: "POST" })
        .then(function (r) { return r.json(); })
        .then(function (j) { if (j.error) { set("job-error", j.error); } });
    });
  }
})();
