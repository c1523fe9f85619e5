// The login session: the bearer token and its expiry, kept in localStorage
// so that the full-screen wall opened in another window of the same
// browser is signed in too. A token past its expiry is never used.

import { reactive } from 'vue';

const storageKey = 'lookout.session';

export interface StoredSession {
  token: string;
  expiresAt: number; // Unix ms
  userId: string;
}

export type EndReason = '' | 'logout' | 'expired';

interface SessionState {
  current: StoredSession | null;
  ended: EndReason;
}

/** parseStored reads a stored session, or null when it is missing, malformed or expired. */
export function parseStored(raw: string | null, now: number): StoredSession | null {
  if (!raw) return null;
  try {
    const v = JSON.parse(raw);
    if (!v || typeof v.token !== 'string' || typeof v.expiresAt !== 'number' || typeof v.userId !== 'string') {
      return null;
    }
    if (v.token === '' || v.expiresAt <= now) return null;
    return { token: v.token, expiresAt: v.expiresAt, userId: v.userId };
  } catch {
    return null;
  }
}

function load(): StoredSession | null {
  try {
    return parseStored(localStorage.getItem(storageKey), Date.now());
  } catch {
    return null;
  }
}

const state = reactive<SessionState>({ current: load(), ended: '' });

let expiryTimer: ReturnType<typeof setTimeout> | undefined;

function armExpiry() {
  clearTimeout(expiryTimer);
  const s = state.current;
  if (!s) return;
  // setTimeout takes at most 2^31-1 ms; a longer session is checked again then.
  const wait = Math.min(s.expiresAt - Date.now(), 0x7fffffff);
  expiryTimer = setTimeout(() => {
    if (state.current && state.current.expiresAt <= Date.now()) session.end('expired');
    else armExpiry();
  }, Math.max(wait, 0));
}

export const session = {
  state,
  token(): string {
    const s = state.current;
    if (!s || s.expiresAt <= Date.now()) return '';
    return s.token;
  },
  signedIn(): boolean {
    return this.token() !== '';
  },
  start(token: string, expiresAt: string, userId: string) {
    const s: StoredSession = { token, expiresAt: Date.parse(expiresAt), userId };
    state.current = s;
    state.ended = '';
    try {
      localStorage.setItem(storageKey, JSON.stringify(s));
    } catch {
      // Private mode without storage: the session lives in this page only.
    }
    armExpiry();
  },
  end(reason: EndReason) {
    state.current = null;
    state.ended = reason;
    clearTimeout(expiryTimer);
    try {
      localStorage.removeItem(storageKey);
    } catch {
      // Nothing stored.
    }
  },
};

armExpiry();

// Another window signing in or out applies here too.
if (typeof window !== 'undefined') {
  window.addEventListener('storage', (ev) => {
    if (ev.key !== storageKey) return;
    const next = parseStored(ev.newValue, Date.now());
    if (next && state.current && next.userId !== state.current.userId) {
      // Another user signed in in this browser: start afresh as them,
      // rather than show one user's data with the other's token.
      window.location.reload();
      return;
    }
    state.current = next;
    if (!state.current) state.ended = 'logout';
    armExpiry();
  });
}
