// Warm Transfer: the small behaviours every page shares.
//
// - Clocks: every [data-since] element shows the time elapsed since that
//   RFC 3339 moment (m:ss, or h:mm:ss from an hour), ticking once a second;
//   data-until stops the clock at that moment. Clocks run on the server's
//   time: the page says when it was rendered (body[data-server-now]), and
//   the viewer's clock is corrected by the difference, so a PC whose clock
//   is off does not show callers waiting too long or too little.
// - [data-local-time] elements show their datetime in the viewer's time zone.
// - Errors from htmx actions: the server answers 4xx with a short text, which
//   htmx 2 does not swap; it is shown in #flash instead.
// - [data-live] (the bare attribute; live fragments carry it with their
//   event's name) shows whether the page's SSE stream is connected.
// - details[data-keep-open] with an id stay open, once the viewer opens
//   them, across the fragments the server pushes in their place.
// - The page's stream URL (sse-connect) follows the events it delivers, so
//   a stream htmx opens again resumes where the page is; an activity line
//   the page already shows is not added again.
//
// No eval and nothing inline: the Content-Security-Policy allows scripts
// from 'self' only.
(function () {
  "use strict";

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  // formatDuration matches views.formatDuration on the server.
  function formatDuration(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(s / 3600);
    var m = Math.floor(s / 60) % 60;
    var sec = s % 60;
    return h > 0 ? h + ":" + pad(m) + ":" + pad(sec) : m + ":" + pad(sec);
  }

  function parseTime(value) {
    if (!value) {
      return null;
    }
    var t = Date.parse(value);
    return isNaN(t) ? null : t;
  }

  // within returns root's elements matching selector, root included.
  function within(root, selector) {
    var found = [];
    if (!root || !root.querySelectorAll) {
      return found;
    }
    if (root.matches && root.matches(selector)) {
      found.push(root);
    }
    root.querySelectorAll(selector).forEach(function (el) {
      found.push(el);
    });
    return found;
  }

  // skew is how far the server's clock is ahead of the viewer's, read once
  // as the page loads (the page's trip from the server adds a little).
  var skew = null;

  function serverTime() {
    if (skew === null) {
      var rendered = parseTime(document.body && document.body.getAttribute("data-server-now"));
      if (rendered === null) {
        return Date.now();
      }
      skew = rendered - Date.now();
    }
    return Date.now() + skew;
  }

  function tick(root) {
    var now = serverTime();
    within(root || document.documentElement, "[data-since]").forEach(function (el) {
      var since = parseTime(el.getAttribute("data-since"));
      if (since === null) {
        return;
      }
      var until = parseTime(el.getAttribute("data-until"));
      var text = formatDuration((until === null ? now : until) - since);
      if (el.textContent !== text) {
        el.textContent = text;
      }
    });
  }

  function localTimes(root) {
    within(root || document.documentElement, "[data-local-time]").forEach(function (el) {
      var t = parseTime(el.getAttribute("datetime"));
      if (t === null) {
        return;
      }
      el.textContent = new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      el.title = new Date(t).toLocaleString();
    });
  }

  // Disclosures the viewer opened, by id: a pushed fragment replaces the
  // element, and would otherwise close it again at every change.
  var opened = {};

  function keepOpen(root) {
    within(root || document.documentElement, "details[data-keep-open]").forEach(function (el) {
      if (el.id && opened[el.id] && !el.open) {
        el.open = true;
      }
    });
  }

  // toggle does not bubble, so it is heard on the way down.
  document.addEventListener(
    "toggle",
    function (evt) {
      var el = evt.target;
      if (!el || !el.id || !el.matches || !el.matches("details[data-keep-open]")) {
        return;
      }
      if (el.open) {
        opened[el.id] = true;
      } else {
        delete opened[el.id];
      }
    },
    true
  );

  // Flash messages.

  var flashTimer = null;

  function flash(message, kind) {
    var el = document.getElementById("flash");
    if (!el) {
      return;
    }
    el.textContent = message;
    el.className = "flash alert " + (kind === "info" ? "alert-info" : "alert-error");
    el.hidden = false;
    window.clearTimeout(flashTimer);
    flashTimer = window.setTimeout(function () {
      el.hidden = true;
    }, 8000);
  }

  // responseMessage is the short text a 4xx carries; anything that looks
  // like a whole page is replaced by the status.
  function responseMessage(xhr) {
    var text = xhr && typeof xhr.responseText === "string" ? xhr.responseText.trim() : "";
    if (text.charAt(0) === "{") {
      try {
        var body = JSON.parse(text);
        text = body.message || body.error || "";
      } catch (e) {
        text = "";
      }
    }
    if (text === "" || text.charAt(0) === "<" || text.length > 300) {
      var status = xhr ? xhr.status : 0;
      return "The request failed" + (status ? " (" + status + (xhr.statusText ? " " + xhr.statusText : "") + ")" : "") + ".";
    }
    return text;
  }

  // csrfToken is the token the body's hx-headers carries, for requests that
  // do not go through htmx.
  function csrfToken() {
    var raw = document.body ? document.body.getAttribute("hx-headers") : null;
    if (!raw) {
      return "";
    }
    try {
      return JSON.parse(raw)["X-CSRF-Token"] || "";
    } catch (e) {
      return "";
    }
  }

  function setLive(state, text) {
    document.querySelectorAll('[data-live=""]').forEach(function (el) {
      el.setAttribute("data-state", state);
      el.textContent = text;
    });
  }

  document.addEventListener("htmx:responseError", function (evt) {
    flash(responseMessage(evt.detail && evt.detail.xhr));
  });
  document.addEventListener("htmx:sendError", function () {
    flash("Could not reach the server. Check your connection and try again.");
  });
  document.addEventListener("htmx:sseOpen", function () {
    setLive("open", "Live");
  });
  document.addEventListener("htmx:sseError", function () {
    setLive("error", "Reconnecting…");
  });
  // resumeAfter moves the "last" parameter of the stream URL elt belongs
  // to up to the event id the stream just delivered. A browser resuming a
  // stream by itself sends Last-Event-ID, but one whose reconnect was
  // refused (a 502 or 503 while the server restarts) gives up, and htmx
  // opens a new stream from the sse-connect URL: with the "last" the page
  // was rendered with, the server would replay every line since.
  function resumeAfter(elt, lastEventId) {
    var id = parseInt(lastEventId, 10);
    var source = elt && elt.closest ? elt.closest("[sse-connect], [data-sse-connect]") : null;
    if (!source || !(id > 0)) {
      return;
    }
    var attr = source.hasAttribute("sse-connect") ? "sse-connect" : "data-sse-connect";
    var url = new URL(source.getAttribute(attr), window.location.href);
    var last = parseInt(url.searchParams.get("last"), 10);
    if (last >= id) {
      return;
    }
    url.searchParams.set("last", String(id));
    source.setAttribute(attr, url.origin === window.location.origin ? url.pathname + url.search : url.href);
  }

  // eventIDs are the data-event-id values of the lines in an activity
  // message (parsed inert: a template runs and loads nothing).
  function eventIDs(html) {
    var t = document.createElement("template");
    t.innerHTML = html || "";
    var ids = [];
    t.content.querySelectorAll("[data-event-id]").forEach(function (el) {
      ids.push(el.getAttribute("data-event-id"));
    });
    return ids;
  }

  // An activity line the list already shows is not added again: a stream
  // reopened from an older point replays lines the page has.
  document.addEventListener("htmx:sseBeforeMessage", function (evt) {
    var list = evt.target;
    if (!list || list.id !== "activity" || !evt.detail) {
      return;
    }
    var ids = eventIDs(evt.detail.data);
    var shown = ids.filter(function (id) {
      return list.querySelector('[data-event-id="' + CSS.escape(id) + '"]') !== null;
    });
    if (ids.length > 0 && shown.length === ids.length) {
      evt.preventDefault();
      resumeAfter(list, evt.detail.lastEventId);
    }
  });

  // The activity list keeps the newest lines only; a long shift would
  // otherwise grow the page without bound.
  var maxActivity = 50;
  document.addEventListener("htmx:sseMessage", function (evt) {
    resumeAfter(evt.target, evt.detail && evt.detail.lastEventId);
    var list = document.getElementById("activity");
    while (list && list.children.length > maxActivity) {
      list.removeChild(list.lastElementChild);
    }
  });
  // New content (a first load or a fragment the server pushed) shows the
  // right times at once, not a second later.
  document.addEventListener("htmx:load", function (evt) {
    var elt = evt.detail && evt.detail.elt;
    tick(elt);
    localTimes(elt);
    keepOpen(elt);
  });
  document.addEventListener("click", function (evt) {
    var el = evt.target.closest ? evt.target.closest("#flash") : null;
    if (el) {
      el.hidden = true;
    }
  });

  function start() {
    tick();
    localTimes();
    window.setInterval(tick, 1000);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }

  window.WarmTransfer = window.WarmTransfer || {};
  window.WarmTransfer.flash = flash;
  window.WarmTransfer.csrfToken = csrfToken;
  window.WarmTransfer.formatDuration = formatDuration;
})();
