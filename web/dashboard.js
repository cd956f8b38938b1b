/* SPDX-License-Identifier: MIT */
/*
 * dashboard.js - the operator's page (dashboard.html): this node's live
 * numbers and chart (GET /stats/events), every node of the cluster and
 * their rooms (GET /cluster/nodes, read every 2 s), a room's page with who
 * is online (GET /rooms/{room}/presence), its last messages (GET
 * /rooms/{room}/history) and actions: publish (POST /rooms/{room}/messages),
 * disconnect a user (DELETE /users/{user}/connections) or a connection
 * (DELETE /connections/{id}).
 *
 * The operator key (an API key, auth.api_keys) is needed with
 * auth.protect_admin: the page is opened as /dashboard.html?access_token=KEY
 * (the page itself is protected), or typed into the key field; it is kept
 * in sessionStorage (this tab only) and sent as Authorization: Bearer
 * (?access_token= for the EventSource, which cannot send a header).
 */
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const svgNS = 'http://www.w3.org/2000/svg';
  const MAX_SAMPLES = 900; /* one a second: the longest range */
  const NODES_EVERY_MS = 2000;
  const fmtInt = new Intl.NumberFormat();
  const samples = []; /* {t, out, in} */
  const chart = $('chart');

  /* ---- the operator key */
  const KEY_ITEM = 'crier.operatorKey';
  const fromUrl = new URLSearchParams(location.search).get('access_token');
  let key = fromUrl || storedKey() || '';
  $('key').value = key;
  if (fromUrl) saveKey(fromUrl);

  function storedKey() {
    try { return sessionStorage.getItem(KEY_ITEM); } catch (_) { return null; }
  }
  function saveKey(k) {
    try { if (k) sessionStorage.setItem(KEY_ITEM, k); else sessionStorage.removeItem(KEY_ITEM); } catch (_) { /* storage off */ }
  }
  function headers(extra) {
    return Object.assign(key ? { Authorization: 'Bearer ' + key } : {}, extra || {});
  }
  function keyNote(text) { $('key-note').textContent = text || ''; }

  async function api(method, path, body, contentType) {
    const opts = { method, headers: headers(body != null ? { 'Content-Type': contentType } : null), cache: 'no-store' };
    if (body != null) opts.body = body;
    const res = await fetch(path, opts);
    let json = null;
    try { json = await res.json(); } catch (_) { /* not JSON */ }
    if (res.status === 401 || res.status === 403) keyNote(`${method} ${path}: ${res.status}, ${json?.error || 'refused'}. Enter the operator key (an API key of auth.api_keys).`);
    return { status: res.status, json };
  }

  $('key-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    key = $('key').value.trim();
    saveKey(key);
    keyNote('');
    openStream();
    readNodes();
  });

  /* ---- numbers */
  function set(id, value) { $(id).textContent = value; }
  function rate(x) { return Number(x || 0).toFixed(1); }
  function bytes(n) {
    if (!Number.isFinite(n)) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return `${n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
  }
  function duration(s) {
    s = Math.floor(s || 0);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }

  /* A tick step of 1, 2 or 5 times a power of ten, giving at most `most`
   * intervals up to max; and the axis top, a multiple of it. */
  function niceScale(peak, most = 5) {
    if (!(peak > 0)) return { step: 0.2, top: 1 };
    const raw = peak / most;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
    return { step, top: Math.ceil(peak / step - 1e-9) * step };
  }
  window.crierDashboard = { niceScale };

  function tickText(v, step) {
    const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
    return v.toFixed(decimals);
  }

  function el(name, attrs, text) {
    const e = document.createElementNS(svgNS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text != null) e.textContent = text;
    return e;
  }

  function range() { return Number($('range').value) || 60; }

  function draw() {
    const W = chart.clientWidth || 600, H = chart.clientHeight || 200;
    const padL = 40, padR = 10, padT = 8, padB = 18;
    const w = W - padL - padR, h = H - padT - padB;
    const span = range();
    const now = Date.now();
    const shown = samples.filter((s) => now - s.t <= span * 1000);
    chart.setAttribute('viewBox', `0 0 ${W} ${H}`);
    const peak = shown.reduce((m, s) => Math.max(m, s.out, s.in), 0);
    const { step, top } = niceScale(peak);
    chart.replaceChildren();
    for (let v = 0; v <= top + step / 2; v += step) {
      const y = padT + h - (h * v) / top;
      chart.append(el('line', { class: 'grid-line', x1: padL, x2: padL + w, y1: y, y2: y }));
      chart.append(el('text', { class: 'axis', x: padL - 6, y: y + 4, 'text-anchor': 'end' }, tickText(v, step)));
    }
    /* time ticks: the first of these steps that leaves ~50 px a label */
    const tstep = [10, 20, 30, 60, 120, 300, 600].find((st) => (w * st) / span >= 50) || span;
    const x = (t) => padL + w - (w * (now - t)) / (span * 1000);
    for (let ago = 0; ago <= span; ago += tstep) {
      const label = ago === 0 ? 'now' : ago < 60 ? `-${ago} s` : `-${ago / 60} min`;
      const anchor = ago === 0 ? 'end' : ago === span ? 'start' : 'middle';
      chart.append(el('text', { class: 'axis', x: x(now - ago * 1000), y: H - 4, 'text-anchor': anchor }, label));
    }
    if (!shown.length) return;
    const y = (v) => padT + h - (h * v) / top;
    const pts = (k) => shown.map((s) => `${x(s.t).toFixed(1)},${y(s[k]).toFixed(1)}`).join(' ');
    const outPts = pts('out');
    chart.append(el('polygon', { class: 'area',
      points: `${x(shown[0].t).toFixed(1)},${y(0)} ${outPts} ${x(shown[shown.length - 1].t).toFixed(1)},${y(0)}` }));
    chart.append(el('polyline', { class: 'in', points: pts('in') }));
    chart.append(el('polyline', { class: 'out', points: outPts }));
    set('peak-out', rate(shown.reduce((m, s) => Math.max(m, s.out), 0)));
  }

  function update(s) {
    const c = s.connections || {};
    const ws = c.websocket || 0, sse = c.sse || 0, lp = c.long_polling || 0;
    set('ws-count', fmtInt.format(ws));
    set('sse-count', fmtInt.format(sse));
    set('lp-count', fmtInt.format(lp));
    set('total-connections', fmtInt.format(ws + sse + lp));
    set('rooms', fmtInt.format(s.rooms || 0));
    set('in-rate', rate(s.messages_in_per_s));
    set('out-rate', rate(s.messages_out_per_s));
    set('dropped', fmtInt.format(s.dropped || 0));
    set('published', fmtInt.format(s.published || 0));
    set('delivered', fmtInt.format(s.delivered || 0));
    samples.push({ t: Date.now(), out: Number(s.messages_out_per_s) || 0, in: Number(s.messages_in_per_s) || 0 });
    while (samples.length > MAX_SAMPLES) samples.shift();
    draw();
  }

  /* ---- this node's stream */
  const state = $('stream-state');
  function streamState(text, cls) { state.textContent = text; state.className = cls; }
  let es = null;
  function openStream() {
    if (es) es.close();
    es = new EventSource('/stats/events' + (key ? '?access_token=' + encodeURIComponent(key) : ''));
    es.onopen = () => streamState('live', 'live');
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) streamState('stream closed; check the key', 'down');
      else streamState('reconnecting…', '');
    };
    es.onmessage = (ev) => {
      let s;
      try { s = JSON.parse(ev.data); } catch (_) { return; }
      streamState('live', 'live');
      update(s);
    };
  }

  /* ---- the cluster's nodes and rooms */
  const lastNode = new Map(); /* node -> {t, published, delivered, cpu} */
  const lastRoom = new Map(); /* room -> {t, last_id, epoch} */
  let roomRows = [];
  let sortKey = 'room', sortDir = 1;
  let selected = null;

  function cell(tr, text, title) {
    const td = document.createElement('td');
    td.textContent = text;
    if (title) td.title = title;
    tr.append(td);
    return td;
  }

  function nodeRates(n, now) {
    const prev = lastNode.get(n.node);
    lastNode.set(n.node, { t: now, published: n.published, delivered: n.delivered, cpu: n.cpu_seconds,
                           rin: prev?.rin, rout: prev?.rout, rcpu: prev?.rcpu });
    const cur = lastNode.get(n.node);
    if (prev && now > prev.t) {
      const dt = (now - prev.t) / 1000;
      cur.rin = Math.max(0, (n.published - prev.published) / dt);
      cur.rout = Math.max(0, (n.delivered - prev.delivered) / dt);
      cur.rcpu = Math.max(0, ((n.cpu_seconds || 0) - (prev.cpu || 0)) / dt) * 100;
    }
    return cur;
  }

  function renderNodes(data, now) {
    const body = $('nodes').tBodies[0];
    body.replaceChildren();
    const tot = { ws: 0, sse: 0, lp: 0, rss: 0, cpu: 0, rin: 0, rout: 0 };
    const nodes = [...data.nodes].sort((a, b) => a.node.localeCompare(b.node));
    for (const n of nodes) {
      const r = nodeRates(n, now);
      const c = n.connections || {};
      const tr = document.createElement('tr');
      tr.dataset.node = n.node;
      cell(tr, n.node, n.backplane === 'redis' ? 'node id on the Redis backplane' : 'the memory backplane: one node');
      cell(tr, duration(n.uptime_s));
      cell(tr, n.version || '–');
      cell(tr, `${c.websocket || 0} / ${c.sse || 0} / ${c.long_polling || 0}`);
      cell(tr, bytes(n.rss_bytes), `${n.open_fds ?? '?'} open files`);
      cell(tr, r.rcpu == null ? '–' : `${r.rcpu.toFixed(1)} %`);
      cell(tr, r.rin == null ? '–' : rate(r.rin));
      cell(tr, r.rout == null ? '–' : rate(r.rout));
      body.append(tr);
      tot.ws += c.websocket || 0; tot.sse += c.sse || 0; tot.lp += c.long_polling || 0;
      tot.rss += n.rss_bytes || 0; tot.cpu += r.rcpu || 0; tot.rin += r.rin || 0; tot.rout += r.rout || 0;
    }
    const foot = $('nodes').tFoot;
    foot.replaceChildren();
    const tr = document.createElement('tr');
    cell(tr, `total (${nodes.length})`);
    cell(tr, '');
    cell(tr, '');
    cell(tr, `${tot.ws} / ${tot.sse} / ${tot.lp}`);
    cell(tr, bytes(tot.rss));
    cell(tr, `${tot.cpu.toFixed(1)} %`);
    cell(tr, rate(tot.rin));
    cell(tr, rate(tot.rout));
    foot.append(tr);
    set('node-count', `(${nodes.length})`);
    set('partial', data.partial ? 'a node did not answer in time' : '');
  }

  /* Every node's rooms as one list: members added up, the newest last id. */
  function mergeRooms(data, now) {
    const byName = new Map();
    for (const n of data.nodes) {
      for (const r of n.room_list || []) {
        let m = byName.get(r.room);
        if (!m) byName.set(r.room, (m = { room: r.room, members: 0, last_id: 0, epoch: r.epoch, history_bytes: 0, nodes: 0 }));
        m.members += r.members;
        if (r.last_id >= m.last_id) { m.last_id = r.last_id; m.epoch = r.epoch; }
        m.history_bytes = Math.max(m.history_bytes, r.history_bytes);
        m.nodes++;
      }
    }
    for (const m of byName.values()) {
      const prev = lastRoom.get(m.room);
      m.rate = prev && prev.epoch === m.epoch && now > prev.t ? Math.max(0, (m.last_id - prev.last_id) / ((now - prev.t) / 1000)) : 0;
      if (!prev || now - prev.t >= 1000) lastRoom.set(m.room, { t: now, last_id: m.last_id, epoch: m.epoch });
    }
    return [...byName.values()];
  }

  function renderRooms() {
    const filter = $('room-filter').value.trim().toLowerCase();
    const rows = roomRows.filter((r) => !filter || r.room.toLowerCase().includes(filter));
    rows.sort((a, b) => {
      const x = a[sortKey], y = b[sortKey];
      const c = typeof x === 'string' ? x.localeCompare(y) : x - y;
      return (c || a.room.localeCompare(b.room)) * sortDir;
    });
    const body = $('rooms-table').tBodies[0];
    body.replaceChildren();
    for (const r of rows) {
      const tr = document.createElement('tr');
      tr.dataset.room = r.room;
      if (r.room === selected) tr.className = 'selected';
      const td = document.createElement('td');
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'link';
      b.textContent = r.room;
      b.addEventListener('click', () => openRoom(r.room));
      td.append(b);
      tr.append(td);
      cell(tr, fmtInt.format(r.members));
      cell(tr, rate(r.rate));
      cell(tr, fmtInt.format(r.last_id), `epoch ${r.epoch}`);
      cell(tr, bytes(r.history_bytes));
      cell(tr, String(r.nodes));
      body.append(tr);
    }
    set('room-count', `(${roomRows.length})`);
    $('rooms-empty').hidden = rows.length > 0;
  }

  for (const th of $('rooms-table').tHead.rows[0].cells) {
    th.querySelector('button').addEventListener('click', () => {
      const k = th.dataset.key;
      sortDir = sortKey === k ? -sortDir : (k === 'room' ? 1 : -1);
      sortKey = k;
      for (const other of th.parentNode.cells) other.removeAttribute('aria-sort');
      th.setAttribute('aria-sort', sortDir > 0 ? 'ascending' : 'descending');
      renderRooms();
    });
  }
  $('room-filter').addEventListener('input', renderRooms);

  let reading = false;
  async function readNodes() {
    if (reading) return;
    reading = true;
    try {
      const res = await api('GET', '/cluster/nodes');
      if (res.status !== 200 || !res.json) return;
      keyNote('');
      const now = Date.now();
      renderNodes(res.json, now);
      roomRows = mergeRooms(res.json, now);
      renderRooms();
      if (selected) readRoom(selected);
    } catch (_) {
      /* the next round */
    } finally {
      reading = false;
    }
  }

  /* ---- a room's page */
  async function openRoom(room) {
    selected = room;
    $('room-view').hidden = false;
    set('room-name', room);
    set('action-result', '');
    renderRooms();
    await readRoom(room);
    $('room-view').scrollIntoView({ block: 'nearest' });
  }

  async function readRoom(room) {
    const path = `/rooms/${encodeURIComponent(room)}`;
    const [presence, info] = await Promise.all([api('GET', `${path}/presence`), api('GET', path)]);
    if (room !== selected) return;
    const users = $('room-users');
    users.replaceChildren();
    const p = presence.json || {};
    for (const u of p.users || []) {
      const li = document.createElement('li');
      li.dataset.user = u.user;
      const name = document.createElement('span');
      name.textContent = `${u.user} (${u.connections})`;
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'danger';
      b.textContent = 'Disconnect';
      b.setAttribute('aria-label', `Disconnect ${u.user}`);
      b.addEventListener('click', () => disconnectUser(u.user));
      li.append(name, b);
      users.append(li);
    }
    $('room-users-empty').hidden = (p.users || []).length > 0;
    const lastId = info.json?.last_id || 0;
    set('room-summary', `${p.count ?? 0} users, ${p.anonymous ?? 0} anonymous · last id ${lastId}`);
    const hist = lastId ? await api('GET', `${path}/history?since=${Math.max(0, lastId - 20)}&limit=20`) : { json: { messages: [] } };
    if (room !== selected) return;
    const list = $('room-messages');
    list.replaceChildren();
    for (const m of hist.json?.messages || []) {
      const li = document.createElement('li');
      const id = document.createElement('span');
      id.className = 'id';
      id.textContent = `#${m.id}`;
      const text = document.createElement('span');
      text.className = 'data';
      text.textContent = typeof m.data === 'string' ? m.data : JSON.stringify(m.data);
      li.append(id, text);
      list.append(li);
    }
  }

  function result(text) { set('action-result', text); }
  const REASON = encodeURIComponent('disconnected by an operator');

  async function disconnectUser(user) {
    const res = await api('DELETE', `/users/${encodeURIComponent(user)}/connections?reason=${REASON}`);
    result(res.status === 200
      ? `${user}: ${res.json?.disconnected ?? 0} of ${res.json?.connections ?? 0} connection(s) disconnected${res.json?.partial ? ' (a node did not answer)' : ''}`
      : `${user}: ${res.status} ${res.json?.error || ''}`);
    if (selected) setTimeout(() => readRoom(selected), 500);
  }

  $('conn-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const id = $('conn-id').value.trim();
    if (!id) return;
    const res = await api('DELETE', `/connections/${encodeURIComponent(id)}?reason=${REASON}`);
    result(res.status === 200
      ? `connection ${id}: ${res.json?.disconnected ? 'disconnected' : 'not disconnected'}`
      : `connection ${id}: ${res.status} ${res.json?.error || ''}`);
  });

  $('publish-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const text = $('pub-text').value;
    let body = text, type = 'text/plain';
    try { JSON.parse(text); type = 'application/json'; } catch (_) { body = text; }
    const res = await api('POST', `/rooms/${encodeURIComponent(selected)}/messages`, body, type);
    result(res.status === 201 || res.status === 202 ? `published as #${res.json?.id}` : `not published: ${res.status} ${res.json?.error || ''}`);
    if (res.status === 201) $('pub-text').value = '';
    readRoom(selected);
  });

  $('range').addEventListener('change', draw);
  window.addEventListener('resize', draw);
  openStream();
  draw();
  readNodes();
  setInterval(readNodes, NODES_EVERY_MS);
})();
