// The reviewers' dashboard: every read and change goes through /api/v1 with the typed key.
// Content is built as DOM text (never innerHTML), so names and notes cannot inject markup.
"use strict";

const API = "/api/v1";
const KEY = "shelfwise.apiKey";

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (name === "onclick") node.addEventListener("click", value);
    else if (name === "className") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function say(text, isError) {
  const message = document.getElementById("message");
  message.textContent = text;
  message.className = isError ? "error" : "";
}

async function call(method, path, body) {
  const key = sessionStorage.getItem(KEY);
  if (!key) throw new Error("type an API key first");
  const options = { method, headers: { "X-API-Key": key } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, options);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null; // a plain-text answer (a proxy's error page, say): shown as it came
  }
  if (!response.ok) {
    const detail = data && data.detail !== undefined ? data.detail : text;
    const shown = typeof detail === "string" ? detail : JSON.stringify(detail);
    throw new Error(`${method} ${path}: ${response.status} ${shown}`);
  }
  return data;
}

// Run a change, say what happened, and redraw everything it may have moved.
async function act(what, method, path, body) {
  try {
    await call(method, path, body);
    say(what);
    await refresh();
  } catch (error) {
    say(error.message, true);
  }
}

function ask(question) {
  const answer = window.prompt(question);
  return answer === null || answer.trim() === "" ? null : answer.trim();
}

