// Keeps an import's progress bar up to date, then reloads the page for the report.
(function () {
  "use strict";
  var section = document.getElementById("import-status");
  if (!section) {
    return;
  }
  var bar = document.getElementById("import-progress");
  var counts = document.getElementById("import-counts");
  var heading = document.getElementById("progress-heading");

  function show(status) {
    heading.textContent = status.state === "queued" ? "Waiting to start" : "Importing";
    if (!status.rows_total) {
      counts.textContent = "Reading the workbook";
      return;
    }
    bar.max = status.rows_total;
    bar.value = status.rows_done;
    counts.textContent = status.rows_done + " of " + status.rows_total + " rows, " +
      status.cases_done + " of " + status.cases_total + " cases";
  }

  function poll() {
    fetch(section.getAttribute("data-poll"), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (status) {
        if (status && (status.state === "done" || status.state === "failed")) {
          window.location.reload();
          return;
        }
        if (status) {
          show(status);
        }
        window.setTimeout(poll, status ? 500 : 2000);
      })
      .catch(function () {
        window.setTimeout(poll, 2000);
      });
  }

  window.setTimeout(poll, 500);
})();
