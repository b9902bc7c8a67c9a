// Thin client for zapd's JSON API. Every error the server sends is {"error":{code,message,details?}};
// ApiError carries those fields so pages can show the server's own message (and field details).

export interface ErrorDetail {
  path: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public details: ErrorDetail[] = [],
  ) {
    super(message);
  }
}

const TOKEN_KEY = 'token';
type Listener = (token: string | null) => void;
const listeners = new Set<Listener>();

export function getToken(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string | null): void {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage unavailable: the session lasts as long as the page */
  }
  listeners.forEach((l) => l(token));
}

export function onTokenChange(l: Listener): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

// Signin answers 401 for a wrong password; that must not be treated as "session over".
const NO_SESSION_PATHS = ['/api/v1/user/signin', '/api/v1/user/signup'];

export async function api<T = any>(method: string, path: string, body?: unknown, opts: { signal?: AbortSignal } = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const session = !NO_SESSION_PATHS.includes(path);
  const token = session ? getToken() : null;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: opts.signal });
  } catch (e) {
    if (opts.signal?.aborted) throw new ApiError(0, 'aborted', 'Request cancelled');
    throw new ApiError(0, 'network', `Network error: ${(e as Error).message || 'the server could not be reached'}`);
  }
  const text = await res.text();
  let data: any = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const err = data && typeof data === 'object' ? data.error : null;
    let message: string = err?.message || `${res.status} ${res.statusText || 'request failed'}`;
    if (res.status === 429) {
      const after = res.headers.get('Retry-After');
      if (after) message += ` (try again in ${after} s)`;
    }
    // The session is over only if the token this request carried is still the current one: a late
    // 401 for a token replaced since (signed in again, password changed) must not sign the user out.
    if (res.status === 401 && session && token !== null && getToken() === token) setToken(null);
    throw new ApiError(res.status, err?.code || 'http_error', message, Array.isArray(err?.details) ? err.details : []);
  }
  return data as T;
}

// A `next` path to return to after sign-in: only a same-origin path (one leading slash; no
// "//host" or "/\\host", which browsers treat as another origin).
export function safeNext(next: string | null | undefined): string | null {
  if (!next || !/^\/(?![/\\])/.test(next)) return null;
  try {
    const u = new URL(next, location.origin);
    if (u.origin !== location.origin) return null;
    const p = u.pathname + u.search + u.hash;
    return p === '/signin' || p.startsWith('/signin?') || p === '/signup' || p.startsWith('/signup?') ? null : p;
  } catch {
    return null;
  }
}

export function errorMessage(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

// ---- shapes ----

export interface Field {
  name: string;
  type: 'string' | 'text' | 'integer' | 'boolean' | 'choice' | 'string_map' | 'string_list' | string;
  required: boolean;
  default: unknown;
  help?: string;
  templates?: boolean;
  choices?: string[];
  format?: string;
  // type "conditions" (the filter step): every operator, those without a right side, the row limit.
  ops?: string[];
  unaryOps?: string[];
  maxItems?: number;
}

export interface CatalogItem {
  id: string;
  name: string;
  image?: string;
  description?: string;
  configSchema: { fields: Field[] };
}

export interface RunSummary {
  id: string;
  status: string;
  createdAt: string;
}

export interface Zap {
  id: string;
  name: string;
  enabled: boolean;
  version: number;
  createdAt: string;
  updatedAt: string;
  userId: string;
  webhookUrl: string | null; // null: a schedule zap (nothing to call)
  nextFireAt?: string | null; // a schedule zap's next slot (RFC 3339)
  retry: { attempts?: number; baseDelayMs?: number } | null;
  trigger: { id: string; triggerId: string; metadata: Record<string, unknown>; type?: { id: string; name: string } };
  actions: {
    id: string;
    actionId: string;
    metadata: Record<string, unknown>;
    sortingOrder: number;
    type?: { id: string; name: string };
  }[];
  lastRun?: RunSummary | null;
}

export interface Step {
  index: number;
  actionId: string;
  status: string;
  attempts: number;
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
  nextAttemptAt: string | null;
  input: unknown;
  output: unknown;
  error: string | null;
  warnings: unknown[];
}

export interface Run {
  id: string;
  zapId: string;
  zapVersion: number;
  status: string;
  lane?: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
  error: string | null;
  replayOf: string | null;
  resumeAt?: string | null; // a waiting run (a delay step): when its next step is due
  trigger: { method?: string; body?: unknown; query?: Record<string, unknown>; headers?: Record<string, string>; contentType?: string; receivedAt?: string; scheduledFor?: string; firedAt?: string };
  steps?: Step[];
}

// `waiting`: a delay step holds the run until resumeAt; `filtered`: a filter step ended it (final, not a failure).
export const RUN_STATUSES = ['queued', 'running', 'waiting', 'succeeded', 'filtered', 'failed', 'cancelled'];
// Not final yet: pages refresh these, and they can be cancelled.
export const isActive = (status: string) => status === 'queued' || status === 'running' || status === 'waiting';

// The filter step's output: which conditions held, and (when it stopped the run) why.
export interface FilterOutput {
  passed: boolean;
  match: string;
  conditions: { index: number; left: unknown; op: string; right?: unknown; result: boolean; note?: string }[];
  stoppedBy?: string;
}

let catalog: Promise<{ triggers: CatalogItem[]; actions: CatalogItem[] }> | null = null;

// The catalog never changes while the server runs; fetch it once per page load.
export function loadCatalog() {
  if (!catalog) {
    catalog = Promise.all([
      api<{ availableTriggers: CatalogItem[] }>('GET', '/api/v1/trigger/available'),
      api<{ availableActions: CatalogItem[] }>('GET', '/api/v1/action/available'),
    ]).then(([t, a]) => ({ triggers: t.availableTriggers, actions: a.availableActions }));
    catalog.catch(() => (catalog = null));
  }
  return catalog;
}
