// Remote hearings (信访远程听证) as the officer's console shows them: the
// order of a day's list, who waits in the lobby, the resident's link as a
// URL, the meeting page's link, times and sizes in the tables, and the
// fetch of a recording (the bearer token rules out a plain <video src>).
// Everything but the fetch is a pure function of its arguments.

import { errorOf } from '../api/client';
import type { Hearing, HearingLink, HearingOther, HearingRecording, LobbyEntry } from '../api/types';
import { session } from './session';

/** pollMs is how often an open hearing is read again: the lobby is seen so. */
export const pollMs = 1500;
/** listPollMs is how often the day's list is read again (its lobby badges). */
export const listPollMs = 5000;

/** residentIdentity is the resident's identity in the hearing's room (console/hearings). */
export const residentIdentity = 'resident';

/** maxOthers is the most further participants a hearing takes. */
export const maxOthers = 4;

/** isOpen says the hearing has not ended nor been cancelled: its link, lobby and video still work. */
export function isOpen(h: Pick<Hearing, 'state'>): boolean {
  return h.state === 'scheduled' || h.state === 'in_progress';
}

/**
 * stillChanging says the hearing's page should read it again: it is open,
 * or it has ended and its record is not signed yet. The end signs the
 * record before it answers, but a read that crossed the end can show the
 * hearing ended and unsigned after the end's own answer (or in its place:
 * the end's form leaves the page as soon as any read says ended).
 */
export function stillChanging(h: Pick<Hearing, 'state' | 'signed'>): boolean {
  return isOpen(h) || (h.state === 'ended' && !h.signed);
}

/**
 * pollReads says the page's timer should read the hearing now: while it
 * is still changing, but not while the page's own end is under way. A
 * read answered then could say ended and take the end's form off the
 * page before the end answered, and with it the end's error, if it had
 * one.
 */
export function pollReads(h: Pick<Hearing, 'state' | 'signed'>, ending: boolean): boolean {
  return !ending && stillChanging(h);
}

const stateRank: Record<string, number> = { in_progress: 0, scheduled: 1, ended: 2, cancelled: 2 };

/**
 * sortHearings orders a day's hearings as the officer works through them:
 * the one under way first, then those to come by their start, then those
 * over (ended or cancelled) by their start. It returns a new array.
 */
