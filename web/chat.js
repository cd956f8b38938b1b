/* SPDX-License-Identifier: MIT */
/*
 * chat.js - the chat page (chat.html) on crier.js: rooms with unread
 * counts, each room's last messages on open (history with no cursor), live
 * ones after, a divider where messages are missing (a gap the server
 * signals), who is online (GET /rooms/{room}/presence and CrierPresence
 * events), the user from the token's `sub`, and a dev login that mints a
 * token in the browser (README "Try it").
 *
 * Query: ?room=R (the room shown first), ?rooms=a,b (rooms listed),
 * ?transports=websocket|sse|longpolling (in order), ?hub=/hubs/chat,
 * ?debug=1; the token: #token=T (a fragment never reaches a server's log),
 * ?token=T, or the sign-in pane.
 */
'use strict';
(function () {
  const params = new URLSearchParams(location.search);
  const ROOM_RE = /^[A-Za-z0-9._:-]{1,128}$/;
  const KEEP = 200;            /* messages kept per room in the page */
  const PRESENCE_EVERY_MS = 3000; /* presence is read again this often (events come only with a rule) */
  const first = ROOM_RE.test(params.get('room') || '') ? params.get('room') : 'lobby';
  const hub = params.get('hub') || '/hubs/chat';
  const listed = (params.get('rooms') || 'lobby,random,help').split(',').filter((r) => ROOM_RE.test(r));
  const options = { history: true };
  if (params.get('transports')) options.transports = params.get('transports').split(',');
  if (params.get('debug')) options.logger = true;

  const $ = (id) => document.getElementById(id);
  const els = {
    room: $('room'), transport: $('transport'), state: $('state'), notice: $('notice'), me: $('me'),
    messages: $('messages'), scroller: $('scroller'), form: $('form'), name: $('name'),
    message: $('message'), send: $('send'), rooms: $('rooms'), online: $('online'),
    onlineCount: $('online-count'), token: $('token'), sideToggle: $('side-toggle'), sideUnread: $('side-unread'),
  };

  /* ---- the token and who the user is */
  const fragment = new URLSearchParams(location.hash.slice(1));
  els.token.value = fragment.get('token') || params.get('token') || sessionToken() || '';
  options.token = () => els.token.value.trim() || null;

  function sessionToken() {
    try { return sessionStorage.getItem('crier.token'); } catch (_) { return null; }
  }

  /* The token's claims (not checked here: the server does), or null. */
  function claims(token) {
    const part = (token || '').split('.')[1];
    if (!part) return null;
    try {
      const json = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='));
      const c = JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (ch) => ch.charCodeAt(0))));
      return c && typeof c === 'object' ? c : null;
    } catch (_) { return null; }
  }

  function showUser() {
    const sub = claims(els.token.value.trim())?.sub;
    if (typeof sub === 'string' && sub) {
      els.me.textContent = sub;
      els.name.value = sub;
      els.name.readOnly = true;
      els.name.title = 'your user, from the token';
    } else {
      els.me.textContent = 'guest';
      els.name.readOnly = false;
      els.name.title = '';
      if (!els.name.value) {
        try { els.name.value = localStorage.getItem('crier.name') || ''; } catch (_) { /* storage off */ }
      }
      if (!els.name.value) els.name.value = 'guest-' + Math.random().toString(36).slice(2, 6);
    }
  }

  function authHeaders() {
    const t = els.token.value.trim();
    return t ? { Authorization: 'Bearer ' + t } : {};
  }

  /* An HS256 token signed in the browser (WebCrypto) with the dev secret. */
  async function mintDevToken(user, secret) {
    const enc = new TextEncoder();
    const b64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    const now = Math.floor(Date.now() / 1000);
    const head = b64url(enc.encode(JSON.stringify({ alg: 'HS256', typ: 'JWT' })));
    const body = b64url(enc.encode(JSON.stringify({ sub: user, iat: now, exp: now + 8 * 3600,
      rooms: { subscribe: ['*'], publish: ['*'] } })));
    const key = await crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    const sig = new Uint8Array(await crypto.subtle.sign('HMAC', key, enc.encode(`${head}.${body}`)));
    return `${head}.${body}.${b64url(sig)}`;
  }

  function notice(text, isError) {
    els.notice.textContent = text || '';
    els.notice.className = isError ? 'error' : '';
  }

  /* ---- rooms: {name, items, unread, joined, joining, pos: {epoch, id}, users: Map, anonymous} */
  const rooms = new Map();
  let active = null;

  function roomState(name) {
    let r = rooms.get(name);
    if (!r) {
      r = { name, items: [], unread: 0, joined: false, joining: null, pos: null, users: new Map(), anonymous: 0, live: false };
      rooms.set(name, r);
    }
    return r;
  }

  function renderRooms() {
    els.rooms.replaceChildren();
    let others = 0;
    for (const r of rooms.values()) {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.dataset.room = r.name;
      if (r === active) b.setAttribute('aria-current', 'true');
      const n = document.createElement('span');
      n.textContent = '#' + r.name;
      const u = document.createElement('span');
      u.className = 'unread';
      u.textContent = r.unread ? String(r.unread) : '';
      if (r.unread) u.setAttribute('aria-label', `${r.unread} unread`);
      b.append(n, u);
      b.addEventListener('click', () => { switchTo(r.name); document.body.classList.remove('side-open'); els.sideToggle.setAttribute('aria-expanded', 'false'); });
      li.append(b);
      els.rooms.append(li);
      others += r === active ? 0 : r.unread;
    }
    els.sideUnread.textContent = others ? String(others) : '';
  }

  function renderOnline() {
    const r = active;
    els.online.replaceChildren();
    if (!r) return;
    const names = [...r.users.keys()].sort();
    for (const user of names) {
      const li = document.createElement('li');
      li.textContent = user;
      li.dataset.user = user;
      els.online.append(li);
    }
    if (r.anonymous) {
      const li = document.createElement('li');
      li.className = 'anon';
      li.textContent = `${r.anonymous} anonymous`;
      els.online.append(li);
    }
    els.onlineCount.textContent = `(${names.length + r.anonymous})`;
  }

  function itemElement(it) {
    const li = document.createElement('li');
    if (it.kind === 'gap') {
      li.className = 'divider';
      li.setAttribute('role', 'separator');
      li.textContent = it.text;
      return li;
    }
    li.className = 'msg' + (it.user === els.name.value.trim() ? ' mine' : '');
    const when = document.createElement('time');
    when.dateTime = it.at.toISOString();
    when.textContent = it.at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    const u = document.createElement('span');
    u.className = 'user';
    u.textContent = it.user;
    const t = document.createElement('span');
    t.className = 'text';
    t.textContent = it.text;
    li.append(when, u, t);
    return li;
  }

  function renderMessages() {
    els.messages.replaceChildren(...active.items.map(itemElement));
    els.scroller.scrollTop = els.scroller.scrollHeight;
  }

  function addItem(r, it) {
    r.items.push(it);
    if (r.items.length > KEEP) r.items.splice(0, r.items.length - KEEP);
    if (r !== active) {
      if (it.kind === 'msg' && r.live) { r.unread++; renderRooms(); }
      return;
    }
    const nearBottom = els.scroller.scrollHeight - els.scroller.scrollTop - els.scroller.clientHeight < 60;
    els.messages.append(itemElement(it));
    while (els.messages.children.length > KEEP) els.messages.firstChild.remove();
    if (nearBottom) els.scroller.scrollTop = els.scroller.scrollHeight;
  }

  function switchTo(name) {
    const r = roomState(name);
    active = r;
    r.unread = 0;
    chat.room = name;
    chat.joined = r.joined;
    els.room.textContent = '#' + name;
    document.title = `#${name} · crier chat`;
    const q = new URLSearchParams(location.search);
    q.set('room', name);
    history.replaceState(null, '', `${location.pathname}?${q}${location.hash}`);
    renderRooms();
    renderMessages();
    renderOnline();
    if (conn.state === 'connected') join(r);
    readPresence(r);
  }

  /* ---- presence */
  async function readPresence(r) {
    try {
      const res = await fetch(`/rooms/${encodeURIComponent(r.name)}/presence`, { headers: authHeaders(), cache: 'no-store' });
      if (!res.ok) return;
      const p = await res.json();
      r.users = new Map((p.users || []).map((u) => [u.user, u.connections]));
      r.anonymous = p.anonymous || 0;
      if (r === active) renderOnline();
    } catch (_) { /* the next round */ }
  }

  function presenceEvent(e) {
    const list = Array.isArray(e) ? e : [e];
    const r = rooms.get(conn.messageInfo?.room);
    if (!r) { /* which room is not said: read them all again */
      for (const x of rooms.values()) if (x.joined) readPresence(x);
      return;
    }
    for (const ev of list) {
      if (!ev || typeof ev.user !== 'string') continue;
      if (ev.action === 'join') r.users.set(ev.user, r.users.get(ev.user) || 1);
      else if (ev.action === 'leave') r.users.delete(ev.user);
    }
    if (r === active) renderOnline();
  }

  /* ---- the connection */
  const conn = crier.connect(hub, options);
  const chat = window.crierChat = { conn, room: first, joined: false, rooms };
  let retryMs = 2000;

  function showStatus() {
    els.state.textContent = conn.state;
    els.state.dataset.state = conn.state;
    els.transport.textContent = conn.state === 'connected' && conn.transport ? conn.transport : 'none';
    els.send.disabled = conn.state !== 'connected';
    $('my-conn').textContent = conn.state === 'connected' && conn.connectionId ? conn.connectionId : 'none';
  }

  conn.on('ReceiveMessage', (user, text) => {
    const info = conn.messageInfo;
    const r = info ? rooms.get(info.room) : active;
    if (!r) return;
    if (info && Number.isSafeInteger(info.id)) {
      /* the page's own copy of a room's position: a start over replays history again */
      if (r.pos && r.pos.epoch === info.epoch && info.id <= r.pos.id) return;
      r.pos = { epoch: info.epoch, id: info.id };
    }
    addItem(r, { kind: 'msg', user: String(user), text: typeof text === 'string' ? text : JSON.stringify(text), at: new Date() });
  });
  conn.on('CrierPresence', presenceEvent);
  conn.onstatechange(showStatus);
  conn.onreconnecting((err) => notice('Connection lost' + (err ? ` (${err.message})` : '') + '; reconnecting…'));
  let gapNote = '';
  conn.ongap((gap) => {
    const r = rooms.get(gap.room);
    if (!r) return;
    let text;
    if (gap.reason === 'epoch') text = 'The server restarted: messages sent meanwhile may be missing';
    else if (gap.since === 0) text = 'Older messages are no longer kept';
    else text = 'Some messages are missing here';
    addItem(r, { kind: 'gap', text, at: new Date() });
    if (gap.reason !== 'epoch') r.pos = null;
    if (gap.since !== 0) gapNote = text + '.';
  });
  conn.onreconnected(() => {
    notice(gapNote);
    gapNote = '';
    for (const r of rooms.values()) if (r.joined) readPresence(r);
  });
  let switching = false; /* a stop to connect again with a new token */
  conn.onclose((err) => {
    for (const r of rooms.values()) { r.joined = false; r.live = false; r.joining = null; }
    chat.joined = false;
    if (switching) {
      switching = false;
      start();
      return;
    }
    notice(`Disconnected${err ? `: ${err.message}` : '.'} Connecting again in ${Math.round(retryMs / 1000)} s.`, true);
    setTimeout(start, retryMs);
  });

  /* Joins r: what history holds (a first join), or after the last message
   * seen (a start over), which the server answers with a gap signal when
   * that is gone. */
  function join(r) {
    if (r.joined || r.joining || conn.state !== 'connected') return r.joining;
    r.visited = true;
    const args = r.pos && r.pos.epoch ? [r.name, r.pos.id, r.pos.epoch] : [r.name];
    r.joining = conn.invoke('JoinRoom', ...args).then(() => {
      r.joined = true;
      r.live = true;
      if (r === active) chat.joined = true;
    }, (err) => {
      if (r === active) notice(`Could not join #${r.name}: ${err.message}`, true);
    }).finally(() => { r.joining = null; });
    return r.joining;
  }

  els.form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = els.name.value.trim();
    const text = els.message.value.trim();
    if (!name || !text) return;
    if (!els.name.readOnly) {
      try { localStorage.setItem('crier.name', name); } catch (_) { /* storage off */ }
    }
    els.message.value = '';
    els.message.focus();
    try {
      await conn.invoke('SendToRoom', active.name, name, text);
      if (els.notice.classList.contains('error')) notice('');
    } catch (err) {
      els.message.value = els.message.value || text;
      notice('Not sent: ' + err.message, true);
    }
  });

  $('add-room').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = $('new-room');
    const name = input.value.trim();
    if (!ROOM_RE.test(name)) { notice('A room name is 1 to 128 of A-Z a-z 0-9 . _ : -', true); return; }
    input.value = '';
    switchTo(name);
  });

  els.sideToggle.addEventListener('click', () => {
    const open = document.body.classList.toggle('side-open');
    els.sideToggle.setAttribute('aria-expanded', String(open));
  });

  /* A new token: connect again with it (onclose starts over). */
  async function useToken() {
    try { sessionStorage.setItem('crier.token', els.token.value.trim()); } catch (_) { /* storage off */ }
    showUser();
    $('auth').open = false;
    if (conn.state !== 'disconnected') {
      switching = true;
      await conn.stop();
    }
  }
  $('use-token').addEventListener('click', useToken);
  $('dev-login').addEventListener('click', async () => {
    const user = $('dev-user').value.trim();
    const secret = $('dev-secret').value;
    if (!user || !secret) { notice('Dev login needs a user name and the dev secret.', true); return; }
    if (!crypto.subtle) { notice('Dev login needs a secure context (https or localhost).', true); return; }
    els.token.value = await mintDevToken(user, secret);
    $('dev-secret').value = '';
    await useToken();
    notice(`Signed in as ${user}.`);
  });

  async function start() {
    showStatus();
    try {
      await conn.start();
    } catch (err) {
      notice(`Could not connect: ${err.message} Retrying in ${Math.round(retryMs / 1000)} s.`, true);
      setTimeout(start, retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
      showStatus();
      return;
    }
    notice('');
    retryMs = 2000;
    await join(active);
    for (const r of rooms.values()) if (r !== active && r.visited) join(r);
    showStatus();
  }

  setInterval(() => { if (active && document.visibilityState !== 'hidden') readPresence(active); }, PRESENCE_EVERY_MS);
  showUser();
  for (const name of listed) roomState(name);
  switchTo(first);
  start();
})();
