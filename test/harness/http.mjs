// Minimal HTTP client for the server's API: one fresh connection per request
// (agent: false), so a restarted server never meets a stale pooled socket.
import http from 'node:http';

export function request(method, url, { body, headers = {}, timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request(url, {
      method,
      agent: false,
      headers: {
        ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}),
        ...headers,
      },
      timeout: timeoutMs,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timeout after ${timeoutMs}ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

let defaultApiKey;

/** The bearer key emit() sends when its caller gives none (the CLI's --api-key). */
export function setApiKey(key) {
  defaultApiKey = key || undefined;
}

/** POST /api/v1/emit; throws unless the server answers 200. */
export async function emit(baseUrl, { rooms = [], except, event, data, namespace = '/', apiKey = defaultApiKey } = {}) {
  const body = { namespace, rooms, event };
  if (except) body.except = except;
  if (data !== undefined) body.data = data;
  const res = await request('POST', new URL('/api/v1/emit', baseUrl).href, {
    body,
    headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {},
  });
  if (res.status !== 200) throw new Error(`emit ${event} to ${rooms.join(',') || '*'}: HTTP ${res.status} ${res.body.slice(0, 200)}`);
}
