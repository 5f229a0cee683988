// Pieces every page uses: the error banner, the "loading" state, a hook that loads data.
import { html, useEffect, useState, useCallback } from "../vendor/preact-htm.mjs";

/** The API's own message for a failed call (a 403 says what the key may not do), or the
 * message of anything else that failed (an OIDC sign-in). */
export function Problem({ error }) {
  if (!error) return null;
  const title = error.status === 403 ? "Not allowed for this key" : error.status ? "The API refused" : "Failed:";
  return html`<div class="problem" role="alert"><strong>${title}</strong> ${
    error.status ? html`<span class="code">(${error.status})</span>` : ""
  } ${error.message}</div>`;
}

/** Load with `fetcher` now and whenever `deps` change; `reload()` loads again. */
export function useLoad(fetcher, deps = []) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    fetcher().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error) => live && setState({ data: null, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** Run an action (a button's), showing its error or its outcome message. */
export function useAction() {
  const [state, setState] = useState({ busy: false, error: null, done: null });
  const run = async (action, message) => {
    setState({ busy: true, error: null, done: null });
    try {
      const result = await action();
      setState({ busy: false, error: null, done: message ? message(result) : null });
      return result;
    } catch (error) {
      setState({ busy: false, error, done: null });
      return undefined;
    }
  };
  return { ...state, run };
}

export function Done({ text }) {
  return text ? html`<div class="done" role="status">${text}</div>` : null;
}

export function Loading({ when }) {
  return when ? html`<p class="muted" aria-live="polite">Loading…</p>` : null;
}

/** Whether the signed-in caller holds `permission` (on its own tenant, for a tenant admin). */
export function can(caller, permission) {
  return Boolean(caller && caller.permissions.includes(permission));
}

/** `useLoad` again every `everyMs` while `live`: for pages that follow the broker live. */
export function usePoll(fetcher, everyMs, live, deps = []) {
  const loaded = useLoad(fetcher, deps);
  useEffect(() => {
    if (!live) return undefined;
    const timer = setInterval(loaded.reload, everyMs);
    return () => clearInterval(timer);
  }, [live, everyMs, loaded.reload]);
  return loaded;
}

/** A part of a whole as a percentage, or "—" when the whole is nothing. */
export function share(part, whole) {
  return whole ? `${((100 * part) / whole).toFixed(1)}%` : "—";
}
