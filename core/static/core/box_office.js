// Refreshes the box-office panel in place every few seconds (no page reload, no library).
(function () {
  "use strict";
  var panel = document.getElementById("box-office-panel");
  var status = document.getElementById("bo-status");
  if (!panel) { return; }
  var url = panel.dataset.refreshUrl;
  var every = Number(panel.dataset.refreshSeconds || 5) * 1000;
  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        panel.innerHTML = html;
        panel.dataset.refreshedAt = new Date().toISOString();
        status.textContent = "Refreshed at " + new Date().toLocaleTimeString() + ".";
      })
      .catch(function (error) { status.textContent = "Refresh failed (" + error.message + "); retrying."; })
      .finally(function () { window.setTimeout(refresh, every); });
  }
  window.setTimeout(refresh, every);
})();
