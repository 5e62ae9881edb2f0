// Warm Transfer: the agent's browser phone.
//
// The console uses one Phone: start(), accept(), reject(), hangup(), its
// state ("connecting", "ready", "ringing", "in call", "error: <reason>") and
// the events "state", "incoming" and "disconnected". Two backends sit behind
// it, chosen by #phone's data-mode:
//
//   "twilio"     the Twilio Voice JS SDK 2.x (Twilio.Device), with an Access
//                Token from data-token-url, renewed before it expires;
//   "simulator"  the Twilio simulator's phone API: its SSE stream at
//                data-sim-events-url, and accept/reject/hangup as POSTs to
//                data-sim-call-url with {sid} filled in.
//
// Buttons with data-phone-action="accept|reject|hangup" anywhere in the page,
// including ones htmx swaps in later, call the matching method. The state is
// shown in #phone-state. No eval and nothing inline (CSP 'self').
(function () {
  "use strict";

  var ACCEPT_WINDOW_MS = 15000;

  function csrfToken() {
    if (window.WarmTransfer && window.WarmTransfer.csrfToken) {
      return window.WarmTransfer.csrfToken();
    }
    return "";
  }

  function flash(message, kind) {
    if (window.WarmTransfer && window.WarmTransfer.flash) {
      window.WarmTransfer.flash(message, kind);
    }
  }

  function errorText(err) {
    if (!err) {
      return "unknown error";
    }
    return err.message || err.explanation || String(err);
  }

  // post sends a same-origin POST with the CSRF token and resolves with the
  // response, or rejects with the server's short error message.
  function post(url) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrfToken(), Accept: "application/json" },
    }).then(function (res) {
      if (res.ok) {
        return res;
      }
      return res.text().then(function (text) {
        var message = text.trim();
        try {
          var body = JSON.parse(message);
          message = body.message || body.error || message;
        } catch (e) {
          // a plain-text answer
        }
        if (message === "" || message.charAt(0) === "<") {
          message = res.status + " " + res.statusText;
        }
        throw new Error(message);
      });
    });
  }

  // Phone is what the console uses, whatever the backend.
  function Phone(backend) {
    this.state = "connecting";
    this.backend = backend;
    this.pending = null; // an accept or reject pressed before the call reached the phone
    this.target = new EventTarget();
  }

  Phone.prototype.on = function (name, fn) {
    this.target.addEventListener(name, function (evt) {
      fn(evt.detail || {});
    });
  };

  Phone.prototype.emit = function (name, detail) {
    this.target.dispatchEvent(new CustomEvent(name, { detail: detail || {} }));
  };

  Phone.prototype.setState = function (state) {
    if (this.state === state) {
      return;
    }
    this.state = state;
    this.emit("state", { state: state });
  };

  Phone.prototype.fail = function (err) {
    this.setState("error: " + errorText(err));
  };

  Phone.prototype.start = function () {
    var phone = this;
    this.setState("connecting");
    return Promise.resolve()
      .then(function () {
        return phone.backend.start(phone);
      })
      .catch(function (err) {
        phone.fail(err);
      });
  };

  // incoming is called by a backend when a call rings the phone.
  Phone.prototype.incoming = function (detail) {
    this.setState("ringing");
    this.emit("incoming", detail);
    var pending = this.pending;
    this.pending = null;
    if (pending && Date.now() < pending.until) {
      this.run(pending.action);
    }
  };

  // ended is called by a backend when the call it had is over.
  Phone.prototype.ended = function (detail) {
    this.pending = null;
    this.setState("ready");
    this.emit("disconnected", detail);
  };

  Phone.prototype.run = function (action) {
    var phone = this;
    return Promise.resolve()
      .then(function () {
        return phone.backend[action]();
      })
      .catch(function (err) {
        flash("Phone: " + errorText(err));
        phone.emit("actionfailed", { action: action, error: errorText(err) });
      });
  };

  // answer runs accept or reject now if the call is ringing the phone, or
  // as soon as it does: the console can show the offer a moment before the
  // call reaches the phone.
  Phone.prototype.answer = function (action) {
    if (this.backend.ringing()) {
      return this.run(action);
    }
    if (this.state.indexOf("error") === 0) {
      flash("Your phone is not connected: " + this.state.slice("error: ".length));
      this.emit("actionfailed", { action: action, error: this.state });
      return Promise.resolve();
    }
    var pending = { action: action, until: Date.now() + ACCEPT_WINDOW_MS };
    var phone = this;
    this.pending = pending;
    flash("Waiting for the call to reach your phone…", "info");
    window.setTimeout(function () {
      if (phone.pending === pending) {
        phone.pending = null;
        flash("The call did not reach your phone (" + phone.state + ").");
        phone.emit("actionfailed", { action: action, error: "not ringing" });
      }
    }, ACCEPT_WINDOW_MS);
    return Promise.resolve();
  };

  Phone.prototype.accept = function () {
    return this.answer("accept");
  };

  Phone.prototype.reject = function () {
    return this.answer("reject");
  };

  Phone.prototype.hangup = function () {
    return this.run("hangup");
  };

  // twilioBackend drives the Twilio Voice JS SDK 2.x.
  function twilioBackend(cfg) {
    var device = null;
    var call = null;

    function fetchToken() {
      return post(cfg.tokenURL)
        .then(function (res) {
          return res.json();
        })
        .then(function (body) {
          if (!body || !body.token) {
            throw new Error("the server sent no token");
          }
          return body.token;
        });
    }

    function watch(phone, c) {
      c.on("accept", function () {
        phone.setState("in call");
      });
      var over = function (reason) {
        return function () {
          if (call === c) {
            call = null;
            phone.ended({ reason: reason });
          }
        };
      };
      c.on("disconnect", over("disconnected"));
      c.on("cancel", over("canceled"));
      c.on("reject", over("rejected"));
      // A call's error (media or signalling failing) is the phone's state,
      // with its reason, until the call ends: a message that fades would
      // leave the agent on a silent line that says "in call".
      c.on("error", function (err) {
        if (call === c) {
          phone.fail(err);
        }
        flash("Phone: " + errorText(err));
      });
    }

    return {
      start: function (phone) {
        if (typeof window.Twilio === "undefined" || !window.Twilio.Device) {
          throw new Error("the Twilio Voice SDK did not load");
        }
        if (!cfg.tokenURL) {
          throw new Error("no token URL");
        }
        return fetchToken().then(function (token) {
          device = new window.Twilio.Device(token, { closeProtection: true });
          device.on("registering", function () {
            if (!call) {
              phone.setState("connecting");
            }
          });
          device.on("registered", function () {
            if (!call) {
              phone.setState("ready");
            }
          });
          device.on("unregistered", function () {
            if (!call) {
              phone.setState("connecting");
            }
          });
          device.on("error", function (err) {
            phone.fail(err);
          });
          device.on("incoming", function (c) {
            if (call) {
              c.reject();
              return;
            }
            call = c;
            watch(phone, c);
            var params = c.parameters || {};
            phone.incoming({ sid: params.CallSid || "", from: params.From || "", to: params.To || "" });
          });
          device.on("tokenWillExpire", function () {
            fetchToken()
              .then(function (fresh) {
                device.updateToken(fresh);
              })
              .catch(function (err) {
                phone.fail(err);
              });
          });
          return device.register();
        });
      },
      ringing: function () {
        return call !== null && call.status() === "pending";
      },
      accept: function () {
        if (!call) {
          throw new Error("no call is ringing");
        }
        call.accept();
      },
      reject: function () {
        if (!call) {
          throw new Error("no call is ringing");
        }
        call.reject();
      },
      hangup: function () {
        if (!call) {
          throw new Error("you are not on a call");
        }
        call.disconnect();
      },
    };
  }

  // simulatorBackend drives a simulated phone through the simulator's API.
  function simulatorBackend(cfg) {
    var source = null;
    var ringingSid = null;
    var activeSid = null;

    function callURL(sid, action) {
      return cfg.simCallURL.split("{sid}").join(encodeURIComponent(sid)) + "/" + action;
    }

    function listen(name, fn) {
      source.addEventListener(name, function (evt) {
        var ev;
        try {
          ev = JSON.parse(evt.data);
        } catch (e) {
          return;
        }
        if (ev && ev.call_sid) {
          fn(ev);
        }
      });
    }

    return {
      start: function (phone) {
        if (!cfg.simEventsURL || !cfg.simCallURL) {
          throw new Error("the simulator's phone URLs are missing");
        }
        source = new EventSource(cfg.simEventsURL);
        source.onopen = function () {
          // The stream announces every call ringing the phone right after
          // it opens, so what rang before a reconnect is forgotten here.
          ringingSid = null;
          phone.setState(activeSid ? "in call" : "ready");
        };
        source.onerror = function () {
          if (source.readyState === EventSource.CLOSED) {
            phone.fail(new Error("the simulator's phone stream closed"));
          } else if (!activeSid) {
            phone.setState("connecting");
          }
        };
        listen("incoming", function (ev) {
          if (activeSid || ringingSid === ev.call_sid) {
            return;
          }
          ringingSid = ev.call_sid;
          phone.incoming({ sid: ev.call_sid, from: ev.from || "", to: ev.to || "" });
        });
        listen("accepted", function (ev) {
          if (ev.call_sid === ringingSid) {
            ringingSid = null;
            activeSid = ev.call_sid;
            phone.setState("in call");
          }
        });
        var over = function (reason) {
          return function (ev) {
            if (ev.call_sid !== ringingSid && ev.call_sid !== activeSid) {
              return;
            }
            ringingSid = null;
            activeSid = null;
            phone.ended({ sid: ev.call_sid, reason: reason, status: ev.status || "" });
          };
        };
        listen("canceled", over("canceled"));
        listen("disconnected", over("disconnected"));
      },
      ringing: function () {
        return ringingSid !== null;
      },
      accept: function () {
        if (!ringingSid) {
          throw new Error("no call is ringing");
        }
        return post(callURL(ringingSid, "accept"));
      },
      reject: function () {
        if (!ringingSid) {
          throw new Error("no call is ringing");
        }
        return post(callURL(ringingSid, "reject"));
      },
      hangup: function () {
        var sid = activeSid || ringingSid;
        if (!sid) {
          throw new Error("you are not on a call");
        }
        return post(callURL(sid, "hangup"));
      },
    };
  }

  function slug(state) {
    if (state.indexOf("error") === 0) {
      return "error";
    }
    return state.replace(/\s+/g, "-");
  }

  function showState(state) {
    var el = document.getElementById("phone-state");
    if (el) {
      el.textContent = state;
      el.setAttribute("data-state", slug(state));
    }
    document.body.setAttribute("data-phone", slug(state));
  }

  // Page title while ringing, so an agent in another tab notices.
  var baseTitle = document.title;

  function start() {
    var el = document.getElementById("phone");
    if (!el) {
      return;
    }
    baseTitle = document.title;
    var cfg = {
      mode: el.getAttribute("data-mode") || "",
      identity: el.getAttribute("data-identity") || "",
      tokenURL: el.getAttribute("data-token-url") || "",
      simEventsURL: el.getAttribute("data-sim-events-url") || "",
      simCallURL: el.getAttribute("data-sim-call-url") || "",
    };
    var backend;
    if (cfg.mode === "twilio") {
      backend = twilioBackend(cfg);
    } else if (cfg.mode === "simulator") {
      backend = simulatorBackend(cfg);
    } else {
      showState("error: unknown phone mode " + JSON.stringify(cfg.mode));
      return;
    }
    var phone = new Phone(backend);
    phone.on("state", function (detail) {
      showState(detail.state);
      document.title = detail.state === "ringing" ? "Ringing · " + baseTitle : baseTitle;
    });
    // A button that failed is usable again; one that worked goes away with
    // the fragment the server pushes next.
    phone.on("actionfailed", function () {
      document.querySelectorAll("[data-phone-action][data-busy]").forEach(function (b) {
        b.removeAttribute("data-busy");
        b.disabled = false;
      });
    });
    phone.on("disconnected", function () {
      document.querySelectorAll("[data-phone-action][data-busy]").forEach(function (b) {
        b.removeAttribute("data-busy");
        b.disabled = false;
      });
    });

    document.addEventListener("click", function (evt) {
      var button = evt.target.closest ? evt.target.closest("[data-phone-action]") : null;
      if (!button || button.disabled) {
        return;
      }
      var action = button.getAttribute("data-phone-action");
      if (action !== "accept" && action !== "reject" && action !== "hangup") {
        return;
      }
      evt.preventDefault();
      var group = button.closest("section, form, div") || button;
      group.querySelectorAll("[data-phone-action]").forEach(function (b) {
        b.setAttribute("data-busy", "");
        b.disabled = true;
      });
      phone[action]();
    });

    window.WarmTransfer = window.WarmTransfer || {};
    window.WarmTransfer.phone = phone;
    showState(phone.state);
    phone.start();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
