// The public pages' small helpers; every page works without them.
(function () {
  "use strict";

  // A form that came back with problems: its error summary (or a notice that answers the
  // submit) is focused and in view. The markup's autofocus does this without JavaScript;
  // this covers a browser that skipped it (a page restored from history, a URL fragment).
  var first = document.querySelector("[data-focus-on-load]");
  if (first) {
    // After the browser's own autofocus (done before animation frames run).
    window.requestAnimationFrame(function () {
      var box = first.getBoundingClientRect();
      if (box.top < 0 || box.bottom > window.innerHeight) {
        first.scrollIntoView({ block: "start" });
      }
      if (document.activeElement !== first) {
        first.focus({ preventScroll: true });
      }
    });
  }

  // Each link in an error summary moves to its field, with the field's label (or the legend
  // of its group) in view above it, as in the GOV.UK pattern.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest(".error-summary a[href^='#']");
    if (!link) {
      return;
    }
    var field = document.getElementById(link.getAttribute("href").slice(1));
    if (!field) {
      return;
    }
    event.preventDefault();
    var group = field.closest("fieldset");
    var caption = (group && group.querySelector("legend")) ||
      document.querySelector("label[for='" + field.id + "']") || field;
    caption.scrollIntoView({ block: "start" });
    field.focus({ preventScroll: true });
  });

  // Choosing a date on the offering page: a full one turns the form into the waitlist's, one
  // with seats back into registration (without JavaScript the server says so after sending).
  var registerForm = document.querySelector("[data-register-form]");
  if (registerForm) {
    registerForm.addEventListener("change", function (event) {
      var radio = event.target;
      if (radio.name !== "session_id" || !radio.checked) {
        return;
      }
      var mode = radio.hasAttribute("data-full") ? "waitlist" : "register";
      registerForm.action = registerForm.getAttribute("data-" + mode + "-action");
      var labelled = document.querySelectorAll("#register-heading, [data-register-form] button[type=submit]");
      Array.prototype.forEach.call(labelled, function (element) {
        element.textContent = element.getAttribute("data-" + mode + "-label");
      });
      Array.prototype.forEach.call(document.querySelectorAll("#register [data-intro]"), function (intro) {
        intro.hidden = intro.getAttribute("data-intro") !== mode;
      });
      // A date without a community seat kept: no community row (the server refuses it too).
      var community = document.querySelector("[data-community-choice]");
      if (community && radio.hasAttribute("data-community-left")) {
        var communityInput = community.querySelector("input");
        community.hidden = radio.getAttribute("data-community-left") === "0";
        if (community.hidden && communityInput.checked) {
          communityInput.checked = false;
          var standard = document.querySelector("[data-price-default]");
          if (standard) {
            standard.checked = true;
          }
        }
      }
      var barLink = document.querySelector("[data-book-bar] a");
      if (barLink) {
        // The heading carries both labels in the page's language.
        barLink.textContent = document.getElementById("register-heading").getAttribute("data-" + mode + "-label");
      }
    });
  }

  // The offering page on a phone: once the booking card has scrolled out of view, a bar at
  // the bottom of the screen leads back to it.
  var bar = document.querySelector("[data-book-bar]");
  var card = document.getElementById("register");
  if (bar && card && "IntersectionObserver" in window) {
    var narrow = window.matchMedia("(max-width: 40rem) and (min-height: 30.01rem)");
    var cardInView = true;
    var update = function () {
      var show = narrow.matches && !cardInView;
      bar.hidden = !show;
      document.documentElement.classList.toggle("has-book-bar", show);
    };
    new IntersectionObserver(function (entries) {
      cardInView = entries[entries.length - 1].isIntersecting;
      update();
    }).observe(card);
    if (narrow.addEventListener) {
      narrow.addEventListener("change", update);
    }
    bar.querySelector("a").addEventListener("click", function (event) {
      event.preventDefault();
      card.scrollIntoView({ block: "start" });
      var heading = document.getElementById("register-heading");
      if (heading) {
        heading.focus({ preventScroll: true });
      }
    });
  }
})();
