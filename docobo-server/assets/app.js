// Docobo's dashboard: times shown in the reader's zone, a countdown to each end of access, and
// live feeds (Server-Sent Events) with a Pause control. Everything works without this file; it
// only makes times local and lists live.
"use strict";
(function () {
  function local(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var at = new Date(el.getAttribute("datetime"));
      if (!isNaN(at)) { el.textContent = at.toLocaleString(); }
    });
  }
  function left(ms) {
    if (ms <= 0) { return "ended"; }
    var s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600);
    var m = Math.floor(s % 3600 / 60), sec = s % 60;
    var pad = function (n) { return n < 10 ? "0" + n : "" + n; };
    return (d > 0 ? d + "d " : "") + pad(h) + ":" + pad(m) + ":" + pad(sec);
  }
  function tick() {
    document.querySelectorAll("[data-until]").forEach(function (el) {
      el.textContent = left(new Date(el.getAttribute("data-until")) - Date.now());
    });
  }
  // Items carry data-order (zero-padded, so text order is their order); newest first.
  function place(feed, item) {
    var old = document.getElementById(item.id);
    if (old) { old.replaceWith(item); return; }
    var after = Array.prototype.find.call(feed.children, function (el) {
      return el.getAttribute("data-order") < item.getAttribute("data-order");
    });
    feed.insertBefore(item, after || null);
    while (feed.children.length > 50) { feed.lastElementChild.remove(); }
  }
  function live(feed) {
    var source = new EventSource(feed.getAttribute("data-stream"));
    var button = document.querySelector("[data-pause='" + feed.id + "']");
    var held = null;
    function apply(kind, data) {
      if (kind === "gone") {
        var gone = document.getElementById(data);
        if (gone) { gone.remove(); }
        return;
      }
      var parsed = document.createElement("template");
      parsed.innerHTML = data;
      local(parsed.content);
      if (kind === "list") {
        feed.replaceChildren(parsed.content);
      } else if (parsed.content.firstElementChild) {
        place(feed, parsed.content.firstElementChild);
      }
      var empty = document.querySelector(".empty");
      if (empty && feed.children.length > 0) { empty.remove(); }
    }
    ["list", "signal", "gone"].forEach(function (kind) {
      source.addEventListener(kind, function (e) {
        if (held) { held.push([kind, e.data]); } else { apply(kind, e.data); }
      });
    });
    if (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var pausing = held === null;
        button.setAttribute("aria-pressed", pausing ? "true" : "false");
        button.textContent = pausing ? "Resume" : "Pause";
        if (pausing) { held = []; return; }
        var queued = held;
        held = null;
        queued.forEach(function (e) { apply(e[0], e[1]); });
      });
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    local(document);
    tick();
    setInterval(tick, 1000);
    document.querySelectorAll("[data-stream]").forEach(live);
  });
})();
