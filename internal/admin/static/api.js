// The one way the UI talks to Herald: its own /v1 API, with the key the
// operator pasted as a Bearer token. The key lives in sessionStorage only
// (gone when the tab closes) and never in a URL.

const storageKey = 'herald.api_key';

export function apiKey() {
  return sessionStorage.getItem(storageKey) || '';
}

export function setAPIKey(key) {
  sessionStorage.setItem(storageKey, key);
}

export function forgetAPIKey() {
  sessionStorage.removeItem(storageKey);
}

// APIError carries the RFC 9457 problem Herald answered with.
export class APIError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

// request calls Herald and resolves to the decoded JSON body (null when
// there is none); a non-2xx answer rejects with an APIError.
export async function request(method, path, body, key = apiKey()) {
  const headers = { Accept: 'application/json, application/problem+json' };
  if (key) headers.Authorization = `Bearer ${key}`;
  const init = { method, headers, credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    throw new APIError(0, { title: 'Herald did not answer', detail: `Herald did not answer: ${err.message}` });
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const problem = data && typeof data === 'object' ? data : { title: res.statusText, detail: text.slice(0, 300) };
    const err = new APIError(res.status, problem);
    if (res.status === 401 && key && key === apiKey()) {
      // The signed-in key stopped working (revoked): the app signs out.
      window.dispatchEvent(new CustomEvent('herald:unauthorized', { detail: err }));
    }
    throw err;
  }
  return data;
}

// query builds a query string from the non-empty values of params.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}
