// login.js: trade the one-time code in the address's fragment for a
// session cookie (docs/web.md, "Logging in"), then open the dashboard.
"use strict";

(function () {
  var CSRF_KEY = "shoal.csrf";

  function show(text) {
    var el = document.getElementById("login-status");
    if (el) {
      el.textContent = text;
    }
  }

  // The code is in the fragment, which no server and no Referer ever sees;
  // take it out of the address bar (and the history) at once.
  var code = window.location.hash.replace(/^#/, "");
  window.history.replaceState(null, "", window.location.pathname);

  if (!/^[0-9A-Za-z_-]{16,128}$/.test(code)) {
    show("This address holds no login code. Run `shoal web` in a terminal " +
         "and open the address it prints.");
    return;
  }

  fetch("/api/v1/web/session", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ code: code }),
    credentials: "same-origin",
    cache: "no-store"
  }).then(function (resp) {
    return resp.json().catch(function () { return null; }).then(function (doc) {
      if (resp.ok && doc && typeof doc.csrf === "string") {
        // localStorage is per origin, port included: a server on another
        // port of 127.0.0.1, which would get the cookie, cannot read it.
        try {
          window.localStorage.setItem(CSRF_KEY, doc.csrf);
        } catch (e) {
          show("Logged in, but this browser does not let the page keep its " +
               "session token (site data blocked?): allow it for this address " +
               "and run `shoal web` again.");
          return;
        }
        window.location.replace("/");
        return;
      }
      var err = (doc && doc.error) || {};
      if (err.code === "bad_code") {
        show("This login code has expired or was already used (a code works " +
             "once, for 60 seconds). Run `shoal web` again.");
      } else if (err.code === "too_many_failures") {
        show("Too many wrong login codes from this machine: wait a minute, " +
             "then run `shoal web` again.");
      } else {
        show("Logging in failed: " + (err.message || ("HTTP " + resp.status)) +
             ". Run `shoal web` again.");
      }
    });
  }).catch(function () {
    show("The shoal daemon does not answer. Is it running (`shoal status`)?");
  });
})();
