// Small timing helpers shared by the integration tests.

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Resolves with the promise's value, or rejects with `message` after `ms`.
export function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} (timed out after ${ms} ms)`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Calls `check` every `interval` ms until it returns a truthy value (which is
// returned); fails with `message` and the last value seen after `timeout` ms.
export async function waitFor(check, { timeout = 5000, interval = 50, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const seen = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`${message} (not true after ${timeout} ms; last: ${seen})`);
    }
    await sleep(interval);
  }
}

// A JSON payload of roughly `bytes` bytes, distinct per `n`.
export function payloadOfSize(n, bytes) {
  const head = { n, pad: '' };
  const fixed = JSON.stringify(head).length;
  head.pad = 'x'.repeat(Math.max(0, bytes - fixed));
  return head;
}
