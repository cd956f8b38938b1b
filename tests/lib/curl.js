// curl-driven clients: a sequential bulk publisher (one curl process, one
// kept-alive connection) and a long-poll loop (one curl per poll).

import { execFile } from 'node:child_process';
import { removeTempFile, writeTempFile } from './server.js';

function run(args, { signal, timeout = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    execFile('curl', args, { signal, timeout, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stdout, stderr }));
      else resolve({ stdout, stderr });
    });
  });
}

// A double-quoted string for a curl config file.
const quote = (s) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t')}"`;

// POSTs each body (text) in order, as application/json, from one curl process.
// Returns [{status, body}] in order.
export async function curlPublishMany(url, bodies, { contentType = 'application/json', timeout = 120_000 } = {}) {
  const sections = bodies.map((body) =>
    [
      `url = ${quote(url)}`,
      `header = ${quote(`Content-Type: ${contentType}`)}`,
      `data-binary = ${quote(body)}`,
      `write-out = "\\n@@status=%{http_code}@@\\n"`,
    ].join('\n'),
  );
  const file = writeTempFile('publish.curlrc', sections.join('\nnext\n') + '\n');
  try {
    const { stdout } = await run(['-sS', '-K', file], { timeout });
    const results = [];
    const re = /([\s\S]*?)\n@@status=(\d+)@@\n/g;
    for (let m; (m = re.exec(stdout)); ) results.push({ body: m[1].trim(), status: Number(m[2]) });
    return results;
  } finally {
    removeTempFile(file);
  }
}

// Long-polls `${base}/rooms/${room}/poll?since=N&epoch=E` with curl in a
// loop, each poll from the last id and the epoch received (no epoch on the
// first poll), until `count` messages are in or stop().
// {messages, gaps (the "gap" objects of answers), done: Promise<messages>, stop()}.
export function curlPollLoop(base, room, { since = 0, count = Infinity } = {}) {
  const ac = new AbortController();
  const state = { messages: [], gaps: [], polls: 0, stop: () => ac.abort() };
  state.done = (async () => {
    let last = since;
    let epoch = null; // the room's epoch, from the first answer on
    while (state.messages.length < count && !ac.signal.aborted) {
      let stdout;
      const query = `since=${last}${epoch ? `&epoch=${epoch}` : ''}`;
      try {
        ({ stdout } = await run(['-sS', '--fail-with-body', '--max-time', '60', `${base}/rooms/${room}/poll?${query}`], {
          signal: ac.signal,
        }));
      } catch (err) {
        if (ac.signal.aborted) break;
        throw new Error(`curl poll since=${last} failed: ${err.message} ${err.stdout ?? ''}`);
      }
      state.polls++;
      const body = JSON.parse(stdout);
      if (!Array.isArray(body.messages)) throw new Error(`poll since=${last}: no messages array: ${stdout}`);
      if (body.gap) state.gaps.push(body.gap);
      state.messages.push(...body.messages);
      if (body.messages.length) last = body.messages.at(-1).id;
      else if (typeof body.last_id === 'number') last = body.last_id;
      if (typeof body.epoch === 'string') epoch = body.epoch;
    }
    return state.messages;
  })();
  state.done.catch(() => {}); // observed by whoever awaits it
  return state;
}
