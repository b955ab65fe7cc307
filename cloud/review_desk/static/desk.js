// Review desk keys: r/n/u/s decide, 0-4 pick a grade, h toggles Grad-CAM, +/-/f zoom.
(function () {
  "use strict";
  var page = document.body.dataset.page;
  function typing(el) {
    return el && (el.tagName === "TEXTAREA" || el.tagName === "INPUT" || el.tagName === "SELECT");
  }
  if (page === "queue") {
    document.addEventListener("keydown", function (e) {
      var first = document.getElementById("open-first");
      if (e.key === "Enter" && first && !typing(document.activeElement)) { first.click(); }
    });
    return;
  }
  if (page !== "case") { return; }
  var scan = document.getElementById("scan");
  var cam = document.getElementById("gradcam");
  var toggle = document.getElementById("overlay-toggle");
  var label = document.getElementById("zoom-level");
  var zoom = 0; // 0 = fit to the pane; otherwise a factor of the full resolution
  var viewer = document.getElementById("viewer");
  function fitScale(img) {
    var w = img.naturalWidth || 1, h = img.naturalHeight || 1;
    return Math.min(viewer.clientWidth / w, viewer.clientHeight / h);
  }
  function apply() {
    [scan, cam].forEach(function (img) {
      // fit: the whole scan in the pane; zoomed: its pixels times `zoom`, scrolled in the pane
      var scale = zoom === 0 ? fitScale(img) : zoom;
      img.style.width = Math.round(img.naturalWidth * scale) + "px";
    });
    var shown = cam.hidden ? scan : cam;
    var pct = Math.round((zoom === 0 ? fitScale(shown) : zoom) * 100);
    label.textContent = (zoom === 0 ? "fit, " : "") + pct + "% of full resolution";
  }
  function step(up) {
    var shown = cam.hidden ? scan : cam;
    var current = zoom === 0 ? fitScale(shown) : zoom;
    zoom = Math.min(16, Math.max(0.1, up ? current * 1.5 : current / 1.5));
    apply();
  }
  function setOverlay(on) { cam.hidden = !on; scan.hidden = on; toggle.checked = on; apply(); }
  toggle.addEventListener("change", function () { setOverlay(toggle.checked); });
  document.getElementById("zoom-in").addEventListener("click", function () { step(true); });
  document.getElementById("zoom-out").addEventListener("click", function () { step(false); });
  document.getElementById("zoom-fit").addEventListener("click", function () { zoom = 0; apply(); });
  var form = document.getElementById("decision");
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    if (typing(document.activeElement)) {
      if (e.key === "Escape") { document.activeElement.blur(); }
      return;
    }
    if (e.key === "h") { setOverlay(cam.hidden); }
    else if (e.key === "+" || e.key === "=") { step(true); }
    else if (e.key === "-") { step(false); }
    else if (e.key === "f") { zoom = 0; apply(); }
    else if (form && /^[0-4]$/.test(e.key)) { document.getElementById("grade").value = e.key; }
    else if (form) {
      var button = form.querySelector('button[data-key="' + e.key + '"]');
      if (button) { e.preventDefault(); form.requestSubmit(button); }
    }
  });
  [scan, cam].forEach(function (img) { img.addEventListener("load", apply); });
  window.addEventListener("resize", apply);
  apply();
})();
