// The console works without this script; it only adds the token's copy button.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    var status = document.querySelector(".copied");
    if (!field) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var done = function (ok) {
        if (status) { status.textContent = ok ? "Token copied to the clipboard." : "Copy failed: select the token and copy it."; }
      };
      field.select();
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(field.value).then(function () { done(true); }, function () { done(false); });
      } else {
        done(document.execCommand && document.execCommand("copy"));
      }
    });
  });
});
