/* SPDX-License-Identifier: MIT */
/*
 * crier.js - a dependency-free browser client for crier's hubs, which speak
 * the ASP.NET Core SignalR protocol (negotiate + JSON hub protocol).
 *
 *   const conn = crier.connect('/hubs/chat', { transports: ['websocket', 'sse'] });
 *   conn.on('ReceiveMessage', (user, text) => ...);
 *   await conn.start();
 *   await conn.invoke('JoinRoom', 'lobby');
 *   await conn.invoke('SendToRoom', 'lobby', 'ann', 'hi');
 *
 * Transports: WebSocket, then Server-Sent Events (EventSource down, POST up),
 * then long polling (GET polls, POST up, DELETE on stop). A transport the
 * server does not offer is skipped; one that fails to start (or to finish the
 * handshake) within `startTimeoutMs` is abandoned and the next one is tried
 * on a fresh negotiate, as the official client does.
 *
 * After an unexpected close the connection reconnects by itself (exponential
 * backoff with jitter) and then joins again the rooms it had joined through
 * `joinMethod` (default "JoinRoom") and not left through `leaveMethod`
 * (default "LeaveRoom"). crier marks every room message with headers
 * (crier-room, crier-id, crier-epoch); the client remembers the last one per
 * room and rejoins with JoinRoom(room, since, epoch), so the server first
 * replays what was missed. When that is gone the server invokes
 * CrierGap({room, epoch, reason, since, resumed_from}): see ongap(cb).
 *
 * Ids of a room follow one another within an epoch. A jump while connected
 * (the server skipped this client: an operator's leave and join, a message
 * lost between) makes the client resume the room from the last id it saw:
 * it leaves and rejoins with JoinRoom(room, since, epoch), dropping that
 * room's messages until the leave is done, so the replay brings the missing
 * ones and what followed in order. A room it cannot resume (not joined
 * through joinMethod, or `resume: false`) gets a gap event with reason
 * "missed" instead. Never a silent hole.
 *
 * Which room a message is from: while a handler runs, `conn.messageInfo`
 * is {room, id, epoch} of the room message it handles (null for a message
 * to one connection or user).
 *
 * History with no cursor: `history: true` makes JoinRoom(room) ask for what
 * the room's history holds, as JoinRoom(room, 0): a late joiner sees the
 * room's last messages (and a gap event with since 0 when older ones are no
 * longer kept). The same for a rejoin of a room with no message seen yet.
 *
 * Access tokens: `token: 'T'` or `token: () => T` (a function may return a
 * Promise) is sent on every transport: Authorization: Bearer T on negotiate,
 * long polls and POSTs, ?access_token=T on the WebSocket and the
 * EventSource (browsers cannot set their headers), as the official client's
 * accessTokenFactory. A function is called again before each (re)connect,
 * so a refreshed token is used once the old one expires.
 *
 * The file is valid both as a classic script and as an ES module: it has no
 * import/export statements and puts its API on `globalThis.crier`.
 *   <script src="/crier.js"></script>            then  crier.connect(...)
 *   import '/crier.js'; const { crier } = globalThis;
 */
