// The admin API client: every call the console makes goes through here, with the key the
// operator pasted (sessionStorage only: gone when the tab closes, never sent elsewhere).
const ADMIN_KEY = "aibroker.console.admin_key";
const TENANT_KEY = "aibroker.console.tenant_key";

export const keys = {
  admin: () => sessionStorage.getItem(ADMIN_KEY),
  tenant: () => sessionStorage.getItem(TENANT_KEY),
  setAdmin: (key) => sessionStorage.setItem(ADMIN_KEY, key),
  setTenant: (key) => sessionStorage.setItem(TENANT_KEY, key),
  clear: () => sessionStorage.clear(),
};

/** An answer other than 2xx, carrying the API's OpenAI-style error message. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function send(path, { method = "GET", body, key } = {}) {
  const headers = { Authorization: `Bearer ${key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return response;
}

async function json(response) {
  const text = await response.text();
  const doc = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, doc);
  return doc;
}

/** An admin API call (`/admin/v1` + path) with the signed-in key. */
export async function admin(path, options = {}) {
  return json(await send(`/admin/v1${path}`, { ...options, key: keys.admin() }));
}

/** An operations route outside `/admin/v1` (`/health/detailed`), with the signed-in key. */
export async function operations(path) {
  return json(await send(path, { key: keys.admin() }));
}

/** An OpenAI-compatible route (`/v1` + path): those want a tenant's key, which is the
 * signed-in key when it has a tenant, or the tenant key the operator pasted for them. */
export async function tenantApi(path, options = {}) {
  return json(await send(`/v1${path}`, { ...options, key: tenantKey() }));
}

export function tenantKey() {
  return keys.tenant() || keys.admin();
}

/** Save a file the API serves (a batch's output or errors) under `filename`. */
export async function download(path, filename) {
  const response = await send(`/v1${path}`, { key: tenantKey() });
  if (!response.ok) await json(response);
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Unix seconds → a local date and time, to the second. */
export function when(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  return new Date(seconds * 1000).toLocaleString(undefined, { hour12: false });
}

/** A decimal string of USD, shown to the cent (fractions of a cent as such). */
export function usd(value) {
  if (value === null || value === undefined) return "—";
  const n = Number(value);
  return n !== 0 && Math.abs(n) < 0.01 ? `$${n.toPrecision(2)}` : `$${n.toFixed(2)}`;
}
