// Types for web/login-service.js (issue 12): `import { LoginService } from "./login-service.js"`.

/** What `LoginService.logout()` can be told; every field is optional and falls back to the configured value. */
export interface LogoutOptions {
  /** The logout URL, `POST`ed with the cookies. Default `"/api/auth/logout"`. */
  endpoint?: string;
  /** Milliseconds before the request is aborted and the local session cleared anyway. Default `5000`. */
  timeoutMs?: number;
  /** The localStorage keys removed. Default the origin app's: `["crocante_token", "crocante_session_mode"]`. */
  storageKeys?: readonly string[];
  /** The key the mode `"none"` is written to, JSON-encoded. Default `"crocante_session_mode"`. */
  modeKey?: string;
  /** The event dispatched on `window` once the local session is cleared. Default `"session-mode-changed"`. */
  eventName?: string;
}

/** How the server side went; the local session is cleared in every case. */
export interface LogoutResult {
  /** `ok`: a 2xx; `http-error`: another status (e.g. 502 with the responder down); `network-error`: no answer; `timeout`: aborted after `timeoutMs`. */
  outcome: "ok" | "http-error" | "network-error" | "timeout";
  /** The HTTP status, or null when there was no answer. */
  status: number | null;
}

/** The `detail` of the `session-mode-changed` event this module dispatches. */
export interface SessionModeChangedDetail {
  mode: "none";
}

/** The options in force before any `configure` call. */
export declare const defaultLogoutOptions: Readonly<Required<LogoutOptions>>;

/** The client half of logout. */
export declare class LoginService {
  /** Sets options for every later `logout()` call; returns the options now in force. */
  static configure(options?: LogoutOptions): Required<LogoutOptions>;
  /** The options `logout()` uses when given none. */
  static readonly options: Required<LogoutOptions>;
  /**
   * `POST`s the logout endpoint with credentials and JSON headers, ignores network errors and
   * non-2xx answers, then removes the storage keys, writes the mode `"none"` and dispatches the
   * event once. Never rejects. A call made while another is in flight returns that call's
   * promise (its options win): one request, one event.
   */
  static logout(options?: LogoutOptions): Promise<LogoutResult>;
}

declare global {
  interface WindowEventMap {
    "session-mode-changed": CustomEvent<SessionModeChangedDetail>;
  }
}