export function sortHearings<T extends Pick<Hearing, 'id' | 'state' | 'starts_at'>>(hs: readonly T[]): T[] {
  return [...hs].sort(
    (a, b) =>
      (stateRank[a.state] ?? 3) - (stateRank[b.state] ?? 3) ||
      Date.parse(a.starts_at) - Date.parse(b.starts_at) ||
      (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
}

/** lobbyCount is how many wait in an open hearing's lobby (the list's badge; 0: none). */
export function lobbyCount(h: Pick<Hearing, 'state' | 'lobby'>): number {
  return isOpen(h) ? (h.lobby?.length ?? 0) : 0;
}

/** waitingResident is the resident's lobby entry when they wait, else null. */
export function waitingResident(h: Pick<Hearing, 'state' | 'lobby'>): LobbyEntry | null {
  if (!isOpen(h)) return null;
  return h.lobby?.find((e) => e.identity === residentIdentity) ?? null;
}

/** waitedSeconds is how long someone has waited since since (RFC 3339) at now; 0 for a bad time. */
export function waitedSeconds(since: string, now: number): number {
  const t = Date.parse(since);
  return Number.isFinite(t) ? Math.max(0, Math.floor((now - t) / 1000)) : 0;
}

/** formatDuration says a duration as m:ss, or h:mm:ss from an hour on. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round((Number.isFinite(ms) ? ms : 0) / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** formatBytes says a file's size in B, KB, MB or GB (1024-based). */
export function formatBytes(bytes: number): string {
  if (!(bytes > 0)) return '0 B';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${Math.round(bytes / 1024)} KB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
}

/** shortHash is a checksum's first n hex digits and an ellipsis (the whole on hover and copy). */
export function shortHash(hex: string | undefined, n = 12): string {
  if (!hex) return '—';
  return hex.length > n ? `${hex.slice(0, n)}…` : hex;
}

/** shortSignature is a signature's (base64) first and last 8 characters. */
export function shortSignature(sig: string): string {
  return sig.length > 20 ? `${sig.slice(0, 8)}…${sig.slice(-8)}` : sig;
}

/**
 * linkURL makes the resident's link of the path the server answers
 * (/h/<token>) and the console's origin. Anything but such a path is
 * refused (''), so that no answer can turn the link elsewhere.
 */
export function linkURL(origin: string, path: string): string {
  if (!/^\/h\/[A-Za-z0-9._~-]+$/.test(path)) return '';
  return origin.replace(/\/+$/, '') + path;
}

/** meetURL is the meeting page joining room with token; both travel in the fragment, which is never sent. */
export function meetURL(room: string, token: string): string {
  return `/meet/#room=${encodeURIComponent(room)}&token=${encodeURIComponent(token)}`;
}

const chinaOffsetMs = 8 * 3600 * 1000;

/** chinaDay is the date (YYYY-MM-DD) of t in China's time, which the server's ?day= means. */
export function chinaDay(t: Date | number): string {
  const ms = typeof t === 'number' ? t : t.getTime();
  return new Date(ms + chinaOffsetMs).toISOString().slice(0, 10);
}

/**
 * chinaClock is the time of day (HH:MM) of t in China's time: a day's list
 * is of a China day (the server's ?day=), so its times are China's too,
 * whatever the browser's zone.
 */
export function chinaClock(t: string | number): string {
  const ms = typeof t === 'number' ? t : Date.parse(t);
  return Number.isFinite(ms) ? new Date(ms + chinaOffsetMs).toISOString().slice(11, 16) : '';
}

/** shiftDay is the day n days after day (YYYY-MM-DD). */
export function shiftDay(day: string, n: number): string {
  const t = Date.parse(`${day}T00:00:00Z`);
  if (!Number.isFinite(t)) return day;
  return new Date(t + n * 86400_000).toISOString().slice(0, 10);
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** inputValue is t as a datetime-local input holds it (the browser's time, to the minute). */
export function inputValue(t: Date): string {
  return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())}T${pad(t.getHours())}:${pad(t.getMinutes())}`;
}

/** defaultStart is the schedule form's first start: the next quarter hour at least ten minutes ahead. */
export function defaultStart(now: Date): Date {
  const step = 15 * 60_000;
  return new Date(Math.ceil((now.getTime() + 10 * 60_000) / step) * step);
}

/** startsAt makes the RFC 3339 time of a datetime-local input's value ('' when it is no time). */
export function startsAt(value: string): string {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(value)) return '';
  const t = new Date(value);
  return Number.isFinite(t.getTime()) ? t.toISOString() : '';
}

/** cleanOthers trims the form's further participants and drops the empty rows. */
export function cleanOthers(rows: readonly HearingOther[]): HearingOther[] {
  return rows.map((o) => ({ name: o.name.trim(), role: o.role.trim() })).filter((o) => o.name !== '' || o.role !== '');
}

/** playable says a recording's file can be played: finished, or interrupted (it plays up to there). */
export function playable(r: Pick<HearingRecording, 'state'>): boolean {
  return r.state === 'complete' || r.state === 'interrupted';
}

/** pauseCount is how many stretches without media a recording has. */
export function pauseCount(r: Pick<HearingRecording, 'pauses'>): number {
  return r.pauses?.length ?? 0;
}

// The resident's link is answered once (scheduling, re-issuing): the view
// that asked for it hands it to the hearing's page through here, never
// through the URL or the history.
const issued = new Map<string, HearingLink>();

/** keepIssuedLink holds a link just issued for the hearing's page to show. */
export function keepIssuedLink(hearingId: string, link: HearingLink) {
  issued.set(hearingId, link);
}

/** takeIssuedLink hands the link just issued to the hearing's page, once. */
export function takeIssuedLink(hearingId: string): HearingLink | null {
  const l = issued.get(hearingId) ?? null;
  issued.delete(hearingId);
  return l;
}

/**
 * fetchRecording fetches a recording's file with the session's token. The
 * whole file is read into a Blob: a hearing's file (an hour of 720p VP8 is
 * some hundreds of MB at most) fits in this version; a longer one would
 * want a Service Worker adding the token to the player's range requests.
 */
export async function fetchRecording(hearingId: string, recordingId: string, signal?: AbortSignal): Promise<Blob> {
  const token = session.token();
  const resp = await fetch(`/api/v1/hearings/${encodeURIComponent(hearingId)}/recordings/${encodeURIComponent(recordingId)}`, {
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    signal,
  });
  if (resp.status === 401 && token) session.end('expired');
  if (!resp.ok) throw await errorOf(resp);
  return resp.blob();
}

/**
 * copyText puts text on the clipboard: the Clipboard API where the page
 * may use it (https, localhost), else a selected text area and the copy
 * command. It says whether it worked.
 */
export async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // Refused (no permission): the old way below.
  }
  const ta = document.createElement('textarea');
  ta.value = text;
  ta.setAttribute('readonly', '');
  ta.style.position = 'fixed';
  ta.style.opacity = '0';
  document.body.appendChild(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  ta.remove();
  return ok;
}