function table(headings, rows) {
  if (!rows.length) return el("p", { className: "empty" }, "none");
  return el(
    "table",
    {},
    el("thead", {}, el("tr", {}, ...headings.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows),
  );
}

function show(title, text) {
  document.getElementById("detail-title").textContent = title;
  document.getElementById("detail").textContent = text;
}

async function showFrom(title, path, format) {
  try {
    const data = await call("GET", path);
    show(title, format ? format(data) : JSON.stringify(data, null, 2));
  } catch (error) {
    say(error.message, true);
  }
}

function evidenceText(e) {
  const lines = [
    `${e.model} v${e.version} (${e.state}) against champion v${e.champion}`,
    `primary metric: ${e.primary_metric}`,
    "",
    "metric: this version / champion",
  ];
  const names = new Set([...Object.keys(e.metrics), ...Object.keys(e.champion_metrics)]);
  for (const name of [...names].sort()) {
    lines.push(`  ${name}: ${e.metrics[name] ?? "-"} / ${e.champion_metrics[name] ?? "-"}`);
  }
  if (e.backtest) {
    lines.push("", "backtest on the same window:", JSON.stringify(e.backtest, null, 2));
  }
  if (e.importance_deltas.length) {
    lines.push("", "feature-importance deltas (gain share: this version, champion):");
    for (const d of e.importance_deltas) lines.push("  " + JSON.stringify(d));
  }
  return lines.join("\n");
}

function drawAlerts(alerts) {
  const rows = alerts.map((a) =>
    el(
      "tr",
      {},
      el("td", { className: a.severity }, a.severity),
      el("td", {}, a.type),
      el("td", {}, a.model_name ? `${a.model_name} ${a.version ? "v" + a.version : ""}` : ""),
      el("td", {}, el("strong", {}, a.title), el("br"), a.message),
      el(
        "td",
        {},
        el("button", { onclick: () => act(`alert ${a.id} read`, "PATCH", `/ml-alerts/${a.id}/read`) }, "Read"),
        ...["approve", "dismiss"].map((action) =>
          el(
            "button",
            {
              onclick: () => {
                const notes = window.prompt(`Notes for ${action} (optional)`);
                if (notes === null) return;
                act(`alert ${a.id}: ${action}`, "PATCH", `/ml-alerts/${a.id}/action`, { action, notes });
              },
            },
            action[0].toUpperCase() + action.slice(1),
          ),
        ),
      ),
    ),
  );
  document.getElementById("alerts").replaceChildren(table(["severity", "type", "model", "what", ""], rows));
}

function versionButtons(model, v) {
  const q = `?model=${encodeURIComponent(model)}`;
  const buttons = [
    el(
      "button",
      { onclick: () => showFrom(`${model} v${v.version}: model card`, `/models/${v.version}/card${q}`, (c) => c.markdown) },
      "Card",
    ),
  ];
  if (v.state === "challenger" || v.state === "experimental") {
    buttons.push(
      el(
        "button",
        { onclick: () => showFrom(`${model} v${v.version}: shadow test`, `/models/${v.version}/shadow${q}`) },
        "Shadow",
      ),
    );
  }
  if (v.state !== "champion") {
    buttons.push(
      el(
        "button",
        { onclick: () => showFrom(`${model} v${v.version}: evidence`, `/models/${v.version}/review${q}`, evidenceText) },
        "Evidence",
      ),
      // An archived version can be promoted again; rejecting it would archive it twice.
      ...(v.state === "archived" ? ["approve"] : ["approve", "reject"]).map((decision) =>
        el(
          "button",
          {
            onclick: () => {
              const notes = ask(`Why ${decision} ${model} v${v.version}? (recorded)`);
              if (notes) act(`${model} v${v.version}: ${decision === "approve" ? "approved" : "rejected"}`, "POST", `/models/${v.version}/review`, { model, decision, notes });
            },
          },
          decision === "reject" ? "Reject" : v.state === "archived" ? "Promote again" : "Approve",
        ),
      ),
    );
  }
  return buttons;
}

function drawModels(models) {
  const rows = [];
  for (const m of models) {
    // Offered only where the registry has a version to restore; otherwise its reason is shown.
    const rollback = m.rollback_to
      ? el(
          "button",
          {
            onclick: () => {
              const notes = ask(`Why roll ${m.model} back to v${m.rollback_to}? (recorded)`);
              if (notes) act(`${m.model} rolled back`, "POST", "/models/rollback", { model: m.model, notes });
            },
          },
          `Roll back to v${m.rollback_to}`,
        )
      : el("span", { className: "empty", title: m.rollback_refused || "" }, "no rollback");
    m.versions.forEach((v, index) => {
      rows.push(
        el(
          "tr",
          {},
          el("td", {}, index === 0 ? m.model : ""),
          el("td", {}, "v" + v.version),
          el("td", { className: v.state || "" }, v.state || ""),
          el("td", {}, v.registered_at),
          el("td", {}, ...versionButtons(m.model, v), v.state === "champion" ? rollback : null),
        ),
      );
    });
  }
  document.getElementById("models").replaceChildren(table(["model", "version", "state", "registered", ""], rows));
}

function drawExperiments(experiments) {
  const rows = experiments.map((x) => {
    const buttons = [
      el("button", { onclick: () => showFrom(`experiment ${x.id}: results`, `/experiments/${x.id}/results`) }, "Results"),
    ];
    if (x.status === "proposed") {
      buttons.push(
        el(
          "button",
          {
            onclick: () => {
              // approved as this key's name, which must not be the proposer's
              const rationale = ask(`Why approve experiment ${x.id}? (recorded with this key's name)`);
              if (rationale) act(`experiment ${x.id} approved`, "PATCH", `/experiments/${x.id}/approve`, { rationale });
            },
          },
          "Approve",
        ),
      );
    }
    if (["approved", "in_progress", "shadow_testing"].includes(x.status)) {
      buttons.push(
        el(
          "button",
          {
            onclick: () => {
              const decision = ask("Decision: adopt, partial_adopt or reject");
              const rationale = decision && ask("Rationale (recorded)");
              if (rationale) act(`experiment ${x.id} completed`, "POST", `/experiments/${x.id}/complete`, { decision, rationale });
            },
          },
          "Complete",
        ),
      );
    }
    return el(
      "tr",
      {},
      el("td", {}, x.id),
      el("td", {}, el("strong", {}, x.name), el("br"), x.hypothesis),
      el("td", {}, x.model_name),
      el("td", {}, x.status),
      el("td", {}, x.proposer),
      el("td", {}, ...buttons),
    );
  });
  document.getElementById("experiments").replaceChildren(table(["id", "experiment", "model", "status", "proposer", ""], rows));
}

async function refresh() {
  const parts = [
    ["/ml-alerts?status=unread", drawAlerts],
    ["/models", drawModels],
    ["/experiments", drawExperiments],
  ];
  const failed = [];
  for (const [path, draw] of parts) {
    try {
      draw(await call("GET", path));
    } catch (error) {
      failed.push(error.message);
    }
  }
  if (failed.length) say(failed.join("; "), true);
}

function start() {
  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, document.getElementById("key").value.trim());
    document.getElementById("key").value = "";
    say("key kept for this tab");
    refresh();
  });
  document.getElementById("forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    for (const id of ["alerts", "models", "experiments"]) document.getElementById(id).replaceChildren();
    show("Detail", "");
    say("key forgotten");
  });
  if (sessionStorage.getItem(KEY)) refresh();
  else say("type an API key (reader to look, reviewer to act)");
}

document.addEventListener("DOMContentLoaded", start);
