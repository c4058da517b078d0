/* The visual field mapper.
 *
 * State is the list of rules (one per target field) plus a little UI state; every change goes
 * through changed(), which re-renders what depends on it, redraws the connection lines and asks
 * the server for a fresh preview. Connect a source field to a target field by dragging it there,
 * or by clicking (or pressing Enter on) the source and then the target.
 *
 * Rules leave the page in the engine's shape only (engineRules()): the engine rejects unknown
 * keys, so UI-only state (which editor is open, table rows being typed) never goes into them.
 */
(() => {
  "use strict";

  const root = document.getElementById("mapper");
  if (!root) return;
  const config = JSON.parse(document.getElementById("mapper-config").textContent);
  const CAN_EDIT = config.can_edit;
  const TRANSFORMS = new Map(config.transforms.map((t) => [t.name, t]));
  const TARGET_TYPES = new Map(config.target.fields.map((f) => [f.path, f.type]));
  const REQUIRED = new Set(config.target.fields.filter((f) => f.required).map((f) => f.path));
  const PREVIEW_DELAY_MS = 300;
  const ENGINE_KEYS = ["target", "source", "constant", "transforms"]; // everything else is kept as is

  const $ = (id) => document.getElementById(id);
  const el = {
    canvas: $("mapper-canvas"),
    svg: $("mapper-lines"),
    sources: $("source-fields"),
    targets: $("target-fields"),
    status: $("mapper-status"),
    required: $("required-summary"),
    previewSource: $("preview-source"),
    pasteBox: $("paste-box"),
    recordText: $("preview-record"),
    recordError: $("preview-record-error"),
    output: $("preview-output"),
    problems: $("preview-problems"),
    spinner: $("preview-spinner"),
    saveButton: $("save-button"),
    saveComment: $("save-comment"),
    saveStatus: $("save-status"),
    dirtyFlag: $("dirty-flag"),
    versionBadge: $("version-badge"),
    suggestions: $("mapper-suggestions"),
    suggestionList: $("suggestion-list"),
    matchButton: $("match-same-named"),
  };

  const state = {
    rules: config.rules.map(fromEngineRule),
    selected: null, // a source path picked by click, waiting for its target
    open: new Set(), // targets whose rule editor is open
    drag: null, // {path, x, y, moved, over}
    suppressClick: false,
    preview: null, // the last preview answer
    sentTargets: [], // target of each rule in the last preview request, by index
    saveErrors: new Map(), // target -> problem, from a refused save
    previewSeq: 0,
    previewTimer: null,
    version: config.version,
    savedJson: "",
  };
  state.savedJson = JSON.stringify(engineRules().rules);
  const rowEls = new Map(); // target path -> its <li>
  const sourceEls = new Map(); // source path -> its field element
  const targetEls = new Map(); // target path -> its field element

  // ---------------------------------------------------------------------------------------------
  // Rules: the engine's shape <-> the editor's shape
  // ---------------------------------------------------------------------------------------------

  function fromEngineRule(rule) {
    const extra = {};
    for (const [key, value] of Object.entries(rule)) if (!ENGINE_KEYS.includes(key)) extra[key] = value;
    let origin = "none";
    if (rule.source) origin = "field";
    else if (rule.constant !== undefined && rule.constant !== null) origin = "constant";
    return {
      target: rule.target,
      origin,
      source: rule.source || "",
      constant: origin === "constant" ? rule.constant : "",
      steps: (rule.transforms || []).map((step) => ({
        name: step.name,
        options: optionsForEditor(step.name, step.options || {}),
      })),
      extra, // note, keep_null...: kept as they were
    };
  }

  function optionsForEditor(name, options) {
    const found = TRANSFORMS.get(name);
    const copy = { ...options };
    for (const spec of found ? found.options : []) {
      if (spec.type === "mapping" && copy[spec.name] && typeof copy[spec.name] === "object") {
        copy[spec.name] = Object.entries(copy[spec.name]).map(([k, v]) => [k, textOf(v)]);
      }
    }
    return copy;
  }

  function toEngineRule(rule) {
    const out = { target: rule.target };
    if (rule.origin === "field" && rule.source) out.source = rule.source;
    if (rule.origin === "constant") out.constant = rule.constant;
    if (rule.steps.length) out.transforms = rule.steps.map(toEngineStep);
    Object.assign(out, rule.extra);
    const empty = !("source" in out) && !("constant" in out) && !out.transforms && rule.extra.keep_null !== true;
    return empty ? null : out;
  }

  function toEngineStep(step) {
    const found = TRANSFORMS.get(step.name);
    const options = {};
    for (const [key, value] of Object.entries(step.options)) {
      const spec = found && found.options.find((o) => o.name === key);
      if (spec && spec.type === "mapping" && Array.isArray(value)) {
        const pairs = value.filter(([k]) => k !== "");
        if (pairs.length) options[key] = Object.fromEntries(pairs);
      } else if (value !== null && value !== undefined && value !== "" && !(Array.isArray(value) && !value.length)) {
        options[key] = value;
      }
    }
    return Object.keys(options).length ? { name: step.name, options } : { name: step.name };
  }

  /** The rules to send, and the target of each by position (errors come back by position). */
  function engineRules() {
    const rules = [];
    for (const rule of state.rules) {
      const out = toEngineRule(rule);
      if (out) rules.push(out);
    }
    return { rules, targets: rules.map((r) => r.target) };
  }

  const ruleFor = (target) => state.rules.find((r) => r.target === target);

  function ensureRule(target) {
    let rule = ruleFor(target);
    if (!rule) {
      rule = { target, origin: "none", source: "", constant: "", steps: [], extra: {} };
      state.rules.push(rule);
    }
    return rule;
  }

  function removeRule(target) {
    state.rules = state.rules.filter((r) => r.target !== target);
    state.open.delete(target);
  }

  // ---------------------------------------------------------------------------------------------
  // Values typed by a person -> JSON values
  // ---------------------------------------------------------------------------------------------

  function textOf(value) {
    if (value === null || value === undefined) return "";
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  /** A fixed value typed as text, read as the target field's type (42, true) or kept as text. */
  function typedValue(text, type) {
    const trimmed = text.trim();
    if (["integer", "number"].includes(type) && trimmed !== "" && Number.isFinite(Number(trimmed))) {
      return Number(trimmed);
    }
    if (type === "boolean" && ["true", "false"].includes(trimmed.toLowerCase())) {
      return trimmed.toLowerCase() === "true";
    }
    if (["object", "array"].includes(type)) {
      try {
        return JSON.parse(trimmed);
      } catch {
        return text;
      }
    }
    return text;
  }

  function optionValue(spec, control, targetType) {
    switch (spec.type) {
      case "boolean":
        return control.checked;
      case "integer":
      case "number":
        // An unreadable number goes to the engine as typed, so its message shows beside the rule.
        return control.value.trim() === "" ? null : Number.isFinite(Number(control.value)) ? Number(control.value) : control.value;
      case "string_list":
        return control.value.split(",").map((s) => s.trim()).filter(Boolean);
      case "any":
        return control.value === "" ? null : typedValue(control.value, targetType);
      default:
        return control.value === "" ? null : control.value;
    }
  }

  function shortValue(value, max = 70) {
    if (value === null || value === undefined) return "nothing";
    const text = typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value);
    return text.length > max ? `${text.slice(0, max - 1)}…` : text;
  }

  // ---------------------------------------------------------------------------------------------
  // Small DOM helpers
  // ---------------------------------------------------------------------------------------------

  function h(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === false || value === null || value === undefined) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function pathLabel(path) {
    const cut = Math.max(path.lastIndexOf("."), -1);
    return h("span", { class: "path" }, cut > 0 ? h("span", { class: "parent" }, path.slice(0, cut + 1)) : null, path.slice(cut + 1));
  }

  /** "amount — in cents": what a value counts, where the data model says so. */
  const unitLabel = (field) => (field.unit ? h("span", { class: "field-unit" }, `— ${field.unit}`) : null);

  const slug = (text) => text.replace(/[^A-Za-z0-9_-]+/g, "_");

  function announce(message) {
    el.status.textContent = message;
  }

  // ---------------------------------------------------------------------------------------------
  // Rendering: source fields
  // ---------------------------------------------------------------------------------------------

  function renderSources() {
    el.sources.replaceChildren();
    sourceEls.clear();
    if (!config.source.fields.length) {
      el.sources.append(h("li", { class: "empty-fields" }, "This data model has no fields yet."));
    }
    for (const field of config.source.fields) {
      const tag = CAN_EDIT ? "button" : "div";
      const node = h(
        tag,
        {
          class: "field-btn source-btn",
          type: CAN_EDIT ? "button" : null,
          dataset: { sourcePath: field.path },
          "aria-label": `Source field ${field.path}`,
          "aria-pressed": CAN_EDIT ? String(state.selected === field.path) : null,
          title: field.description || null,
        },
        h("span", { class: "field-name" }, pathLabel(field.path), h("span", { class: "type" }, field.type_label), unitLabel(field)),
        h("span", { class: "sample-value" })
      );
      sourceEls.set(field.path, node);
      el.sources.append(h("li", {}, node));
    }
    renderSourceValues();
  }

  function renderSourceValues() {
    const values = (state.preview && state.preview.source_values) || {};
    for (const [path, node] of sourceEls) {
      const slot = node.querySelector(".sample-value");
      const value = values[path];
      slot.textContent = value === undefined || value === null ? "" : shortValue(value, 32);
      slot.title = value === undefined || value === null ? "" : textOf(value);
    }
  }

  function renderSelection() {
    for (const [path, node] of sourceEls) {
      if (CAN_EDIT) node.setAttribute("aria-pressed", String(state.selected === path));
    }
    root.classList.toggle("picking", Boolean(state.selected));
  }

  // ---------------------------------------------------------------------------------------------
  // Rendering: target fields, each with its rule
  // ---------------------------------------------------------------------------------------------

  function allTargets() {
    const declared = config.target.fields.map((f) => ({ ...f, declared: true }));
    const known = new Set(declared.map((f) => f.path));
    const extra = state.rules
      .filter((r) => !known.has(r.target))
      .map((r) => ({ path: r.target, type: "", type_label: "not in the model", required: false, declared: false }));
    return [...declared, ...extra];
  }

  function renderTargets() {
    el.targets.replaceChildren();
    rowEls.clear();
    targetEls.clear();
    const targets = allTargets();
    if (!targets.length) el.targets.append(h("li", { class: "empty-fields" }, "This data model has no fields yet."));
    for (const field of targets) el.targets.append(renderRow(field));
    updateAllRows();
  }

  function refreshRow(target) {
    const old = rowEls.get(target);
    const field = allTargets().find((f) => f.path === target);
    if (!old || !field) return renderTargets();
    const focusId = document.activeElement && old.contains(document.activeElement) ? document.activeElement.id : null;
    old.replaceWith(renderRow(field));
    updateRow(target);
    if (focusId && $(focusId)) $(focusId).focus();
  }

  function renderRow(field) {
    const id = `t-${slug(field.path)}`;
    const open = CAN_EDIT && state.open.has(field.path);
    const button = h(
      CAN_EDIT ? "button" : "div",
      {
        class: "field-btn target-btn",
        type: CAN_EDIT ? "button" : null,
        id: `${id}-field`,
        dataset: { targetPath: field.path },
        "aria-label": `Target field ${field.path}${field.required ? " (required)" : ""}`,
        title: field.description || null,
      },
      h("span", { class: "req-marker", "aria-hidden": "true", title: field.required ? "Required" : null }),
      h("span", { class: "field-name" }, pathLabel(field.path), h("span", { class: "type" }, field.type_label), unitLabel(field)),
      field.required ? h("span", { class: "req-word" }, "required") : null
    );
    const head = h(
      "div",
      { class: "target-head" },
      button,
      CAN_EDIT
        ? h(
            "button",
            {
              type: "button",
              class: "small edit-btn",
              dataset: { role: "toggle", target: field.path },
              "aria-expanded": String(open),
              "aria-controls": `${id}-editor`,
              "aria-label": `Edit the rule for ${field.path}`,
            },
            open ? "Close" : "Edit"
          )
        : null
    );
    const row = h(
      "li",
      { class: "target-row", id, dataset: { target: field.path } },
      head,
      h("div", { class: "rule-line" }, h("span", { class: "rule-desc" }), h("span", { class: "rule-result" })),
      h("p", { class: "rule-error", role: "alert", hidden: true }),
      open ? renderEditor(field, id) : null
    );
    rowEls.set(field.path, row);
    targetEls.set(field.path, button);
    return row;
  }

  /** The parts of a row that change with every keystroke: summary, result, error, markers. */
  function updateRow(target) {
    const row = rowEls.get(target);
    if (!row) return;
    const rule = ruleFor(target);
    const engineRule = rule ? toEngineRule(rule) : null;
    const missing = missingRequired();
    const desc = row.querySelector(".rule-desc");
    const result = row.querySelector(".rule-result");
    const errorSlot = row.querySelector(".rule-error");
    desc.replaceChildren();
    if (engineRule) {
      desc.append(h("span", { class: "arrow", "aria-hidden": "true" }, "←"), " ", describeRule(rule));
      if (CAN_EDIT && rule.origin === "field") {
        desc.append(
          " ",
          h("button", { type: "button", class: "link unlink", dataset: { role: "disconnect", target }, "aria-label": `Disconnect ${rule.source} from ${target}` }, "disconnect")
        );
      }
    } else {
      desc.append(h("span", { class: "muted" }, unmappedWords(target, missing)));
    }
    const { value, error, ran } = previewFor(target);
    result.textContent = engineRule && ran && !error ? `→ ${shortValue(value)}` : "";
    result.title = engineRule && ran && !error ? textOf(value) : "";
    errorSlot.textContent = error || "";
    errorSlot.hidden = !error;
    row.classList.toggle("mapped", Boolean(engineRule));
    row.classList.toggle("rule-failing", Boolean(error));
    row.classList.toggle("missing", missing.includes(target));
    row.classList.toggle("incoming", Boolean(state.selected));
  }

  function unmappedWords(target, missing) {
    if (missing.includes(target)) return "Required: not mapped yet";
    const targets = engineRules().targets;
    const whole = targets.find((t) => under(target, t));
    if (whole) return `Filled by the rule for ${whole}`;
    if (targets.some((t) => under(t, target))) return "Filled by its fields below";
    return "Not mapped";
  }

  function updateAllRows() {
    for (const target of rowEls.keys()) updateRow(target);
  }

  function previewFor(target) {
    if (state.saveErrors.has(target)) return { error: state.saveErrors.get(target), ran: false };
    const preview = state.preview;
    if (!preview || !preview.values) return { ran: false };
    const index = state.sentTargets.indexOf(target);
    if (index < 0) return { ran: false };
    const problems = (preview.errors || []).filter((e) => e.index === index).map((e) => e.problem);
    // What the target would refuse in this rule's value (the same check as before each delivery).
    const refused = contractViolations().filter((v) => v.index === index).map((v) => refusedWords(v));
    return { value: preview.values[index], error: [...problems, ...refused].join("; "), ran: true };
  }

  function describeRule(rule) {
    const steps = rule.steps.map(describeStep);
    let origin;
    if (rule.origin === "field") origin = rule.source;
    else if (rule.origin === "constant") origin = `the fixed value ${shortValue(rule.constant, 40)}`;
    else origin = steps.shift() || "nothing";
    return [origin, ...steps].join(" › ");
  }

  function describeStep(step) {
    const found = TRANSFORMS.get(step.name);
    if (!found) return `unknown step "${step.name}"`;
    const shown = found.options
      .filter((spec) => spec.type !== "boolean")
      .map((spec) => [spec, step.options[spec.name]])
      .filter(([, v]) => v !== null && v !== undefined && v !== "" && !(Array.isArray(v) && !v.length))
      .map(([spec, v]) => `${spec.label.toLowerCase()}: ${spec.type === "mapping" ? `${v.length} entries` : Array.isArray(v) ? v.join(", ") : textOf(v)}`);
    return shown.length ? `${found.label} (${shown.join("; ")})` : found.label;
  }

  // ---------------------------------------------------------------------------------------------
  // Rendering: the rule editor of one target
  // ---------------------------------------------------------------------------------------------

  function renderEditor(field, id) {
    const rule = ruleFor(field.path) || { origin: "none", source: "", constant: "", steps: [] };
    const originSelect = h(
      "select",
      { id: `${id}-origin`, dataset: { role: "origin", target: field.path } },
      h("option", { value: "none", selected: rule.origin === "none" }, rule.steps.length ? "Nothing: the steps below make it" : "Nothing (not mapped)"),
      h(
        "optgroup",
        { label: `A field of ${config.source.name}` },
        sourceOptions(rule).map((path) => h("option", { value: `field:${path}`, selected: rule.origin === "field" && rule.source === path }, path))
      ),
      h("option", { value: "constant", selected: rule.origin === "constant" }, "A fixed value")
    );
    const parts = [
      h("div", { class: "editor-row" }, h("label", { for: `${id}-origin` }, "Value comes from"), originSelect),
    ];
    if (rule.origin === "constant") {
      parts.push(
        h(
          "div",
          { class: "editor-row" },
          h("label", { for: `${id}-constant` }, "Fixed value"),
          h("input", { type: "text", id: `${id}-constant`, value: textOf(rule.constant), dataset: { role: "constant", target: field.path } })
        )
      );
    }
    parts.push(renderSteps(rule, field, id));
    const addStep = h(
      "select",
      { id: `${id}-add`, dataset: { role: "add-step", target: field.path } },
      h("option", { value: "" }, "Choose a step…"),
      config.transforms.map((t) => h("option", { value: t.name, title: t.description }, t.label))
    );
    parts.push(h("div", { class: "editor-row" }, h("label", { for: `${id}-add` }, "Add a step"), addStep));
    if (ruleFor(field.path)) {
      parts.push(
        h(
          "div",
          { class: "editor-foot" },
          h("button", { type: "button", class: "small danger", dataset: { role: "remove-rule", target: field.path } }, "Clear this rule")
        )
      );
    }
    return h("div", { class: "rule-editor", id: `${id}-editor` }, parts);
  }

  function sourceOptions(rule) {
    const paths = config.source.fields.map((f) => f.path);
    if (rule.origin === "field" && rule.source && !paths.includes(rule.source)) paths.push(rule.source);
    return paths;
  }

  function renderSteps(rule, field, id) {
    if (!rule.steps.length) return h("p", { class: "help no-steps" }, "No steps: the value is copied as it is.");
    return h(
      "ol",
      { class: "steps-list", "aria-label": `Steps for ${field.path}` },
      rule.steps.map((step, index) => renderStep(step, index, rule.steps.length, field, id))
    );
  }

  function renderStep(step, index, count, field, id) {
    const found = TRANSFORMS.get(step.name);
    const stepId = `${id}-s${index}`;
    const data = (role) => ({ role, target: field.path, step: String(index) });
    const head = h(
      "div",
      { class: "step-head" },
      h("strong", { id: `${stepId}-name` }, found ? found.label : `Unknown step "${step.name}"`),
      h(
        "span",
        { class: "step-tools" },
        h("button", { type: "button", class: "icon", dataset: data("step-up"), disabled: index === 0, "aria-label": `Move ${found ? found.label : step.name} up` }, "↑"),
        h("button", { type: "button", class: "icon", dataset: data("step-down"), disabled: index === count - 1, "aria-label": `Move ${found ? found.label : step.name} down` }, "↓"),
        h("button", { type: "button", class: "icon danger", dataset: data("remove-step"), "aria-label": `Remove the step ${found ? found.label : step.name}` }, "✕")
      )
    );
    const options = found ? found.options.map((spec) => renderOption(spec, step, index, field, stepId)) : [];
    return h(
      "li",
      { class: "step", "aria-labelledby": `${stepId}-name` },
      head,
      found ? h("p", { class: "help" }, found.description) : null,
      options.length ? h("div", { class: "step-options" }, options) : null
    );
  }

  /** One option control, chosen by the option's type only: no transform gets special treatment. */
  function renderOption(spec, step, index, field, stepId) {
    const id = `${stepId}-${slug(spec.name)}`;
    const value = step.options[spec.name];
    const data = { role: "option", target: field.path, step: String(index), option: spec.name };
    const helpId = spec.help ? `${id}-help` : null;
    const label = h("label", { for: id }, spec.label, spec.required ? null : h("span", { class: "optional" }, " (optional)"));
    const help = spec.help ? h("span", { class: "help", id: helpId }, spec.help) : null;
    const common = { id, dataset: data, "aria-describedby": helpId };
    const placeholder = spec.default !== null && spec.default !== undefined ? `default: ${textOf(spec.default)}` : null;
    let control;
    switch (spec.type) {
      case "boolean":
        control = h("input", { type: "checkbox", ...common, checked: value ?? spec.default ?? false });
        return h("div", { class: "option option-boolean" }, h("label", { class: "checkbox", for: id }, control, spec.label), help);
      case "choice":
        control = h(
          "select",
          common,
          h("option", { value: "" }, spec.required && spec.default === null ? "Choose…" : placeholder || "—"),
          spec.choices.map((choice) => h("option", { value: choice, selected: value === choice }, String(choice).replace(/_/g, " ")))
        );
        break;
      case "mapping":
        return renderTable(spec, value || [], data, id, label, help);
      case "string_list":
        control = h("input", { type: "text", ...common, value: (value || []).join(", "), placeholder: "separate with commas" });
        break;
      case "integer":
      case "number":
        control = h("input", { type: "number", step: spec.type === "integer" ? "1" : "any", ...common, value: value ?? "", placeholder });
        break;
      default:
        control = h("input", { type: "text", ...common, value: textOf(value), placeholder });
    }
    return h("div", { class: "option" }, label, control, help);
  }

  function renderTable(spec, pairs, data, id, label, help) {
    const rows = pairs.map(([key, val], position) =>
      h(
        "tr",
        {},
        h("td", {}, h("input", { type: "text", value: key, id: `${id}-k${position}`, "aria-label": `${spec.label}: key ${position + 1}`, dataset: { ...data, pair: String(position), part: "0" } })),
        h("td", {}, h("input", { type: "text", value: val, id: `${id}-v${position}`, "aria-label": `${spec.label}: value ${position + 1}`, dataset: { ...data, pair: String(position), part: "1" } })),
        h("td", {}, h("button", { type: "button", class: "icon danger", dataset: { ...data, role: "remove-pair", pair: String(position) }, "aria-label": `Remove row ${position + 1}` }, "✕"))
      )
    );
    return h(
      "div",
      { class: "option option-table" },
      h("span", { class: "label-like", id }, spec.label),
      help,
      h(
        "table",
        { class: "pairs", "aria-labelledby": id },
        h("thead", {}, h("tr", {}, h("th", {}, "When the value is"), h("th", {}, "Write"), h("th", {}, ""))),
        h("tbody", {}, rows)
      ),
      h("button", { type: "button", class: "small", dataset: { ...data, role: "add-pair" } }, "+ Add a row")
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Required fields
  // ---------------------------------------------------------------------------------------------

  const under = (path, parent) => path.startsWith(`${parent}.`) || path.startsWith(`${parent}[`);

  function parentOf(path) {
    const cut = path.lastIndexOf(".");
    return cut < 0 ? "" : path.slice(0, cut).replace(/\[\]$/, "");
  }

  /** A required field inside an optional object only counts when that object is being written. */
  function isNeeded(path, targets) {
    const parent = parentOf(path);
    if (!parent) return true;
    if (REQUIRED.has(parent) && isNeeded(parent, targets)) return true;
    return targets.some((t) => under(t, parent));
  }

  function missingRequired() {
    const targets = engineRules().targets;
    const covered = (path) => targets.some((t) => t === path || under(t, path) || under(path, t));
    return [...REQUIRED].filter((path) => isNeeded(path, targets) && !covered(path));
  }

  function requiredWords(missing) {
    return missing.length === 1
      ? `1 required field is not mapped yet: ${missing[0]}`
      : `${missing.length} required fields are not mapped yet: ${missing.join(", ")}`;
  }

  function renderRequired() {
    const missing = missingRequired();
    el.required.hidden = missing.length === 0;
    el.required.textContent = requiredWords(missing);
  }

  // ---------------------------------------------------------------------------------------------
  // Suggested pairs (worked out by the hub: mappings/suggest.py), offered while their target is unmapped
  // ---------------------------------------------------------------------------------------------

  function isUnmapped(target) {
    return !engineRules().targets.some((t) => t === target || under(target, t) || under(t, target));
  }

  const openSuggestions = () => config.suggestions.filter((s) => isUnmapped(s.target));

  function renderSuggestions() {
    if (!el.suggestions) return;
    const open = openSuggestions();
    const sameNamed = open.filter((s) => s.same_named).length;
    el.suggestions.hidden = !open.length;
    el.matchButton.hidden = !sameNamed;
    el.matchButton.textContent = `Match same-named fields (${sameNamed})`;
    el.suggestionList.replaceChildren(
      ...open.map((s) =>
        h(
          "li",
          { class: "suggestion" },
          h("span", { class: "suggestion-pair" }, h("strong", {}, s.target), " ← ", s.source_label),
          h("span", { class: "help" }, s.why),
          h("button", { type: "button", class: "small", dataset: { accept: s.target }, "aria-label": `Use ${s.source_label} for ${s.target}` }, "Use")
        )
      )
    );
  }

  function acceptSuggestions(suggestions) {
    for (const suggestion of suggestions) {
      removeRule(suggestion.target);
      state.rules.push(fromEngineRule(suggestion.rule));
    }
    changed({ all: true });
    announce(
      suggestions.length === 1
        ? `Connected ${suggestions[0].source_label} to ${suggestions[0].target}.`
        : `Connected ${suggestions.length} fields: ${suggestions.map((s) => s.target).join(", ")}.`
    );
  }

  function onSuggestionClick(event) {
    const button = event.target.closest("button[data-accept]");
    if (!button) return;
    const suggestion = openSuggestions().find((s) => s.target === button.dataset.accept);
    if (suggestion) acceptSuggestions([suggestion]);
  }

  // ---------------------------------------------------------------------------------------------
  // Connection lines
  // ---------------------------------------------------------------------------------------------

  let drawQueued = false;

  function scheduleDraw() {
    if (drawQueued) return;
    drawQueued = true;
    requestAnimationFrame(() => {
      drawQueued = false;
      drawLines();
    });
  }

  function curve(x1, y1, x2, y2) {
    const dx = Math.max(40, (x2 - x1) / 2);
    return `M ${x1} ${y1} C ${x1 + dx} ${y1}, ${x2 - dx} ${y2}, ${x2} ${y2}`;
  }

  function svgNode(tag, attrs) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    return node;
  }

  /** Where a line meets a field: the source's right edge, or the target row's left edge. */
  function anchor(node, box, side) {
    const rect = node.getBoundingClientRect();
    const edge = side === "right" ? rect.right : (node.closest(".target-row") || node).getBoundingClientRect().left;
    return { x: edge - box.left, y: rect.top + rect.height / 2 - box.top };
  }

  function drawLines() {
    const box = el.canvas.getBoundingClientRect();
    el.svg.setAttribute("width", box.width);
    el.svg.setAttribute("height", box.height);
    el.svg.setAttribute("viewBox", `0 0 ${box.width} ${box.height}`);
    el.svg.replaceChildren();
    for (const rule of state.rules) {
      if (rule.origin !== "field") continue;
      const from = sourceEls.get(rule.source);
      const to = targetEls.get(rule.target);
      if (!from || !to) continue;
      const a = anchor(from, box, "right");
      const b = anchor(to, box, "left");
      const failing = Boolean(previewFor(rule.target).error);
      const cls = ["link-line", failing ? "failing" : "", state.selected === rule.source ? "highlight" : ""].join(" ");
      el.svg.append(
        svgNode("path", { d: curve(a.x, a.y, b.x, b.y), class: cls, "data-source": rule.source, "data-target": rule.target }),
        svgNode("circle", { cx: a.x, cy: a.y, r: 4, class: `end ${cls}` }),
        svgNode("circle", { cx: b.x, cy: b.y, r: 4, class: `end ${cls}` })
      );
    }
    if (state.drag && state.drag.moved) {
      const from = sourceEls.get(state.drag.path);
      const a = anchor(from, box, "right");
      const over = state.drag.over && targetEls.get(state.drag.over);
      const b = over ? anchor(over, box, "left") : { x: state.drag.x - box.left, y: state.drag.y - box.top };
      el.svg.append(svgNode("path", { d: curve(a.x, a.y, b.x, b.y), class: "link-line dragging" }));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Changes
  // ---------------------------------------------------------------------------------------------

  /** After any change to the rules: refresh what depends on them, then preview again. */
  function changed({ rows = [], all = false } = {}) {
    state.saveErrors.clear();
    if (all) renderTargets();
    else for (const target of rows) refreshRow(target);
    updateAllRows();
    renderRequired();
    renderSuggestions();
    updateSaveState();
    scheduleDraw();
    schedulePreview();
  }

  function connect(sourcePath, target) {
    const rule = ensureRule(target);
    rule.origin = "field";
    rule.source = sourcePath;
    rule.constant = "";
    state.selected = null;
    renderSelection();
    const extraTarget = !config.target.fields.some((f) => f.path === target);
    changed(extraTarget ? { all: true } : { rows: [target] });
    announce(`Connected ${sourcePath} to ${target}.`);
  }

  function stepOf(control) {
    const rule = ruleFor(control.dataset.target);
    return rule && rule.steps[Number(control.dataset.step)];
  }

  function specOf(step, name) {
    const found = TRANSFORMS.get(step.name);
    return found && found.options.find((o) => o.name === name);
  }

  function onOrigin(control) {
    const target = control.dataset.target;
    const rule = ensureRule(target);
    if (control.value.startsWith("field:")) {
      rule.origin = "field";
      rule.source = control.value.slice(6);
    } else {
      rule.origin = control.value;
      rule.source = "";
    }
    if (rule.origin === "none" && !rule.steps.length && !Object.keys(rule.extra).length) removeRule(target);
    state.open.add(target);
    changed({ rows: [target] });
    if (rule.origin === "constant") $(`t-${slug(target)}-constant`)?.focus();
  }

  function onAddStep(control) {
    if (!control.value) return;
    const target = control.dataset.target;
    const rule = ensureRule(target);
    rule.steps.push({ name: control.value, options: blankOptions(control.value) });
    changed({ rows: [target] });
    const first = rowEls.get(target).querySelector(".step:last-child .step-options :is(input, select, button)");
    (first || $(`t-${slug(target)}-add`))?.focus();
    announce(`Added the step ${TRANSFORMS.get(control.value)?.label || control.value} to ${target}.`);
  }

  /** A new step's options: empty, except that a table starts with one row to fill in. */
  function blankOptions(name) {
    const options = {};
    for (const spec of TRANSFORMS.get(name)?.options || []) {
      if (spec.type === "mapping") options[spec.name] = [["", ""]];
    }
    return options;
  }

  function onOption(control) {
    const step = stepOf(control);
    if (!step) return;
    const spec = specOf(step, control.dataset.option);
    if (spec && spec.type === "mapping") {
      const pairs = step.options[spec.name] || [];
      pairs[Number(control.dataset.pair)][Number(control.dataset.part)] = control.value;
      step.options[spec.name] = pairs;
    } else if (spec) {
      step.options[spec.name] = optionValue(spec, control, TARGET_TYPES.get(control.dataset.target));
    }
    changed();
  }

  function onConstant(control) {
    const rule = ruleFor(control.dataset.target);
    if (!rule) return;
    rule.constant = typedValue(control.value, TARGET_TYPES.get(rule.target));
    changed();
  }

  const ACTIONS = {
    toggle(button) {
      const target = button.dataset.target;
      if (state.open.has(target)) state.open.delete(target);
      else state.open.add(target);
      refreshRow(target);
      const row = rowEls.get(target);
      row.querySelector(".edit-btn").focus();
      scheduleDraw();
    },
    disconnect(button) {
      const target = button.dataset.target;
      const rule = ruleFor(target);
      const from = rule.source;
      rule.origin = "none";
      rule.source = "";
      if (!rule.steps.length && !Object.keys(rule.extra).length) removeRule(target);
      changed({ rows: [target] });
      targetEls.get(target)?.focus();
      announce(`Disconnected ${from} from ${target}.`);
    },
    "remove-rule"(button) {
      const target = button.dataset.target;
      if (!window.confirm(`Clear the rule for ${target}? Its source, fixed value and steps are removed.`)) return;
      removeRule(target);
      changed({ all: true });
      targetEls.get(target)?.focus();
      announce(`Cleared the rule for ${target}.`);
    },
    "remove-step"(button) {
      const rule = ruleFor(button.dataset.target);
      rule.steps.splice(Number(button.dataset.step), 1);
      changed({ rows: [rule.target] });
      $(`t-${slug(rule.target)}-add`)?.focus();
    },
    "step-up"(button) {
      moveStep(button, -1);
    },
    "step-down"(button) {
      moveStep(button, 1);
    },
    "add-pair"(button) {
      const step = stepOf(button);
      const pairs = step.options[button.dataset.option] || [];
      pairs.push(["", ""]);
      step.options[button.dataset.option] = pairs;
      changed({ rows: [button.dataset.target] });
      const inputs = rowEls.get(button.dataset.target).querySelectorAll(`[data-step="${button.dataset.step}"][data-option="${button.dataset.option}"][data-part="0"]`);
      inputs[inputs.length - 1]?.focus();
    },
    "remove-pair"(button) {
      const step = stepOf(button);
      step.options[button.dataset.option].splice(Number(button.dataset.pair), 1);
      changed({ rows: [button.dataset.target] });
    },
  };

  function moveStep(button, by) {
    const rule = ruleFor(button.dataset.target);
    const from = Number(button.dataset.step);
    const to = from + by;
    if (to < 0 || to >= rule.steps.length) return;
    const [step] = rule.steps.splice(from, 1);
    rule.steps.splice(to, 0, step);
    changed({ rows: [rule.target] });
  }

  // ---------------------------------------------------------------------------------------------
  // Pointer and keyboard: connecting fields
  // ---------------------------------------------------------------------------------------------

  function targetAt(x, y) {
    const hit = document.elementFromPoint(x, y);
    const row = hit && hit.closest("[data-target]");
    return row && rowEls.has(row.dataset.target) ? row.dataset.target : null;
  }

  function onPointerDown(event) {
    const button = event.target.closest("[data-source-path]");
    if (!button || event.button !== 0) return;
    state.drag = { path: button.dataset.sourcePath, x: event.clientX, y: event.clientY, moved: false, over: null };
  }

  function onPointerMove(event) {
    const drag = state.drag;
    if (!drag) return;
    if (!drag.moved && Math.hypot(event.clientX - drag.x, event.clientY - drag.y) < 5) return;
    drag.moved = true;
    drag.x = event.clientX;
    drag.y = event.clientY;
    drag.over = targetAt(event.clientX, event.clientY);
    root.classList.add("dragging");
    for (const [target, row] of rowEls) row.classList.toggle("drop-here", target === drag.over);
    scheduleDraw();
  }

  function onPointerUp(event) {
    const drag = state.drag;
    state.drag = null;
    if (!drag || !drag.moved) return;
    root.classList.remove("dragging");
    for (const row of rowEls.values()) row.classList.remove("drop-here");
    // The click that follows this release must not also select or toggle anything.
    state.suppressClick = true;
    setTimeout(() => (state.suppressClick = false), 0);
    const target = targetAt(event.clientX, event.clientY);
    if (target) connect(drag.path, target);
    else scheduleDraw();
  }

  function onSourceClick(event) {
    const button = event.target.closest("[data-source-path]");
    if (!button || state.suppressClick) return;
    const path = button.dataset.sourcePath;
    state.selected = state.selected === path ? null : path;
    renderSelection();
    updateAllRows();
    scheduleDraw();
    announce(
      state.selected
        ? `${path} is picked: now choose the target field it fills (Escape to cancel).`
        : "Nothing picked. Drag a field onto a target field, or click one and then the other."
    );
  }

  function onTargetClick(event) {
    if (state.suppressClick) return;
    const field = event.target.closest("[data-target-path]");
    if (field) {
      const target = field.dataset.targetPath;
      if (state.selected) connect(state.selected, target);
      else ACTIONS.toggle({ dataset: { target } });
      return;
    }
    const button = event.target.closest("button[data-role]");
    if (button && ACTIONS[button.dataset.role]) ACTIONS[button.dataset.role](button);
  }

  function onTargetInput(event) {
    const control = event.target;
    const role = control.dataset.role;
    if (role === "option" && control.type !== "checkbox" && control.tagName !== "SELECT") onOption(control);
    else if (role === "constant") onConstant(control);
  }

  function onTargetChange(event) {
    const control = event.target;
    const role = control.dataset.role;
    if (role === "origin") onOrigin(control);
    else if (role === "add-step") onAddStep(control);
    else if (role === "option" && (control.type === "checkbox" || control.tagName === "SELECT")) onOption(control);
  }

  // ---------------------------------------------------------------------------------------------
  // Live preview
  // ---------------------------------------------------------------------------------------------

  function renderRecordChoices() {
    const choices = [];
    if (config.source.has_sample) choices.push(h("option", { value: "sample" }, `The sample record of ${config.source.name}`));
    if (config.events.length) {
      choices.push(
        h("optgroup", { label: "Recent events" }, config.events.map((e) => h("option", { value: `event:${e.id}` }, e.label)))
      );
    }
    choices.push(h("option", { value: "paste" }, "A record I paste…"));
    el.previewSource.replaceChildren(...choices);
    showPasteBox();
  }

  function showPasteBox() {
    const pasting = el.previewSource.value === "paste";
    el.pasteBox.hidden = !pasting;
    if (pasting && !el.recordText.value.trim()) {
      const record = state.preview && state.preview.record;
      el.recordText.value = record ? JSON.stringify(record, null, 2) : "{\n  \n}";
    }
  }

  function previewRequest() {
    const { rules, targets } = engineRules();
    const choice = el.previewSource.value;
    const body = { rules, record_source: choice.startsWith("event:") ? "event" : choice };
    if (choice.startsWith("event:")) body.event_id = choice.slice(6);
    if (choice === "paste") body.record_text = el.recordText.value;
    return { body, targets };
  }

  function schedulePreview(delay = PREVIEW_DELAY_MS) {
    clearTimeout(state.previewTimer);
    state.previewTimer = setTimeout(runPreview, delay);
  }

  async function runPreview() {
    const seq = ++state.previewSeq;
    const { body, targets } = previewRequest();
    el.spinner.classList.add("htmx-request");
    let answer;
    try {
      const response = await post(config.urls.preview, body);
      answer = await response.json();
    } catch {
      answer = { record_error: "The preview could not reach the hub. Check your connection; it will try again on your next change." };
    }
    if (seq !== state.previewSeq) return; // a newer request is on its way
    el.spinner.classList.remove("htmx-request");
    state.sentTargets = targets;
    if (answer.record_error || answer.message) {
      el.recordError.textContent = answer.record_error || answer.message;
      el.recordError.hidden = false;
      el.output.classList.add("stale");
      state.preview = null;
    } else {
      el.recordError.hidden = true;
      el.output.classList.remove("stale");
      state.preview = answer;
    }
    renderPreview();
  }

  /** What the target's contract refuses in the previewed record (checked as before each delivery). */
  function contractViolations() {
    const contract = state.preview && state.preview.contract;
    if (!contract) return [];
    // The server numbers rules as sent; a rule's row is found by the target it was sent with.
    return contract.violations.map((v) => ({ ...v, index: v.index >= 0 && state.sentTargets[v.index] !== undefined ? v.index : -1 }));
  }

  function refusedWords(violation) {
    const elsewhere = violation.field && violation.field !== state.sentTargets[violation.index] ? ` (in ${violation.field})` : "";
    return `${violation.problem}${elsewhere}: the hub would not send it`;
  }

  /** One verdict on the previewed record: what stops it from reaching the target, or that nothing does. */
  function renderPreview() {
    const preview = state.preview;
    if (preview) el.output.textContent = JSON.stringify(preview.output, null, 2);
    const general = preview ? (preview.errors || []).filter((e) => e.index < 0) : [];
    const failing = preview ? (preview.errors || []).filter((e) => e.index >= 0).length : 0;
    const contract = preview && preview.contract;
    const missing = preview ? missingRequired() : [];
    // A required field no rule fills is said once, by the line about unmapped fields.
    const violations = contractViolations().filter((v) => !(v.index < 0 && missing.includes(v.field)));
    const byRule = violations.filter((v) => v.index >= 0).length;
    const problems = [
      ...general.map((e) => e.message),
      failing ? `${failing} rule${failing === 1 ? " has a problem" : "s have problems"}: see the red notes beside ${failing === 1 ? "it" : "them"}.` : null,
      missing.length ? `The target would refuse this record: ${missing.join(", ")} ${missing.length === 1 ? "is" : "are"} required but not mapped yet.` : null,
      byRule ? `${contract.against} would refuse ${byRule === 1 ? "a value" : `${byRule} values`}: see the red notes beside the rules. The hub would not send this record.` : null,
      ...violations.filter((v) => v.index < 0).map((v) => `${contract.against} would refuse this record: ${v.message}.`),
    ].filter(Boolean);
    const verdict = problems.map((text) => h("p", { class: "field-error" }, text));
    if (preview && !problems.length) {
      const accepted = contract ? `every required field is filled, and ${contract.against} accepts the record as it is.` : "and every required field is filled.";
      verdict.push(h("p", { class: "ok-line" }, `Every rule ran without a problem, ${accepted}`));
    }
    el.problems.replaceChildren(...verdict);
    renderSourceValues();
    updateAllRows();
    scheduleDraw();
  }

  // ---------------------------------------------------------------------------------------------
  // Saving
  // ---------------------------------------------------------------------------------------------

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
    return cookie ? decodeURIComponent(cookie.split("=")[1]) : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
  }

  const isDirty = () => JSON.stringify(engineRules().rules) !== state.savedJson;

  function updateSaveState() {
    if (!el.saveButton) return;
    const dirty = isDirty();
    el.saveButton.disabled = !dirty;
    el.saveButton.textContent = `Save as version ${state.version + 1}`;
    el.dirtyFlag.hidden = !dirty;
  }

  /** A last word before saving a mapping that cannot fill its target: flows would fail with it. */
  function confirmSave(rules) {
    const missing = missingRequired();
    if (!rules.length) {
      return window.confirm("This mapping has no rules left: flows using it would send nothing. Save anyway?");
    }
    if (missing.length) {
      return window.confirm(`${missing.join(", ")} ${missing.length === 1 ? "is" : "are"} required but not mapped: the target will refuse these records. Save anyway?`);
    }
    return true;
  }

  async function save() {
    const { rules, targets } = engineRules();
    if (!confirmSave(rules)) return;
    el.saveButton.disabled = true;
    el.saveStatus.textContent = "Saving…";
    let response;
    let answer;
    try {
      response = await post(config.urls.save, { rules, comment: el.saveComment.value, base_version: state.version });
      answer = await response.json();
    } catch {
      el.saveStatus.textContent = "Not saved: the hub could not be reached. Try again in a moment.";
      updateSaveState();
      return;
    }
    if (response.ok && answer.saved) {
      state.version = answer.version;
      state.savedJson = JSON.stringify(rules);
      el.saveComment.value = "";
      el.versionBadge.textContent = `Version ${answer.version}`;
      el.saveStatus.replaceChildren(answer.message, " ", h("a", { href: answer.history_url }, "See the history"));
    } else {
      for (const error of answer.errors || []) {
        if (error.index >= 0 && targets[error.index]) state.saveErrors.set(targets[error.index], error.problem);
      }
      el.saveStatus.textContent = answer.message || "Not saved: something went wrong.";
      updateAllRows();
      scheduleDraw();
    }
    updateSaveState();
  }

  // ---------------------------------------------------------------------------------------------
  // Start
  // ---------------------------------------------------------------------------------------------

  function start() {
    renderSources();
    renderTargets();
    renderRequired();
    renderSuggestions();
    renderRecordChoices();
    updateSaveState();
    scheduleDraw();
    if (CAN_EDIT) {
      el.sources.addEventListener("pointerdown", onPointerDown);
      document.addEventListener("pointermove", onPointerMove);
      document.addEventListener("pointerup", onPointerUp);
      el.sources.addEventListener("click", onSourceClick);
      el.targets.addEventListener("click", onTargetClick);
      el.targets.addEventListener("input", onTargetInput);
      el.targets.addEventListener("change", onTargetChange);
      el.saveButton.addEventListener("click", save);
      el.suggestionList.addEventListener("click", onSuggestionClick);
      el.matchButton.addEventListener("click", () => acceptSuggestions(openSuggestions().filter((s) => s.same_named)));
      document.addEventListener("keydown", (event) => {
        if (event.key === "Escape" && state.selected) onSourceClick({ target: sourceEls.get(state.selected) });
      });
      window.addEventListener("beforeunload", (event) => {
        if (isDirty()) event.preventDefault();
      });
    }
    el.previewSource.addEventListener("change", () => {
      showPasteBox();
      schedulePreview(0);
    });
    el.recordText.addEventListener("input", () => schedulePreview());
    window.addEventListener("resize", scheduleDraw);
    window.addEventListener("scroll", scheduleDraw, true);
    if (window.ResizeObserver) new ResizeObserver(scheduleDraw).observe(el.canvas);
    schedulePreview(0);
  }

  start();
})();
