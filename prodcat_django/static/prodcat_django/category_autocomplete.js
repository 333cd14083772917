/* The category autocomplete of prodcat's review forms: as the merchant types, ask the review
   admin's category search for a few matching categories (full paths in a tree) and offer them
   in a <datalist>. The page never lists every category; without JavaScript the typed path,
   name or id is resolved on the server all the same. */
(function () {
  "use strict";

  function attach(input) {
    var url = input.getAttribute("data-prodcat-category-search");
    if (!url || input.dataset.prodcatAutocomplete) { return; }
    input.dataset.prodcatAutocomplete = "1";
    var list = document.createElement("datalist");
    list.id = (input.id || "prodcat-category") + "-options";
    input.setAttribute("list", list.id);
    input.parentNode.insertBefore(list, input.nextSibling);
    var timer = null;
    var latest = 0;
    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      var term = input.value.trim();
      if (!term) { return; }
      timer = window.setTimeout(function () {
        var ticket = ++latest;
        var sep = url.indexOf("?") === -1 ? "?" : "&";
        fetch(url + sep + "q=" + encodeURIComponent(term), {
          credentials: "same-origin",
          headers: { "Accept": "application/json" }
        })
          .then(function (response) { return response.ok ? response.json() : { results: [] }; })
          .then(function (data) {
            if (ticket !== latest) { return; }  // an older answer arriving late
            list.textContent = "";
            (data.results || []).forEach(function (item) {
              var option = document.createElement("option");
              option.value = item.label;
              list.appendChild(option);
            });
          })
          .catch(function () { /* the typed value still works */ });
      }, 150);
    });
  }

  function attachAll(root) {
    var inputs = (root || document).querySelectorAll("input[data-prodcat-category-search]");
    Array.prototype.forEach.call(inputs, attach);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { attachAll(document); });
  } else {
    attachAll(document);
  }
})();