(function (root) {
  'use strict';

  const RS = '\x1e';
  const TRANSPORTS = ['websocket', 'sse', 'longpolling'];
  const SERVER_NAME = { websocket: 'WebSockets', sse: 'ServerSentEvents', longpolling: 'LongPolling' };
  const ALIASES = {
    websocket: 'websocket', websockets: 'websocket', ws: 'websocket',
    sse: 'sse', serversentevents: 'sse', eventsource: 'sse',
    longpolling: 'longpolling', lp: 'longpolling', 'long-polling': 'longpolling', long_polling: 'longpolling',
  };
  const T = { INVOCATION: 1, STREAM_ITEM: 2, COMPLETION: 3, STREAM_INVOCATION: 4, CANCEL: 5, PING: 6, CLOSE: 7 };

  const DEFAULTS = {
    transports: TRANSPORTS,
    reconnect: true,
    keepAliveMs: 15000,
    serverTimeoutMs: 30000,
    startTimeoutMs: 5000,
    requestTimeoutMs: 15000,
    pollTimeoutMs: 100000,
    headers: {},
    withCredentials: false,
    joinMethod: 'JoinRoom',
    leaveMethod: 'LeaveRoom',
    resume: true,
    history: false,
    gapTarget: 'CrierGap',
    logger: null,
    token: null,
  };
  const RECONNECT_DEFAULTS = { maxRetries: Infinity, initialDelayMs: 500, maxDelayMs: 10000 };

  /* An Error with extra fields. */
  function error(message, fields) {
    const e = new Error(message);
    if (fields) Object.assign(e, fields);
    return e;
  }

  /* {room, id, epoch} of a room message (crier's headers), else null. */
  function messageInfo(headers) {
    if (!headers || typeof headers !== 'object' || typeof headers['crier-room'] !== 'string') return null;
    return { room: headers['crier-room'], id: Number(headers['crier-id']), epoch: headers['crier-epoch'] || '' };
  }

  function shorten(text, max = 200) {
    text = String(text || '').trim();
    return text.length > max ? text.slice(0, max) + '…' : text;
  }

  function absoluteUrl(url) {
    const base = root.location && root.location.href;
    return new URL(String(url), base).toString();
  }

  function withParams(url, params) {
    const u = new URL(url);
    for (const k of Object.keys(params)) u.searchParams.set(k, params[k]);
    return u.toString();
  }

  /* url with ?access_token=token, for what cannot send headers (WebSocket,
   * EventSource); url itself without a token. */
  function withToken(url, token) {
    return token ? withParams(url, { access_token: token }) : url;
  }

  /* The token of options.token (a string, or a function returning one or a
   * Promise of one), or null for none. */
  async function resolveToken(option) {
    if (option == null) return null;
    const t = typeof option === 'function' ? await option() : option;
    if (t == null || t === '') return null;
    if (typeof t !== 'string') throw error('options.token must be (or give) a string', { fatal: true });
    return t;
  }

  function negotiateUrl(url) {
    const u = new URL(url);
    u.pathname += (u.pathname.endsWith('/') ? '' : '/') + 'negotiate';
    u.searchParams.set('negotiateVersion', '1');
    return u.toString();
  }

  /* fetch with a timeout. Resolves {status, text}; rejects on network errors,
   * with e.timeout = true when the time ran out. */
  async function request(method, url, opts) {
    const ctl = new AbortController();
    let timedOut = false;
    const timer = opts.timeoutMs > 0 ? setTimeout(() => { timedOut = true; ctl.abort(); }, opts.timeoutMs) : null;
    const outer = opts.signal;
    const onOuter = () => ctl.abort();
    if (outer) {
      if (outer.aborted) ctl.abort();
      else outer.addEventListener('abort', onOuter);
    }
    const headers = Object.assign({ 'X-Requested-With': 'XMLHttpRequest' }, opts.headers || {});
    if (opts.body != null) headers['Content-Type'] = 'text/plain;charset=UTF-8';
    try {
      const res = await fetch(url, {
        method,
        headers,
        body: opts.body,
        cache: 'no-store',
        credentials: opts.withCredentials ? 'include' : 'same-origin',
        keepalive: !!opts.keepalive,
        signal: ctl.signal,
      });
      const text = await res.text();
      return { status: res.status, text };
    } catch (e) {
      if (timedOut) throw error(`${method} timed out after ${opts.timeoutMs} ms`, { timeout: true });
      if (outer && outer.aborted) throw error(`${method} aborted`, { aborted: true });
      throw error(`${method} failed: ${e && e.message ? e.message : e}`);
    } finally {
      if (timer) clearTimeout(timer);
      if (outer) outer.removeEventListener('abort', onOuter);
    }
  }

  /* Promise + its resolvers. */
  function deferred() {
    let resolve, reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  }

  function timeout(promise, ms, message, onTimeout) {
    let timer;
    return Promise.race([
      promise,
      new Promise((_, reject) => {
        timer = setTimeout(() => { if (onTimeout) onTimeout(); reject(error(message, { timeout: true })); }, ms);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  /* ------------------------------------------------------------ transports
   * Each has connect(url) -> Promise (resolves once it can carry records),
   * send(text) -> Promise, stop(), and calls onreceive(text) for each
   * delivery unit and onclose(error|null) once when it ends by itself
   * (never after stop()). */

  /* POSTs records, one request at a time; what queues up meanwhile goes in
   * the next body. Shared by SSE and long polling. */
  class Sender {
    constructor(url, opts) {
      this.url = url;
      this.opts = opts;
      this.queue = [];
      this.busy = false;
      this.stopped = false;
    }

    send(text) {
      if (this.stopped) return Promise.reject(error('The transport is stopped.'));
      const d = deferred();
      this.queue.push({ text, d });
      this.pump();
      return d.promise;
    }

    async pump() {
      if (this.busy) return;
      this.busy = true;
      while (this.queue.length && !this.stopped) {
        const batch = this.queue.splice(0);
        try {
          const res = await request('POST', this.url, {
            body: batch.map((b) => b.text).join(''),
            timeoutMs: this.opts.requestTimeoutMs,
            headers: this.opts.headers,
            withCredentials: this.opts.withCredentials,
          });
          if (res.status < 200 || res.status > 299)
            throw error(`POST failed: HTTP ${res.status}${res.text ? ' ' + shorten(res.text) : ''}`, { status: res.status });
          batch.forEach((b) => b.d.resolve());
        } catch (e) {
          batch.forEach((b) => b.d.reject(e));
        }
      }
      this.busy = false;
    }

    stop() {
      this.stopped = true;
      this.queue.splice(0).forEach((b) => b.d.reject(error('The transport is stopped.')));
    }
  }

  class WebSocketTransport {
    constructor(opts) {
      this.name = 'websocket';
      this.opts = opts;
      this.ws = null;
      this.stopped = false;
      this.onreceive = () => {};
      this.onclose = () => {};
    }

    connect(url) {
      const wsUrl = url.replace(/^http/, 'ws');
      return new Promise((resolve, reject) => {
        let ws;
        try {
          ws = this.ws = new WebSocket(withToken(wsUrl, this.opts.accessToken));
        } catch (e) {
          reject(error(`cannot open ${wsUrl}: ${e.message}`)); /* named without its token */
          return;
        }
        let opened = false;
        const fail = (why) => {
          if (opened) return;
          opened = true; // settled
          this.teardown();
          reject(error(why));
        };
        const timer = setTimeout(() => fail(`the WebSocket did not open within ${this.opts.startTimeoutMs} ms`),
          this.opts.startTimeoutMs);
        ws.onopen = () => {
          if (opened) return;
          opened = true;
          clearTimeout(timer);
          resolve();
        };
        ws.onerror = () => {
          clearTimeout(timer);
          fail('the WebSocket failed to open (upgrade refused or connection lost)');
        };
        ws.onclose = (ev) => {
          clearTimeout(timer);
          if (!opened) return fail(`the WebSocket closed before opening (code ${ev.code})`);
          if (this.stopped) return;
          this.stopped = true;
          this.teardown();
          this.onclose(ev.code === 1000 ? null
            : error(`WebSocket closed with status code ${ev.code}${ev.reason ? ' (' + ev.reason + ')' : ''}.`));
        };
        ws.onmessage = (ev) => {
          if (this.stopped) return;
          if (typeof ev.data === 'string') this.onreceive(ev.data);
          else this.onreceive(null); /* binary: the caller closes with an error */
        };
      });
    }

    send(text) {
      if (this.stopped || !this.ws || this.ws.readyState !== 1)
        return Promise.reject(error('The WebSocket is not open.'));
      this.ws.send(text);
      return Promise.resolve();
    }

    teardown() {
      const ws = this.ws;
      if (!ws) return;
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      if (ws.readyState === 0 || ws.readyState === 1) {
        try { ws.close(1000); } catch (_) { /* already closing */ }
      }
    }

    stop() {
      this.stopped = true;
      this.teardown();
    }
  }

  class SseTransport {
    constructor(opts) {
      this.name = 'sse';
      this.opts = opts;
      this.es = null;
      this.sender = null;
      this.stopped = false;
      this.onreceive = () => {};
      this.onclose = () => {};
    }

    connect(url) {
      this.sender = new Sender(url, this.opts);
      return new Promise((resolve, reject) => {
        let es;
        try {
          es = this.es = new EventSource(withToken(url, this.opts.accessToken),
            { withCredentials: !!this.opts.withCredentials });
        } catch (e) {
          reject(error(`cannot open the event stream: ${e.message}`));
          return;
        }
        let opened = false;
        const fail = (why) => {
          if (opened) return;
          opened = true;
          this.stop();
          reject(error(why));
        };
        const timer = setTimeout(() => fail(`the event stream did not open within ${this.opts.startTimeoutMs} ms`),
          this.opts.startTimeoutMs);
        es.onopen = () => {
          if (opened) return;
          opened = true;
          clearTimeout(timer);
          resolve();
        };
        es.onerror = () => {
          clearTimeout(timer);
          if (!opened) return fail('the event stream failed to open (refused, or not text/event-stream)');
          /* EventSource would retry the same URL by itself; the connection
           * is gone on the server, so end here and let the caller reconnect. */
          if (this.stopped) return;
          this.stop();
          this.onclose(error('The event stream was closed by the server or the network.'));
        };
        es.onmessage = (ev) => {
          if (!this.stopped) this.onreceive(ev.data);
        };
      });
    }

    send(text) {
      return this.sender.send(text);
    }

    stop() {
      this.stopped = true;
      if (this.sender) this.sender.stop();
      if (this.es) {
        this.es.onopen = this.es.onmessage = this.es.onerror = null;
        this.es.close();
      }
    }
  }

  class LongPollingTransport {
    constructor(opts) {
      this.name = 'longpolling';
      this.opts = opts;
      this.url = null;
      this.sender = null;
      this.abort = new AbortController();
      this.stopped = false;
      this.onreceive = () => {};
      this.onclose = () => {};
    }

    poll(timeoutMs) {
      return request('GET', withParams(this.url, { _: String(Date.now()) }), {
        timeoutMs,
        signal: this.abort.signal,
        headers: this.opts.headers,
        withCredentials: this.opts.withCredentials,
      });
    }

    async connect(url) {
      this.url = url;
      this.sender = new Sender(url, this.opts);
      let res;
      try {
        res = await this.poll(this.opts.startTimeoutMs);
      } catch (e) {
        this.stop(false);
        throw error(`the first poll failed: ${e.message}`);
      }
      if (res.status !== 200) {
        this.stop(false);
        throw error(`the first poll failed: HTTP ${res.status}${res.text ? ' ' + shorten(res.text) : ''}`);
      }
      this.loop();
    }

    async loop() {
      while (!this.stopped) {
        let res;
        try {
          res = await this.poll(this.opts.pollTimeoutMs);
        } catch (e) {
          if (this.stopped) return;
          if (e.timeout) continue; /* abandoned a very long poll: poll again */
          return this.end(error(`Long polling failed: ${e.message}`));
        }
        if (this.stopped) return;
        if (res.status === 204) return this.end(null); /* the server ended the connection */
        if (res.status !== 200)
          return this.end(error(`Long polling failed: HTTP ${res.status}${res.text ? ' ' + shorten(res.text) : ''}`));
        if (res.text) this.onreceive(res.text);
      }
    }

    end(err) {
      if (this.stopped) return;
      this.stop(false);
      this.onclose(err);
    }

    send(text) {
      return this.sender.send(text);
    }

    stop(sendDelete = true) {
      const wasStopped = this.stopped;
      this.stopped = true;
      this.abort.abort();
      if (this.sender) this.sender.stop();
      if (sendDelete && !wasStopped && this.url) {
        request('DELETE', this.url, {
          timeoutMs: this.opts.requestTimeoutMs,
          headers: this.opts.headers,
          withCredentials: this.opts.withCredentials,
          keepalive: true,
        }).catch(() => {});
      }
    }
  }

  const TRANSPORT_CLASS = { websocket: WebSocketTransport, sse: SseTransport, longpolling: LongPollingTransport };

  function runtimeSupports(name) {
    if (typeof fetch !== 'function') return false;
    if (name === 'websocket') return typeof root.WebSocket === 'function';
    if (name === 'sse') return typeof root.EventSource === 'function';
    return typeof AbortController === 'function';
  }

  function normaliseTransports(list) {
    if (!Array.isArray(list) || !list.length) throw new TypeError('options.transports must be a non-empty array');
    const out = [];
    for (const t of list) {
      const name = ALIASES[String(t).toLowerCase()];
      if (!name) throw new TypeError(`unknown transport "${t}" (use websocket, sse or longpolling)`);
      if (!out.includes(name)) out.push(name);
    }
    return out;
  }

  function reconnectPolicy(opt) {
    if (opt === false || opt == null) return null;
    if (opt === true) return Object.assign({}, RECONNECT_DEFAULTS);
    if (typeof opt === 'object') {
      const p = Object.assign({}, RECONNECT_DEFAULTS, opt);
      if (p.maxRetries == null) p.maxRetries = Infinity;
      return p;
    }
    throw new TypeError('options.reconnect must be true, false or {maxRetries, initialDelayMs, maxDelayMs}');
  }

  /* ------------------------------------------------------------ connection */

  class HubConnection {
    constructor(url, options) {
      const o = Object.assign({}, DEFAULTS, options || {});
      if (o.token != null && typeof o.token !== 'string' && typeof o.token !== 'function')
        throw new TypeError('options.token must be a string or a function returning one');
      this.url = absoluteUrl(url);
      this._opts = o;
      this._transports = normaliseTransports(o.transports);
      this._policy = reconnectPolicy(o.reconnect);
      this._handlers = new Map(); /* lower-cased target -> [fn] */
      this._callbacks = { reconnecting: [], reconnected: [], close: [], statechange: [], gap: [] };
      this._pending = new Map(); /* invocationId -> {resolve, reject} */
      this._nextId = 0;
      this._rooms = new Set();
      this._positions = new Map(); /* room -> {id, epoch} of the last message seen */
      this._resyncing = new Set(); /* rooms being resumed after a jump in ids: their messages wait */
      this._warned = new Set(); /* targets without a handler, warned about once */
      this.messageInfo = null; /* {room, id, epoch} of the room message being handled */
      this._state = 'disconnected';
      this._transport = null;
      this._connectionId = null;
      this._live = false; /* a transport finished the handshake and is in use */
      this._attempt = null; /* the start attempt under way: {cancelled, transport} */
      this._handshake = null;
      this._loop = 0; /* reconnect loop generation */
      this._wake = null;
      this._timers = { server: null, ping: null };
      this._stopping = false;
      this._lastSend = 0;
      /* Back online, or the tab shown again: retry now rather than after the backoff. */
      this._onOnline = () => {
        if (this._wake && (!root.document || root.document.visibilityState !== 'hidden')) this._wake();
      };
    }

    get state() { return this._state; }
    get transport() { return this._transport ? this._transport.name : null; }
    get connectionId() { return this._connectionId; }
    get rooms() { return Array.from(this._rooms); }

    on(target, handler) {
      if (!target || typeof handler !== 'function') throw new TypeError('on(target, handler)');
      const key = String(target).toLowerCase();
      if (!this._handlers.has(key)) this._handlers.set(key, []);
      this._handlers.get(key).push(handler);
      return this;
    }

    off(target, handler) {
      const key = String(target).toLowerCase();
      const list = this._handlers.get(key);
      if (!list) return this;
      if (!handler) this._handlers.delete(key);
      else {
        const i = list.indexOf(handler);
        if (i >= 0) list.splice(i, 1);
        if (!list.length) this._handlers.delete(key);
      }
      return this;
    }

    onreconnecting(cb) { this._callbacks.reconnecting.push(cb); return this; }
    onreconnected(cb) { this._callbacks.reconnected.push(cb); return this; }
    onclose(cb) { this._callbacks.close.push(cb); return this; }
    onstatechange(cb) { this._callbacks.statechange.push(cb); return this; }
    /* cb({room, epoch, reason, since, resumed_from}): messages of a room were
     * missed while reconnecting (reason "expired": older than the server
     * keeps; "epoch": the room's numbering restarted, e.g. a server restart;
     * "missed": ids jumped in a room it could not resume, resumed_from the
     * id that came next, or null when unknown). */
    ongap(cb) { this._callbacks.gap.push(cb); return this; }

    async start() {
      if (this._state !== 'disconnected')
        throw error(`Cannot start a connection that is ${this._state}.`);
      this._stopping = false;
      this._rooms.clear(); /* a fresh start: the app joins its rooms again */
      this._positions.clear();
      this._setState('connecting');
      try {
        await this._connect();
        if (this._stopping) throw error('The connection was stopped during start().');
      } catch (e) {
        if (this._live) this._dropTransport();
        this._setState('disconnected');
        throw e;
      }
      this._setState('connected');
    }

    invoke(method, ...args) {
      if (this._state !== 'connected' || !this._live)
        return Promise.reject(error(`Cannot invoke '${method}': the connection is ${this._state}.`));
      return this._invoke(method, this._historyArgs(method, args));
    }

    send(method, ...args) {
      if (this._state !== 'connected' || !this._live)
        return Promise.reject(error(`Cannot send '${method}': the connection is ${this._state}.`));
      args = this._historyArgs(method, args);
      this._track(method, args, null);
      return this._sendRecord({ type: T.INVOCATION, target: String(method), arguments: args });
    }

    async stop() {
      this._stopping = true;
      this._loop++;
      if (this._wake) this._wake();
      const attempt = this._attempt;
      if (attempt) {
        attempt.cancelled = true;
        if (attempt.transport) attempt.transport.stop();
        if (this._handshake) this._handshake.reject(error('The connection was stopped.'));
      }
      const wasLive = this._live;
      if (this._state === 'disconnected') return;
      if (wasLive && this._transport) {
        /* Tell the server, without waiting for it. */
        this._transport.send(JSON.stringify({ type: T.CLOSE }) + RS).catch(() => {});
      }
      this._dropTransport();
      this._finish(null);
    }

    /* ---- internals */

    _log(level, msg) {
      const l = this._opts.logger;
      if (typeof l === 'function') l(level, msg);
      else if (l === true || level === 'error' || level === 'warn') {
        const c = root.console;
        if (c) (c[level] || c.log).call(c, `[crier] ${msg}`);
      }
    }

    _setState(s) {
      if (this._state === s) return;
      const old = this._state;
      this._state = s;
      this._fire('statechange', s, old);
    }

    _fire(kind, ...args) {
      for (const cb of this._callbacks[kind].slice()) {
        try { cb.apply(this, args); } catch (e) { this._log('error', `${kind} callback threw: ${e && e.stack || e}`); }
      }
    }

    /* The options of one connect attempt: with a token, it goes in the
     * Authorization header of every request and to what cannot send one. */
    async _attemptOptions() {
      const token = await resolveToken(this._opts.token);
      if (!token) return this._opts;
      const headers = Object.assign({}, this._opts.headers, { Authorization: `Bearer ${token}` });
      return Object.assign({}, this._opts, { headers, accessToken: token });
    }

    async _negotiate(attempt, opts) {
      let url = this.url;
      for (let hop = 0; hop < 100; hop++) {
        const res = await request('POST', negotiateUrl(url), {
          timeoutMs: opts.requestTimeoutMs,
          headers: opts.headers,
          withCredentials: opts.withCredentials,
        });
        if (attempt.cancelled) throw error('The connection was stopped.');
        if (res.status !== 200)
          throw error(`negotiate failed: HTTP ${res.status}${res.text ? ' ' + shorten(res.text) : ''}`, { status: res.status });
        let body;
        try { body = JSON.parse(res.text); } catch (_) { body = null; }
        if (!body || typeof body !== 'object') throw error('negotiate failed: the answer is not JSON');
        if (body.error) throw error(`negotiate failed: ${body.error}`, { fatal: true });
        if (body.ProtocolVersion) throw error('negotiate failed: this is a legacy ASP.NET SignalR server', { fatal: true });
        if (body.url) { url = body.url; continue; }
        const token = body.negotiateVersion >= 1 ? body.connectionToken : body.connectionId;
        if (!token) throw error('negotiate failed: no connection token in the answer');
        const offered = new Set();
        for (const t of body.availableTransports || []) {
          if (t && Array.isArray(t.transferFormats) && t.transferFormats.includes('Text')) offered.add(t.transport);
        }
        return { url, connectionId: body.connectionId || null, token, offered };
      }
      throw error('negotiate failed: too many redirects');
    }

    /* Negotiates and starts the first transport that works; on success the
     * connection is live. Rejects with every transport's reason. */
    async _connect() {
      const attempt = this._attempt = { cancelled: false, transport: null };
      try {
        const opts = await this._attemptOptions(); /* a fresh token for each (re)connect */
        if (attempt.cancelled) throw error('The connection was stopped.');
        let neg = await this._negotiate(attempt, opts);
        const tried = [];
        for (const name of this._transports) {
          if (!runtimeSupports(name)) { tried.push(`${name}: not supported by this browser`); continue; }
          if (!neg) {
            try {
              neg = await this._negotiate(attempt, opts);
            } catch (e) {
              tried.push(`negotiate again: ${e.message}`);
              break;
            }
          }
          if (!neg.offered.has(SERVER_NAME[name])) { tried.push(`${name}: not offered by the server`); continue; }
          const t = new TRANSPORT_CLASS[name](opts);
          attempt.transport = t;
          try {
            await this._startTransport(t, withParams(neg.url, { id: neg.token }), attempt);
            this._connectionId = neg.connectionId;
            this._log('debug', `connected over ${name}`);
            return;
          } catch (e) {
            t.stop();
            attempt.transport = null;
            if (attempt.cancelled) throw error('The connection was stopped.');
            if (e.fatal) throw e;
            this._log('debug', `${name} failed: ${e.message}`);
            tried.push(`${name}: ${e.message}`);
            neg = null; /* the server forgets a connection whose transport failed */
          }
        }
        throw error(`Unable to connect to ${this.url}; tried ${tried.join('; ')}`, { transports: tried });
      } finally {
        if (this._attempt === attempt) this._attempt = null;
      }
    }

    async _startTransport(t, url, attempt) {
      await t.connect(url);
      if (attempt.cancelled) throw error('The connection was stopped.');
      const hs = this._handshake = deferred();
      hs.promise.catch(() => {}); /* may be settled before it is awaited */
      t.onreceive = (data) => this._receive(t, data);
      t.onclose = (err) => {
        if (this._handshake === hs) hs.reject(err || error('The transport closed during the handshake.'));
        else this._lost(t, err);
      };
      this._transport = t;
      try {
        await t.send(JSON.stringify({ protocol: 'json', version: 1 }) + RS);
        await timeout(hs.promise, this._opts.startTimeoutMs,
          `no handshake answer within ${this._opts.startTimeoutMs} ms`);
      } catch (e) {
        this._transport = null;
        this._live = false;
        throw e;
      } finally {
        if (this._handshake === hs) this._handshake = null;
      }
      if (this._transport !== t) throw error('The transport closed right after the handshake.');
      this._live = true;
      if (t.name !== 'longpolling') {
        this._resetServerTimeout();
        this._sendPing();
      }
    }

    _receive(t, data) {
      if (t !== this._transport) return;
      if (data === null) return this._protocolError(t, 'Binary data is not part of the JSON hub protocol.');
      if (t.name !== 'longpolling' && this._live) this._resetServerTimeout();
      if (!data) return;
      if (data[data.length - 1] !== RS) return this._protocolError(t, 'Message is incomplete.');
      const records = data.split(RS);
      records.pop();
      for (const text of records) {
        if (t !== this._transport) return;
        let msg;
        try { msg = JSON.parse(text); } catch (_) {
          return this._protocolError(t, `Invalid JSON record: ${shorten(text, 80)}`);
        }
        if (this._handshake) {
          /* The first record is the handshake answer; records after it in
           * the same unit are ordinary ones. */
          const hs = this._handshake;
          let why = null;
          if (!msg || typeof msg !== 'object') why = error('Invalid handshake answer.');
          else if (msg.error) why = error(`Server returned handshake error: ${msg.error}`, { fatal: true });
          else if (msg.type) why = error('Expected a handshake response from the server.');
          if (why) return hs.reject(why);
          this._handshake = null;
          this._live = true;
          hs.resolve();
          continue;
        }
        this._dispatch(t, msg);
      }
    }

    _dispatch(t, msg) {
      if (!msg || typeof msg.type !== 'number') return this._protocolError(t, 'A record has no type.');
      switch (msg.type) {
        case T.INVOCATION: {
          const key = String(msg.target).toLowerCase();
          const list = (this._handlers.get(key) || []).slice();
          const args = Array.isArray(msg.arguments) ? msg.arguments : [];
          const isGap = this._opts.gapTarget && key === String(this._opts.gapTarget).toLowerCase();
          /* a duplicate of a message already handled, or one the resume after a jump brings again */
          if (!this._seen(msg.headers, isGap)) break;
          if (isGap) this._gap(args[0]);
          let result, err = null;
          if (!list.length && !isGap) {
            err = 'Client didn\'t provide a result.';
            if (!this._warned.has(key)) {
              this._warned.add(key);
              this._log('warn', `no handler for '${msg.target}'`);
            }
          }
          this.messageInfo = messageInfo(msg.headers);
          for (const h of list) {
            try { result = h.apply(this, args); } catch (e) {
              err = e && e.message ? e.message : String(e);
              this._log('error', `handler for '${msg.target}' threw: ${e && e.stack || e}`);
            }
          }
          this.messageInfo = null;
          if (msg.invocationId) {
            const reply = { type: T.COMPLETION, invocationId: msg.invocationId };
            if (err) reply.error = err;
            else reply.result = result === undefined ? null : result;
            this._sendRecord(reply).catch(() => {});
          }
          break;
        }
        case T.COMPLETION: {
          const p = this._pending.get(msg.invocationId);
          if (!p) break;
          this._pending.delete(msg.invocationId);
          if (msg.error) p.reject(error(String(msg.error), { fromServer: true }));
          else p.resolve(msg.result);
          break;
        }
        case T.PING:
          /* Answer from here, not only from a timer: background tabs get
           * their timers throttled, but still receive messages. */
          if (t.name !== 'longpolling' && Date.now() - this._lastSend >= this._opts.keepAliveMs / 2) this._sendPing();
          break;
        case T.CLOSE: {
          const err = msg.error ? error(`Server returned an error on close: ${msg.error}`) : null;
          if (msg.allowReconnect) this._lost(t, err);
          else {
            this._sendRecord({ type: T.CLOSE }).catch(() => {});
            this._lost(t, err, false);
          }
          break;
        }
        default:
          /* stream items, acks, unknown types: not used by crier's hubs */
          break;
      }
    }

    /* Notes where a room message stands (crier's headers). False when it was
     * seen already (same room and epoch, id not past the last one), or when
     * it comes after a hole: ids jumped within the epoch (a gap signal's own
     * id may jump: it says so). Then the room is resumed from the last id
     * seen, and this message comes again in the replay. */
    _seen(headers, isGap) {
      if (!headers || typeof headers !== 'object') return true;
      const room = headers['crier-room'];
      const id = Number(headers['crier-id']);
      const epoch = headers['crier-epoch'] || '';
      if (typeof room !== 'string' || !Number.isSafeInteger(id) || id < 0) return true;
      if (this._resyncing.has(room)) return false; /* the replay brings it */
      const last = this._positions.get(room);
      if (last && last.epoch === epoch && id <= last.id) return false;
      if (last && last.epoch === epoch && id > last.id + 1 && !isGap && room[0] !== '~') {
        if (this._resync(room, last)) return false;
        this._gap({ room, epoch, reason: 'missed', since: last.id, resumed_from: id });
      }
      this._positions.set(room, { id, epoch });
      return true;
    }

    /* Ids of room jumped past pos: leaves it and joins again after pos, so
     * that the server replays what was skipped (or signals the gap). False
     * when this room cannot be resumed so (the caller reports the gap). */
    _resync(room, pos) {
      const join = this._opts.joinMethod, leave = this._opts.leaveMethod;
      if (!this._opts.resume || !join || !leave || !pos.epoch || !this._rooms.has(room) || !this._live)
        return false;
      this._log('warn', `ids of '${room}' jumped past ${pos.id}: resuming from there`);
      const t = this._transport;
      this._resyncing.add(room);
      (async () => {
        try {
          await this._invoke(leave, [room], false); /* every message before its completion is dropped */
        } catch (e) {
          if (e.fromServer) { /* the hub has no such leave: say so, and go on from the next one */
            this._positions.delete(room);
            this._gap({ room, epoch: pos.epoch, reason: 'missed', since: pos.id, resumed_from: null });
          }
          throw e;
        } finally {
          this._resyncing.delete(room);
        }
        if (t !== this._transport || !this._rooms.has(room)) return; /* a reconnect rejoins it */
        const at = this._positions.get(room) || pos;
        try {
          await this._invoke(join, [room, at.id, at.epoch], false);
        } catch (e) {
          if (!e.fromServer) throw e;
          this._log('warn', `could not resume '${room}' (${e.message}); joining without`);
          await this._invoke(join, [room], false);
          this._gap({ room, epoch: at.epoch, reason: 'missed', since: at.id, resumed_from: null });
        }
      })().catch((e) => this._log('warn', `resuming '${room}' failed: ${e && e.message}`));
      return true;
    }

    /* JoinRoom(room) with options.history: JoinRoom(room, 0), what the
     * room's history holds. */
    _historyArgs(method, args) {
      const join = this._opts.joinMethod;
      if (this._opts.history && join && args.length === 1 && typeof args[0] === 'string' &&
          String(method).toLowerCase() === String(join).toLowerCase())
        return [args[0], 0];
      return args;
    }

    _gap(gap) {
      if (!gap || typeof gap !== 'object') return;
      if (typeof gap.room === 'string' && typeof gap.epoch === 'string' && Number.isSafeInteger(gap.resumed_from))
        this._positions.set(gap.room, { id: Math.max(0, gap.resumed_from - 1), epoch: gap.epoch });
      this._log('warn', `missed messages in '${gap.room}' (${gap.reason})`);
      this._fire('gap', gap);
    }

    _protocolError(t, why) {
      this._log('error', why);
      if (this._handshake) return this._handshake.reject(error(why));
      this._lost(t, error(why), false);
    }

    _sendRecord(msg) {
      const t = this._transport;
      if (!t || !this._live) return Promise.reject(error('The connection is not connected.'));
      if (t.name !== 'longpolling') this._armPing();
      this._lastSend = Date.now();
      return t.send(JSON.stringify(msg) + RS);
    }

    _invoke(method, args, track = true) {
      const id = String(this._nextId++);
      const d = deferred();
      this._pending.set(id, d);
      if (track) this._track(method, args, d.promise);
      this._sendRecord({ type: T.INVOCATION, target: String(method), arguments: args, invocationId: id })
        .catch((e) => {
          if (this._pending.get(id) === d) {
            this._pending.delete(id);
            d.reject(e);
          }
        });
      return d.promise;
    }

    /* Remembers rooms joined through joinMethod and left through leaveMethod,
     * to join them again after a reconnect. */
    _track(method, args, completion) {
      const m = String(method).toLowerCase();
      const room = args[0];
      if (typeof room !== 'string') return;
      const join = this._opts.joinMethod && m === String(this._opts.joinMethod).toLowerCase();
      const leave = this._opts.leaveMethod && m === String(this._opts.leaveMethod).toLowerCase();
      if (join) {
        this._rooms.add(room);
        /* The server refused the room: don't join it again later. */
        if (completion) completion.catch((e) => { if (e && e.fromServer) this._rooms.delete(room); });
      } else if (leave) {
        this._rooms.delete(room);
        this._positions.delete(room);
      }
    }

    _armPing() {
      clearTimeout(this._timers.ping);
      this._timers.ping = setTimeout(() => this._sendPing(), this._opts.keepAliveMs);
    }

    _sendPing() {
      if (!this._live) return;
      this._sendRecord({ type: T.PING }).catch(() => {});
    }

    _resetServerTimeout() {
      clearTimeout(this._timers.server);
      const t = this._transport;
      this._timers.server = setTimeout(() => {
        this._lost(t, error(`Server timeout elapsed (${this._opts.serverTimeoutMs} ms) without receiving a message from the server.`));
      }, this._opts.serverTimeoutMs);
    }

    _dropTransport() {
      clearTimeout(this._timers.server);
      clearTimeout(this._timers.ping);
      this._timers.server = this._timers.ping = null;
      const t = this._transport;
      this._transport = null;
      this._live = false;
      this._resyncing.clear(); /* a reconnect rejoins from the positions */
      if (t) t.stop();
      const pending = Array.from(this._pending.values());
      this._pending.clear();
      for (const p of pending) p.reject(error('Invocation canceled: the connection was closed.'));
    }

    /* The live transport t ended by itself (or was declared dead). */
    _lost(t, err, mayReconnect = true) {
      if (t !== this._transport || !this._live) return;
      if (this._attempt) {
        /* Still starting (the handshake just finished): the start sees the
         * transport gone and moves on. */
        this._dropTransport();
        return;
      }
      this._log(err ? 'warn' : 'debug', `connection lost${err ? ': ' + err.message : ''}`);
      this._dropTransport();
      if (this._stopping) return;
      if (mayReconnect && this._policy) this._reconnect(err);
      else this._finish(err);
    }

    _finish(err) {
      if (this._state === 'disconnected') return;
      this._loop++;
      this._transport = null;
      this._setState('disconnected');
      this._listen(false);
      this._fire('close', err || undefined);
    }

    _listen(on) {
      const f = on ? 'addEventListener' : 'removeEventListener';
      if (root[f]) root[f]('online', this._onOnline);
      if (root.document && root.document[f]) root.document[f]('visibilitychange', this._onOnline);
    }

    _delay(n) {
      const p = this._policy;
      const full = Math.min(p.maxDelayMs, p.initialDelayMs * Math.pow(2, n));
      return Math.round(full / 2 + Math.random() * full / 2);
    }

    /* Waits ms, or less when the browser comes back online or stop() runs. */
    _sleep(ms) {
      return new Promise((resolve) => {
        const timer = setTimeout(done, ms);
        const self = this;
        function done() { clearTimeout(timer); if (self._wake === done) self._wake = null; resolve(); }
        this._wake = done;
      });
    }

    async _reconnect(err) {
      const gen = ++this._loop;
      this._setState('reconnecting');
      this._listen(true);
      this._fire('reconnecting', err || undefined);
      let last = err;
      for (let n = 0; ; n++) {
        if (n >= this._policy.maxRetries) {
          this._finish(error(`Reconnecting failed after ${n} attempt(s)${last ? ': ' + last.message : '.'}`));
          return;
        }
        await this._sleep(this._delay(n));
        if (gen !== this._loop) return;
        try {
          await this._connect();
        } catch (e) {
          if (gen !== this._loop) return;
          last = e;
          this._log('debug', `reconnect attempt ${n + 1} failed: ${e.message}`);
          continue;
        }
        if (gen !== this._loop) return;
        const t = this._transport;
        await this._rejoin();
        if (gen !== this._loop || t !== this._transport) return; /* lost again meanwhile */
        this._listen(false);
        this._setState('connected');
        this._fire('reconnected', this._connectionId);
        return;
      }
    }

    async _rejoin() {
      const method = this._opts.joinMethod;
      if (!method) return;
      for (const room of Array.from(this._rooms)) {
        const pos = this._opts.resume ? this._positions.get(room) : null;
        try {
          if (pos && pos.epoch) {
            try {
              await this._invoke(method, [room, pos.id, pos.epoch]); /* resume after pos */
              continue;
            } catch (e) {
              if (!e.fromServer) throw e;
              this._log('warn', `could not resume '${room}' (${e.message}); joining without`);
            }
          }
          /* nothing of it seen yet: with options.history, what history holds is all new */
          await this._invoke(method, this._opts.history && !pos ? [room, 0] : [room]);
        } catch (e) {
          this._log('warn', `could not join '${room}' again: ${e.message}`);
          if (!this._live) return;
        }
      }
    }
  }

  function connect(url, options) {
    return new HubConnection(url, options);
  }

  const api = { connect, HubConnection, transports: TRANSPORTS.slice(), version: '1.0.0' };
  root.crier = api;
})(globalThis);
