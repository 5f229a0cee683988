// OIDC sign-in, authorization code with PKCE (RFC 7636), against the JWT issuers the broker
// trusts (`GET /admin/v1/sign-in`). No secret is involved: the console is a public client. The
// ID token it gets back is the bearer the admin API checks, like any JWT of that issuer; it
// lives in this tab's sessionStorage, as a pasted key does.
const PENDING = "aibroker.console.oidc";

/** The issuers one may sign in with (none: the broker trusts no JWT issuer). */
export async function signInIssuers() {
  const response = await fetch("/admin/v1/sign-in");
  return response.ok ? (await response.json()).issuers : [];
}

function b64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function random(size) {
  return b64url(crypto.getRandomValues(new Uint8Array(size)));
}

async function discover(issuer) {
  const response = await fetch(issuer.discovery_url);
  if (!response.ok) throw new Error(`The issuer's discovery document answered HTTP ${response.status}.`);
  return response.json();
}

/** Go to the issuer's sign-in page; it sends the browser back here with a code. */
export async function startSignIn(issuer) {
  const config = await discover(issuer);
  const verifier = random(48);
  const state = random(16);
  const nonce = random(16);
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const redirect = location.origin + location.pathname;
  sessionStorage.setItem(PENDING, JSON.stringify({
    verifier, state, nonce, redirect, client_id: issuer.client_id, token_endpoint: config.token_endpoint,
  }));
  const query = new URLSearchParams({
    response_type: "code", client_id: issuer.client_id, redirect_uri: redirect, scope: "openid profile",
    state, nonce, code_challenge: challenge, code_challenge_method: "S256",
  });
  location.assign(`${config.authorization_endpoint}?${query}`);
}

function claimsOf(token) {
  const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(part));
}

/** Back from the issuer: the code exchanged (with the verifier) for an ID token; null when
 * this page load is not a return from an issuer. */
export async function finishSignIn() {
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return null;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, "", location.pathname + location.hash);  // the code is used once
  if (params.has("error")) throw new Error(`The issuer refused the sign-in: ${params.get("error_description") || params.get("error")}`);
  if (!pending || params.get("state") !== pending.state) throw new Error("This sign-in was not started in this tab (its state does not match): start again.");
  const response = await fetch(pending.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code", code: params.get("code"), redirect_uri: pending.redirect,
      client_id: pending.client_id, code_verifier: pending.verifier,
    }),
  });
  const tokens = await response.json().catch(() => ({}));
  if (!response.ok || !tokens.id_token) throw new Error(`The issuer's token endpoint refused the code: ${tokens.error_description || tokens.error || `HTTP ${response.status}`}`);
  if (claimsOf(tokens.id_token).nonce !== pending.nonce) throw new Error("The ID token is not for this sign-in (its nonce does not match).");
  return tokens.id_token;
}
