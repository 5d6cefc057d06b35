"use strict";
// The fleet page: renders a snapshot ({status, flows}) and keeps it current
// from /events, polling /status.json while the stream is down. Everything
// is built with DOM calls and textContent: names and addresses come from
// the routers and are never parsed as markup.
(function () {
  const token = new URLSearchParams(location.search).get("token");
  const withToken = (path) => token ? path + "?token=" + encodeURIComponent(token) : path;
  const page = window.nemodPage = { loadedAt: Date.now(), renders: 0, version: null, mode: "connecting" };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function bytes(n) {
    n = Number(n || 0);
    const u = ["B", "kB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
    return (i ? n.toFixed(1) : n) + " " + u[i];
  }
  function duration(s) {
    s = Number(s || 0);
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m";
  }
  function routerState(bs) {
    let st = "down";
    for (const b of bs || []) {
      if (b.state === "registered") return "registered";
      if (b.state === "registering") st = "registering";
    }
    return st;
  }
  function pairs(dl, list) {
    for (const [k, v] of list) {
      if (v === undefined || v === null || v === "") continue;
      dl.append(el("dt", "", k), el("dd", "", v));
    }
  }

  function binding(b) {
    const box = el("div", "binding");
    box.dataset.bid = b.bid;
    const title = el("div", "title");
    title.append(el("span", "", (b.uplink ? b.uplink + " · " : "") + "BID " + b.bid),
      el("span", "badge s-" + b.state, b.state));
    const dl = el("dl");
    pairs(dl, [
      ["care-of", b.coa],
      ["outer", b.outer && b.outer !== b.coa ? b.outer : ""],
      ["encap", (b.encap || "") + (b.nat ? " · behind NAT" : "")],
      ["RTT", b.rtt_ms ? b.rtt_ms.toFixed(1) + " ms" : "—"],
      ["loss", b.rtt_ms || b.loss ? Math.round((b.loss || 0) * 100) + " %" : ""],
      ["traffic", "↑ " + bytes(b.tx_bytes) + " (" + (b.tx_packets || 0) + " pkts)  ↓ " + bytes(b.rx_bytes) + " (" + (b.rx_packets || 0) + " pkts)"],
      ["since", b.since],
      ["lifetime", b.lifetime ? duration(b.lifetime) : ""],
    ]);
    box.append(title, dl);
    return box;
  }

  function flows(list) {
    const box = el("div", "flows");
    for (const f of list) {
      const row = el("div", "flow");
      row.dataset.fid = f.fid || "";
      row.append(el("span", f.active ? "" : "off",
        (f.rule || "") + " · " + f.mode + (f.bids && f.bids.length ? " → BID " + f.bids.join(", ") : "") +
        " · " + (f.selector || "any") + " · " + (f.packets || 0) + " pkts" + (f.active ? "" : " (inactive)")));
      box.append(row);
    }
    return box;
  }

  function render(snap) {
    const st = snap.status || {};
    const byName = {};
    for (const f of (snap.flows && snap.flows.mobile_routers) || []) byName[f.name] = f.flows || [];
    document.getElementById("agent").textContent = "home agent " + (st.address || "?") +
      (st.address_v4 ? " / " + st.address_v4 : "") + (st.home_prefix ? " · prefix " + st.home_prefix : "") +
      " · up " + duration(st.uptime);
    const routers = st.mobile_routers || [];
    let up = 0, nb = 0;
    const main = document.getElementById("fleet");
    const cards = [];
    for (const r of routers) {
      const state = routerState(r.bindings);
      if (state === "registered") up++;
      nb += (r.bindings || []).length;
      const card = el("section", "router");
      card.dataset.router = r.name;
      const h = el("h2", "", r.name);
      h.append(el("span", "badge s-" + state, state));
      card.append(h, el("div", "meta", (r.home_address || "") + ((r.mnp || []).length ? " · " + r.mnp.join(", ") : "")));
      card.append(el("h3", "", "bindings"));
      if (!(r.bindings || []).length) card.append(el("div", "empty", "no binding"));
      for (const b of r.bindings || []) card.append(binding(b));
      const fl = byName[r.name] || [];
      if (fl.length) { card.append(el("h3", "", "flows")); card.append(flows(fl)); }
      cards.push(card);
    }
    if (!cards.length) cards.push(el("p", "empty", "no mobile router configured"));
    main.replaceChildren(...cards);
    document.getElementById("summary").textContent = up + " of " + routers.length + " routers registered · " + nb + " bindings";
    page.renders++;
  }

  function live(mode, text) {
    page.mode = mode;
    const p = document.getElementById("live");
    p.className = "live " + mode;
    p.textContent = text + " · " + new Date().toLocaleTimeString();
  }

  let pollTimer = null;
  function poll() {
    fetch(withToken("status.json"), { cache: "no-store" })
      .then((r) => { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then((s) => { render(s); live("poll", "polling"); })
      .catch(() => live("off", "no connection"));
  }
  function startPolling() {
    if (pollTimer) return;
    poll();
    pollTimer = setInterval(poll, 5000);
  }
  function stopPolling() { clearInterval(pollTimer); pollTimer = null; }

  if (!window.EventSource) { startPolling(); return; }
  const es = new EventSource(withToken("events"));
  es.addEventListener("status", (e) => {
    stopPolling();
    page.version = e.lastEventId;
    render(JSON.parse(e.data));
    live("on", "live");
  });
  es.addEventListener("heartbeat", () => { stopPolling(); live("on", "live"); });
  // EventSource reconnects by itself; until it does, the page polls.
  es.onerror = () => startPolling();
})();
