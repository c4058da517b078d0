// Systems pages: show only the inputs that matter for the chosen kind of API, sign-in method and
// signature scheme (each block names its select in data-show-for and the options it belongs to in
// data-values), keep the webhook URL preview in step with the short name, and copy buttons.
(function () {
  "use strict";

  function syncVisibility(root) {
    root.querySelectorAll("[data-show-for]").forEach(function (block) {
      var select = document.getElementById("id_" + block.dataset.showFor);
      if (!select) return;
      var wanted = (block.dataset.values || "").split(" ");
      // A block holding an error always shows, so the message is never hidden.
      block.hidden = wanted.indexOf(select.value) === -1 && !block.querySelector(".has-error");
    });
  }

  // A new system: picking its kind fills in what most systems of that kind expect (connectors/kinds.py).
  function applyKindDefaults(root, kind) {
    var form = root.querySelector("[data-kind-defaults]");
    var table = form && document.getElementById(form.dataset.kindDefaults);
    if (!table) return;
    var values = JSON.parse(table.textContent)[kind] || {};
    Object.keys(values).forEach(function (name) {
      var input = form.elements[name];
      if (input) input.value = values[name];
    });
  }

  // A new system: picking a well-known vendor fills in everything its template knows
  // (connectors/vendor_templates/) and shows what the admin still has to know.
  function applyVendorTemplate(root, slug) {
    var form = root.querySelector("[data-vendor-templates]");
    var table = form && document.getElementById(form.dataset.vendorTemplates);
    var template = table && JSON.parse(table.textContent)[slug];
    if (!template) return;
    Object.keys(template.values).forEach(function (name) {
      var input = form.elements[name];
      if (input) input.value = template.values[name];
    });
    var note = root.querySelector("[data-template-note]");
    if (note) {
      note.querySelector("[data-template-notes]").textContent = template.notes;
      var docs = note.querySelector("[data-template-docs]");
      docs.href = template.docs || "#";
      docs.hidden = !template.docs;
      note.hidden = !template.notes && !template.docs;
    }
  }

  function slugify(text) {
    return text.toLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "")
      .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 54);
  }

  function syncHookUrl(root) {
    var preview = root.querySelector("[data-hook-preview]");
    var slug = document.getElementById("id_slug");
    var name = document.getElementById("id_name");
    if (!preview || !slug || !name) return;
    preview.textContent = preview.dataset.hookPreview + (slug.value.trim() || slugify(name.value) || "<short-name>") + "/";
  }

  function copy(button) {
    var source = document.getElementById(button.dataset.copy);
    if (!source) return;
    var text = source.value !== undefined ? source.value : source.textContent;
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied ✓";
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
    } else {
      if (source.select) source.select();
      document.execCommand("copy");
      done();
    }
  }

  function init(root) {
    syncVisibility(root);
    syncHookUrl(root);
  }

  document.addEventListener("change", function (event) {
    if (event.target.id === "id_kind") applyKindDefaults(document, event.target.value);
    if (event.target.id === "id_template") applyVendorTemplate(document, event.target.value);
    if (event.target.matches("select")) syncVisibility(document);
  });
  document.addEventListener("input", function (event) {
    if (event.target.id === "id_slug" || event.target.id === "id_name") syncHookUrl(document);
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (button) { event.preventDefault(); copy(button); }
  });
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (event) { init(event.target); });
})();
