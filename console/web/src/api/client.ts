// The console's HTTP client: JSON in and out, the bearer token of the
// session on every call, and Lookout's error body ({"error": {"code",
// "message"}}) turned into an ApiError that views can show.

import { session } from '../state/session';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field?: string;

  constructor(status: number, code: string, message: string, field?: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/** errorOf reads Lookout's error body from a response that is not ok. */
export async function errorOf(resp: Response): Promise<ApiError> {
  let code = `http_${resp.status}`;
  let message = `HTTP ${resp.status}`;
  let field: string | undefined;
  try {
    const body = await resp.json();
    if (body && typeof body === 'object' && body.error) {
      code = String(body.error.code || code);
      message = String(body.error.message || message);
      field = body.error.field ? String(body.error.field) : undefined;
    }
  } catch {
    // Not JSON (a proxy's page, say): the status says enough.
  }
  return new ApiError(resp.status, code, message, field);
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
}

/**
 * api calls Lookout's API at path (from /api/v1), with the session's token.
 * A 401 ends the session (the token expired or was refused), which sends
 * the console back to the login page.
 */
export async function api<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const token = session.token();
  if (token) headers.Authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  const resp = await fetch(`/api/v1${path}`, {
    method: opts.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    body,
    signal: opts.signal,
  });
  if (resp.status === 401 && token) {
    session.end('expired');
  }
  if (!resp.ok) throw await errorOf(resp);
  if (resp.status === 204) return undefined as T;
  return (await resp.json()) as T;
}
