// The console's shell: sign-in, the caller's identity, navigation and the hash router.
import { html, render, useEffect, useState } from "../vendor/preact-htm.mjs";
import { ApiError, admin, keys } from "./api.js";
import { Problem } from "./ui.js";
import { finishSignIn, signInIssuers, startSignIn } from "./oidc.js";
import { TenantsPage, TenantPage } from "./pages/tenants.js";
import { KeysPage } from "./pages/keys.js";
import { RequestsPage } from "./pages/requests.js";
import { BatchesPage } from "./pages/batches.js";
import { DeadLettersPage } from "./pages/dlq.js";
import { AuditPage } from "./pages/audit.js";
import { PoolsPage } from "./pages/pools.js";
import { InsightsPage } from "./pages/insights.js";

const PAGES = [
  ["tenants", "Tenants"],
  ["keys", "Keys"],
  ["requests", "Requests"],
  ["batches", "Batches"],
  ["dlq", "Dead letters"],
  ["pools", "Providers"],
  ["insights", "Cache, guards, Responses"],
  ["audit", "Audit"],
];

function route() {
  const [page = "tenants", ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  return { page, args: rest.map(decodeURIComponent) };
}

function OidcSignIn({ onProblem }) {
  const [issuers, setIssuers] = useState([]);
  useEffect(() => {
    signInIssuers().then(setIssuers, () => setIssuers([]));
  }, []);
  if (!issuers.length) return null;
  const go = (issuer) => startSignIn(issuer).catch(onProblem);
  return html`<section class="oidc-options" aria-labelledby="oidc-title">
    <h2 id="oidc-title">Or sign in with your identity provider</h2>
    ${issuers.map((i) => html`<button type="button" class="secondary oidc" data-issuer=${i.issuer}
      onClick=${() => go(i)}>Sign in with ${new URL(i.issuer).host}</button>`)}
  </section>`;
}

function SignIn({ onSignedIn, error }) {
  const [key, setKey] = useState("");
  const [problem, setProblem] = useState(error);
  const submit = async (event) => {
    event.preventDefault();
    keys.setAdmin(key.trim());
    try {
      onSignedIn(await admin("/caller"));
    } catch (err) {
      keys.clear();
      setProblem(err);
    }
  };
  return html`<main class="signin">
    <h1>aibroker console</h1>
    <form onSubmit=${submit}>
      <label for="admin-key">Admin API key</label>
      <input id="admin-key" name="admin-key" type="password" autocomplete="off" required
        value=${key} onInput=${(e) => setKey(e.target.value)} placeholder="aib_…" />
      <p class="muted">An admin, viewer or tenant-admin key. It stays in this tab's
        sessionStorage and goes only to this broker's admin API.</p>
      <button type="submit">Sign in</button>
    </form>
    <${OidcSignIn} onProblem=${setProblem} />
    <${Problem} error=${problem} />
  </main>`;
}

function Page({ caller, where }) {
  const props = { caller, args: where.args };
  switch (where.page) {
    case "tenants":
      return where.args.length ? html`<${TenantPage} ...${props} />` : html`<${TenantsPage} ...${props} />`;
    case "keys":
      return html`<${KeysPage} ...${props} />`;
    case "requests":
      return html`<${RequestsPage} ...${props} />`;
    case "batches":
      return html`<${BatchesPage} ...${props} />`;
    case "dlq":
      return html`<${DeadLettersPage} ...${props} />`;
    case "audit":
      return html`<${AuditPage} ...${props} />`;
    case "pools":
      return html`<${PoolsPage} ...${props} />`;
    case "insights":
      return html`<${InsightsPage} ...${props} />`;
    default:
      return html`<p>No page “${where.page}”.</p>`;
  }
}

function Shell({ caller, onSignOut }) {
  const [where, setWhere] = useState(route());
  useEffect(() => {
    const follow = () => setWhere(route());
    addEventListener("hashchange", follow);
    return () => removeEventListener("hashchange", follow);
  }, []);
  return html`<div class="shell">
    <header>
      <a class="brand" href="#/tenants">aibroker</a>
      <nav aria-label="Console pages">
        ${PAGES.map(([id, label]) => html`<a href="#/${id}"
          aria-current=${where.page === id ? "page" : undefined}>${label}</a>`)}
      </nav>
      <div class="who" data-testid="who">
        <span>${caller.subject}</span>
        <span class="muted">${caller.roles.join(", ")}${caller.tenant ? ` · ${caller.tenant}` : ""}</span>
        <button class="link" onClick=${onSignOut}>Sign out</button>
      </div>
    </header>
    <main id="main"><${Page} caller=${caller} where=${where} /></main>
  </div>`;
}

function App() {
  const [caller, setCaller] = useState(null);
  const [checking, setChecking] = useState(true);
  const [error, setError] = useState(null);
  useEffect(() => {
    (async () => {
      try {
        const token = await finishSignIn();  // back from an OIDC issuer, or null
        if (token) keys.setAdmin(token);
      } catch (err) {
        setError(err);
      }
      if (keys.admin()) {
        try {
          setCaller(await admin("/caller"));
        } catch (err) {
          if (err instanceof ApiError && err.status === 401) keys.clear();
          setError(err);
        }
      }
      setChecking(false);
    })();
  }, []);
  if (checking) return html`<p class="muted">Checking the key…</p>`;
  if (!caller) return html`<${SignIn} onSignedIn=${setCaller} error=${error} />`;
  const signOut = () => {
    keys.clear();
    setCaller(null);
    setError(null);
  };
  return html`<${Shell} caller=${caller} onSignOut=${signOut} />`;
}

render(html`<${App} />`, document.getElementById("app"));
