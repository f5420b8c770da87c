// One-click copy for the loading snippets of the table pages
// (templates/_coop100_snippets.html). Without this script the buttons stay
// hidden and the code is plain selectable text; served from the site, as the
// Content-Security-Policy allows no inline script.
document.addEventListener("DOMContentLoaded", function () {
  var status = document.getElementById("coop100-copy-status");
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var code = document.getElementById(button.getAttribute("data-copy"));
    if (!code || !navigator.clipboard) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(code.textContent).then(
        function () {
          if (status) {
            status.textContent = "Copied the " + button.getAttribute("data-tool") + " code.";
          }
        },
        function () {
          if (status) {
            status.textContent = "Could not copy; select the code and copy it instead.";
          }
        }
      );
    });
  });
});
