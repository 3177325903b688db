// The client half of logout (issue 12): a framework-free ES module, no build step, no dependencies.
//
//   import { LoginService } from "/web/login-service.js";
//   await LoginService.logout();            // always resolves, never rejects
//   window.addEventListener("session-mode-changed", (event) => { /* event.detail.mode === "none" */ });
//
// Behaves as the origin app's login service (axios, withCredentials): POST the logout endpoint
// with the cookie and JSON headers, ignore every network error and non-2xx answer, then clear the
// local session, set the mode to "none" and dispatch "session-mode-changed" once. The local state
// is cleared whatever the server did: a user who pressed "log out" is logged out on this device.

/** The options every call starts from; change them app-wide with `LoginService.configure`. */
export const defaultLogoutOptions = Object.freeze({
  // The responder's path (CROCANTE_LOGOUT_PATH), relative to the page's origin.
  endpoint: "/api/auth/logout",
  // A hung network must not keep the user logged in locally: the request is aborted after this.
  timeoutMs: 5000,
  // The origin app's keys (config/localStorage.ts); only these are removed, not the whole storage.
  storageKeys: Object.freeze(["crocante_token", "crocante_session_mode"]),
  // Where the mode is written, JSON-encoded as the origin does ("none" with its quotes).
  modeKey: "crocante_session_mode",
  eventName: "session-mode-changed",
});

let configured = { ...defaultLogoutOptions };

/** Calls the logout endpoint and clears the local session; see login-service.d.ts. */
export class LoginService {
  /** Sets options for every later `logout()` call (each call may still override them). */
  static configure(options = {}) {
    configured = { ...configured, ...options };
    return { ...configured };
  }

  /** The options `logout()` uses when it is given none. */
  static get options() {
    return { ...configured };
  }

  /**
   * Resolves once the local state is cleared and the event dispatched, with what the server
   * did: `{ outcome: "ok" | "http-error" | "network-error" | "timeout", status }`.
   */
  static logout(options = {}) {
    // A second call while one runs (a double click) joins it: one request, one event.
    if (!pending) {
      pending = logoutOnce({ ...configured, ...options }).finally(() => {
        pending = null;
      });
    }
    return pending;
  }
}

let pending = null;

async function logoutOnce(settings) {
  const result = await callEndpoint(settings);
  clearLocalSession(settings);
  dispatchModeChanged(settings);
  return result;
}

async function callEndpoint({ endpoint, timeoutMs }) {
  const controller = typeof AbortController === "function" ? new AbortController() : null;
  let timer;
  // One timer aborts the request and ends the wait; without AbortController the request is left
  // to finish on its own, but the user does not wait for it.
  const expired = new Promise((resolve) => {
    timer = setTimeout(() => {
      if (controller) controller.abort();
      resolve(TIMED_OUT);
    }, timeoutMs);
  });
  try {
    const request = fetch(endpoint, {
      method: "POST",
      credentials: "include",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      cache: "no-store",
      signal: controller ? controller.signal : undefined,
    }).catch((error) => (controller && controller.signal.aborted ? TIMED_OUT : Promise.reject(error)));
    const response = await Promise.race([request, expired]);
    if (response === TIMED_OUT) return { outcome: "timeout", status: null };
    return { outcome: response.ok ? "ok" : "http-error", status: response.status };
  } catch {
    return { outcome: "network-error", status: null };
  } finally {
    clearTimeout(timer);
  }
}

const TIMED_OUT = Symbol("timed out");

function clearLocalSession({ storageKeys, modeKey }) {
  // Storage can be unavailable (privacy modes, sandboxed frames): logout must not fail for it.
  try {
    const storage = globalThis.localStorage;
    if (!storage) return;
    for (const key of storageKeys) storage.removeItem(key);
    storage.setItem(modeKey, JSON.stringify("none"));
  } catch {
    // Nothing to clear where nothing can be stored.
  }
}

function dispatchModeChanged({ eventName }) {
  if (typeof globalThis.dispatchEvent !== "function" || typeof CustomEvent !== "function") return;
  globalThis.dispatchEvent(new CustomEvent(eventName, { detail: { mode: "none" } }));
}
