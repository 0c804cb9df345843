// The customer portal's script: served from the proxy (no CDN, nothing inline, no eval).
// The token is kept in sessionStorage only (this tab, until it closes or "Sign out") and is
// sent only in the Authorization header of same-origin requests: never in a URL or a log.
// Every value from the server goes into the page as text (textContent), never as markup.
"use strict";

(function () {
  const KEY = "bedrock-billing-portal-token";
  const SVG = "http://www.w3.org/2000/svg";
  const SIGNS = { USD: "$", EUR: "\u20ac", GBP: "\u00a3", JPY: "\u00a5", CAD: "CA$", AUD: "A$" };
  const numbers = new Intl.NumberFormat("en-US");
  const $ = (id) => document.getElementById(id);
  let account = null;

  function token() {
    return sessionStorage.getItem(KEY);
  }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // Relative to the page (".../portal"), so the same script works under any stage or base path.
  async function api(path) {
    const answer = await fetch(path, {
      headers: { Authorization: "Bearer " + token(), Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
    let body = null;
    try {
      body = await answer.json();
    } catch (e) {
      body = null;
    }
    if (!answer.ok) {
      const message = body && body.error && body.error.message;
      throw new ApiError(answer.status, message || "the request failed (" + answer.status + ")");
    }
    return body;
  }

  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    return node;
  }

  function count(n) {
    return n === null || n === undefined ? "no limit" : numbers.format(n);
  }

  function money(amount, currency) {
    if (amount === null || amount === undefined) return "no limit";
    const sign = SIGNS[currency];
    if (!sign) return amount + " " + (currency || "");
    return (amount.startsWith("-") ? "-" : "") + sign + amount.replace(/^-/, "");
  }

  // A per-token price as a price per million tokens, by moving the decimal point (no float).
  function perMillion(price) {
    const negative = price.startsWith("-");
    const [whole, fraction = ""] = price.replace(/^-/, "").split(".");
    const digits = fraction.padEnd(6, "0");
    const units = (whole + digits.slice(0, 6)).replace(/^0+(?=\d)/, "");
    const rest = digits.slice(6).replace(/0+$/, "").padEnd(2, "0");
    return (negative ? "-" : "") + units + "." + rest;
  }

  function say(text) {
    $("status").textContent = text;
  }

  function fail(text) {
    const box = $("error");
    box.textContent = text;
    box.hidden = !text;
  }

  function show(signedIn) {
    $("signin").hidden = signedIn;
    $("signout").hidden = !signedIn;
    for (const id of ["account", "usage", "invoices"]) $(id).hidden = !signedIn;
    if (!signedIn) $("invoice").hidden = true;
  }

  // ---- account: limits and this month's usage against them

  function gauge(what, used, limit, usedText, leftText) {
    const item = el("li", null, { "data-gauge": what });
    item.append(el("div", what, { class: "what" }));
    item.append(el("div", usedText, { class: "value", "data-used": String(used) }));
    if (limit !== null && limit !== undefined) {
      const bar = el("progress", null, { max: String(limit), value: String(Math.min(used, limit)) });
      bar.setAttribute("aria-label", what + ": " + usedText);
      item.append(bar);
    }
    item.append(el("div", leftText, { class: "left" }));
    return item;
  }

  // The month's spend in cents; a few requests' worth shows as under a cent, not as nothing.
  function spent(m, currency) {
    if (m.spend === "0.00" && m.spend_exact !== "0") return "under " + money("0.01", currency);
    return money(m.spend, currency);
  }

  function renderAccount(a) {
    for (const node of document.querySelectorAll("#account [data-field]")) {
      const value = a[node.dataset.field];
      node.textContent = value === null || value === undefined ? "\u2014" : value;
    }
    const m = a.month_to_date, l = a.limits, r = a.remaining;
    const list = $("gauges");
    list.replaceChildren(
      gauge("Requests today", m.requests_today, l.daily_request_limit,
        count(m.requests_today) + (l.daily_request_limit === null ? "" : " of " + count(l.daily_request_limit)),
        l.daily_request_limit === null ? "No daily limit" : count(r.requests_today) + " left today"),
      gauge("Tokens this month", m.tokens, l.monthly_token_limit,
        count(m.tokens) + (l.monthly_token_limit === null ? "" : " of " + count(l.monthly_token_limit)),
        l.monthly_token_limit === null ? "No monthly token limit" : count(r.tokens_this_month) + " left this month"),
      gauge("Spend this month (estimate)", Number(m.spend), l.monthly_budget === null ? null : Number(l.monthly_budget),
        spent(m, a.currency) + (l.monthly_budget === null ? "" : " of " + money(l.monthly_budget, a.currency)),
        l.monthly_budget === null ? "No monthly budget" : money(r.budget, a.currency) + " left of the budget"),
    );
    const rpm = l.requests_per_minute;
    list.append(el("li", rpm === null ? "No per-minute limit" : count(rpm) + " requests per minute at most",
      { "data-gauge": "Requests per minute" }));
  }

  // ---- usage: totals, the daily chart (SVG drawn here), per model

  function fillPeriods(current) {
    const select = $("period");
    if (select.options.length) return;
    let [year, month] = current.split("-").map(Number);
    for (let i = 0; i < 12; i++) {
      const value = year + "-" + String(month).padStart(2, "0");
      select.append(el("option", value, { value: value }));
      month -= 1;
      if (month === 0) { month = 12; year -= 1; }
    }
    select.value = current;
  }

  function modelOrder(usage) {
    return usage.models.slice().sort((a, b) => b.total_tokens - a.total_tokens).map((m) => m.model);
  }

  function drawChart(usage) {
    const width = 720, height = 240, left = 56, bottom = 24, top = 10;
    const days = usage.daily;
    const order = modelOrder(usage);
    const shade = (model) => "s" + Math.min(order.indexOf(model), 7);
    const byDay = {};
    for (const row of usage.rows) (byDay[row.day] = byDay[row.day] || []).push(row);
    const peak = Math.max(1, ...days.map((d) => d.total_tokens));
    const slot = (width - left) / days.length;
    const scale = (height - bottom - top) / peak;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-labelledby", "chart-title");
    const add = (tag, attrs, text) => {
      const node = document.createElementNS(SVG, tag);
      for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
      if (text !== undefined) node.textContent = text;
      svg.append(node);
      return node;
    };
    add("line", { x1: left, y1: height - bottom, x2: width, y2: height - bottom, class: "axis" });
    add("line", { x1: left, y1: top, x2: left, y2: height - bottom, class: "axis" });
    add("text", { x: left - 6, y: top + 10, "text-anchor": "end" }, numbers.format(peak));
    add("text", { x: left - 6, y: height - bottom, "text-anchor": "end" }, "0");
    days.forEach((day, i) => {
      const x = left + i * slot + slot * 0.15;
      let y = height - bottom;
      const rows = (byDay[day.day] || []).slice().sort((a, b) => order.indexOf(a.model) - order.indexOf(b.model));
      for (const row of rows) {
        const h = row.total_tokens * scale;
        if (h <= 0) continue;
        y -= h;
        const bar = add("rect", { x: x, y: y, width: slot * 0.7, height: h, class: shade(row.model),
          "data-day": day.day, "data-model": row.model, "data-tokens": row.total_tokens });
        const tip = document.createElementNS(SVG, "title");
        tip.textContent = day.day + " " + row.model + ": " + numbers.format(row.total_tokens) + " tokens";
        bar.append(tip);
      }
      const n = Number(day.day.slice(8));
      if (n === 1 || n % 5 === 0) {
        add("text", { x: x + slot * 0.35, y: height - 8, "text-anchor": "middle" }, String(n));
      }
    });
    $("chart").replaceChildren(svg);
    $("legend").replaceChildren(...order.map((model) => {
      const item = el("li");
      const swatch = el("span", null, { class: shade(model), "aria-hidden": "true" });
      item.append(swatch, document.createTextNode(model));
      return item;
    }));
  }

  function renderUsage(usage) {
    const t = usage.totals;
    const cells = {
      requests: t.requests,
      input_tokens: t.input_tokens,
      output_tokens: t.output_tokens,
      cache_tokens: t.cache_read_input_tokens + t.cache_write_input_tokens,
      total_tokens: t.total_tokens,
    };
    const labels = { requests: "Requests", input_tokens: "Input tokens", output_tokens: "Output tokens",
      cache_tokens: "Cache tokens", total_tokens: "Total tokens" };
    for (const cell of document.querySelectorAll("#usage-totals [data-total]")) {
      const name = cell.dataset.total;
      cell.textContent = numbers.format(cells[name]);
      cell.dataset.value = String(cells[name]);
      cell.dataset.label = labels[name];
    }
    const models = $("models").tBodies[0];
    models.replaceChildren(...usage.models.map((m) => {
      const row = el("tr", null, { "data-model": m.model });
      row.append(el("th", m.model, { scope: "row" }));
      for (const name of ["requests", "input_tokens", "output_tokens", "total_tokens"]) {
        row.append(el("td", numbers.format(m[name]), { class: "n", "data-value": String(m[name]) }));
      }
      return row;
    }));
    if (!usage.models.length) {
      const row = el("tr");
      row.append(el("td", "No usage this month.", { colspan: "5" }));
      models.append(row);
    }
    $("daily").tBodies[0].replaceChildren(...usage.daily.map((d) => {
      const row = el("tr");
      row.append(el("th", d.day, { scope: "row" }), el("td", numbers.format(d.requests), { class: "n" }),
        el("td", numbers.format(d.total_tokens), { class: "n" }));
      return row;
    }));
    drawChart(usage);
  }

  async function loadUsage(period) {
    const usage = await api("v1/account/usage?period=" + encodeURIComponent(period));
    renderUsage(usage);
  }

  // ---- invoices: the list, and one invoice's document

  function renderInvoices(list) {
    const body = $("invoice-list").tBodies[0];
    $("no-invoices").hidden = list.invoices.length > 0;
    $("invoice-list").hidden = list.invoices.length === 0;
    body.replaceChildren(...list.invoices.map((inv) => {
      const row = el("tr", null, { "data-invoice": inv.id });
      row.append(el("th", inv.id, { scope: "row" }), el("td", inv.period), el("td", inv.status),
        el("td", (inv.issued_at || "").slice(0, 10)), el("td", money(inv.total, inv.currency), { class: "n" }));
      const open = el("button", "View", { type: "button", class: "link", "aria-label": "View invoice " + inv.id });
      open.addEventListener("click", () => openInvoice(inv.id));
      const cell = el("td");
      cell.append(open);
      row.append(cell);
      return row;
    }));
  }

  function renderInvoice(doc) {
    $("invoice-title").textContent = "Invoice " + doc.id;
    $("invoice-void").hidden = doc.status !== "void";
    const facts = [
      ["Invoice", doc.id], ["Customer", doc.customer_name], ["Customer ID", doc.customer_id],
      ["Period", doc.period], ["Plan", doc.plan], ["Issued", doc.issued_at], ["Status", doc.status],
      ["Currency", doc.currency],
    ];
    $("invoice-facts").replaceChildren(...facts.map(([k, v]) => {
      const div = el("div");
      div.append(el("dt", k), el("dd", v === null || v === undefined ? "\u2014" : v));
      return div;
    }));
    const lines = doc.lines.filter((l) => l.kind !== "true_up");
    $("invoice-lines").tBodies[0].replaceChildren(...lines.map((line) => {
      const row = el("tr");
      const perToken = /tokens$/.test(line.metric || "");
      const unit = line.unit_price === null ? "" : perToken
        ? money(perMillion(line.unit_price), doc.currency) + " / 1M tokens"
        : money(line.unit_price, doc.currency);
      row.append(el("td", line.description),
        el("td", line.quantity === null ? "" : numbers.format(line.quantity), { class: "n" }),
        el("td", unit, { class: "n" }), el("td", money(line.amount, doc.currency), { class: "n" }));
      return row;
    }));
    const totals = [["Subtotal", doc.subtotal]];
    if (doc.true_up && doc.true_up !== "0.00") totals.push(["Minimum commitment true-up", doc.true_up]);
    for (const d of doc.discounts || []) totals.push(["Discount: " + d.name, "-" + d.amount]);
    for (const c of doc.credits || []) totals.push(["Prepaid credit " + c.grant, "-" + c.applied]);
    totals.push(["Total", doc.total]);
    $("invoice-lines").tFoot.replaceChildren(...totals.map(([k, v]) => {
      const row = el("tr", null, k === "Total" ? { "data-total": "invoice" } : {});
      row.append(el("th", k, { colspan: "3", scope: "row" }), el("td", money(v, doc.currency), { class: "n" }));
      return row;
    }));
    $("invoice").hidden = false;
    $("invoice").focus();
  }

  async function openInvoice(id) {
    fail("");
    try {
      renderInvoice(await api("v1/account/invoices/" + encodeURIComponent(id)));
    } catch (err) {
      handle(err);
    }
  }

  // ---- the flow

  function handle(err) {
    if (err instanceof ApiError && err.status === 401) {
      sessionStorage.removeItem(KEY);
      show(false);
      fail("That token was not accepted: " + err.message);
      $("token").focus();
      return;
    }
    fail(err.message || "Something went wrong");
  }

  async function load() {
    fail("");
    say("Loading your account\u2026");
    try {
      account = await api("v1/account");
      renderAccount(account);
      fillPeriods(account.period);
      show(true);
      await Promise.all([loadUsage($("period").value), api("v1/account/invoices").then(renderInvoices)]);
      say("Up to date as of " + account.as_of);
      document.body.dataset.loaded = "true";
    } catch (err) {
      say("");
      handle(err);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault(); // never a form post, never the token in a URL
      const input = $("token");
      const value = input.value.trim();
      input.value = "";
      if (!value) {
        fail("Enter your API token.");
        return;
      }
      sessionStorage.setItem(KEY, value);
      load();
    });
    $("signout").addEventListener("click", () => {
      sessionStorage.removeItem(KEY);
      account = null;
      show(false);
      say("Signed out.");
    });
    $("period").addEventListener("change", (event) => {
      fail("");
      loadUsage(event.target.value).catch(handle);
    });
    $("print").addEventListener("click", () => window.print());
    $("close-invoice").addEventListener("click", () => {
      $("invoice").hidden = true;
    });
    show(false);
    if (token()) load();
  });
})();
