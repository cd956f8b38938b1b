// Server-sent events: a parser, and two readers over it (node's http module,
// and `curl -N`).
//
// Parsing: lines end with CRLF, LF or CR; events are separated by blank lines; comment lines (":" ...) are
// collected apart; "retry:" lines are ignored; "id:" and "data:" are kept,
// several data lines joined with "\n".

import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import { withTimeout } from './util.js';

export class SseStream extends EventEmitter {
  constructor() {
    super();
    this.events = []; // {id, data, dataLines, type}
    this.comments = []; // text after the ':'
    this.status = null;
    this.headers = null;
    this.ended = false;
    this.buffer = '';
    this.current = null;
    this.endedPromise = new Promise((resolve) => this.once('end', resolve));
  }

  // Lines end with CRLF, LF or a lone CR, as in the SSE specification (and so
  // in browsers' EventSource).
  feed(chunk) {
    this.buffer += chunk;
    for (;;) {
      const m = /\r\n|\n|\r/.exec(this.buffer);
      if (!m) break;
      // A CR at the very end may be the first half of a CRLF: wait for more.
      if (m[0] === '\r' && m.index === this.buffer.length - 1) break;
      this.line(this.buffer.slice(0, m.index));
      this.buffer = this.buffer.slice(m.index + m[0].length);
    }
    this.emit('update');
  }

  line(line) {
    if (line === '') {
      if (this.current) this.events.push(this.current);
      this.current = null;
      return;
    }
    if (line.startsWith(':')) {
      this.comments.push(line.slice(1));
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'retry') return;
    this.current ??= { id: null, data: null, dataLines: [], type: null };
    if (field === 'id') this.current.id = value;
    else if (field === 'event') this.current.type = value;
    else if (field === 'data') {
      this.current.dataLines.push(value);
      this.current.data = this.current.dataLines.join('\n');
    }
  }

  end() {
    if (this.ended) return;
    if (this.buffer.endsWith('\r')) {
      this.line(this.buffer.slice(0, -1));
      this.buffer = '';
    }
    this.ended = true;
    this.emit('update');
    this.emit('end');
  }

  // Resolves once predicate(this) holds; fails after `timeout` ms.
  until(predicate, timeout, message) {
    return withTimeout(
      new Promise((resolve) => {
        const check = () => {
          if (predicate(this)) {
            this.off('update', check);
            resolve(this);
          }
        };
        this.on('update', check);
        check();
      }),
      timeout,
      `${message} [have ${this.events.length} events, ${this.comments.length} comments, ended=${this.ended}]`,
    );
  }

  waitForEvents(n, timeout = 5000) {
    return this.until((s) => s.events.length >= n, timeout, `SSE: waiting for ${n} events`);
  }

  waitForComment(timeout = 5000) {
    return this.until((s) => s.comments.length > 0, timeout, 'SSE: waiting for a comment line');
  }

  waitForEnd(timeout = 5000) {
    return this.until((s) => s.ended, timeout, 'SSE: waiting for the stream to end');
  }
}

// Opens an SSE stream with node's http module. Resolves once the response
// headers are in (status and headers set); stream.close() aborts it.
export function sseHttp(url, { headers = {}, timeout = 5000 } = {}) {
  const stream = new SseStream();
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = http.get(url, { headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
        stream.status = res.statusCode;
        stream.headers = res.headers;
        res.setEncoding('utf8');
        res.on('data', (d) => stream.feed(d));
        res.on('end', () => stream.end());
        res.on('close', () => stream.end());
        res.on('error', () => stream.end());
        resolve(stream);
      });
      req.on('error', (err) => {
        stream.end();
        reject(err);
      });
      stream.close = () => req.destroy();
    }),
    timeout,
    `SSE: no response headers from ${url}`,
  );
}

// Opens an SSE stream with `curl -sS -N`. Returns at once (curl has no
// "headers received" signal here); stream.close() kills curl.
export function sseCurl(url, { headers = {} } = {}) {
  const stream = new SseStream();
  const args = ['-sS', '-N', '-H', 'Accept: text/event-stream'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  const proc = spawn('curl', [...args, url], { stdio: ['ignore', 'pipe', 'pipe'] });
  stream.proc = proc;
  stream.curlStderr = '';
  proc.stdout.setEncoding('utf8').on('data', (d) => stream.feed(d));
  proc.stderr.setEncoding('utf8').on('data', (d) => (stream.curlStderr += d));
  proc.on('close', () => stream.end());
  stream.close = () => {
    if (!stream.ended) proc.kill('SIGTERM');
  };
  return stream;
}

// The id of a plain room stream's event, "EPOCH:N" (EPOCH: 8 of [A-Za-z0-9]):
// {epoch, n}, or null when the id is not of that form.
export function parseEventId(id) {
  const m = /^([A-Za-z0-9]{8}):(\d+)$/.exec(id ?? '');
  return m ? { epoch: m[1], n: Number(m[2]) } : null;
}

// The message id N of an event whose id is "EPOCH:N"; NaN for any other id
// (so that a comparison with the expected ids fails and shows it).
export function eventSeq(event) {
  return parseEventId(event.id)?.n ?? NaN;
}

// The epochs that a list of events' ids carry, without repeats.
export function eventEpochs(events) {
  return [...new Set(events.map((e) => parseEventId(e.id)?.epoch ?? `not EPOCH:N: ${JSON.stringify(e.id)}`))];
}
