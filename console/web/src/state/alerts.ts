// The alert panel's logic: the live list of alerts folded from the API's
// list and the events stream, in the order a duty operator works them, and
// which steps each state allows (the server's rule: active -> acknowledged
// -> dispatched (optional) -> resolved -> closed).

import type { Alert, AlertState, Severity } from '../api/types';

export const severities: Severity[] = ['red', 'orange', 'yellow', 'blue'];

/** severityRank orders severities: red (I) is the highest. */
export function severityRank(s: Severity): number {
  switch (s) {
    case 'red':
      return 4;
    case 'orange':
      return 3;
    case 'yellow':
      return 2;
    case 'blue':
      return 1;
  }
  return 0;
}

export type Step = 'ack' | 'dispatch' | 'resolve' | 'close';

/** stepsFrom lists the steps an alert in state may take. */
export function stepsFrom(state: AlertState): Step[] {
  switch (state) {
    case 'active':
      return ['ack'];
    case 'acknowledged':
      return ['dispatch', 'resolve'];
    case 'dispatched':
      return ['resolve'];
    case 'resolved':
      return ['close'];
    case 'closed':
      return [];
  }
  return [];
}

export function isOpen(a: Alert): boolean {
  return a.state === 'active' || a.state === 'acknowledged' || a.state === 'dispatched';
}

/**
 * compareAlerts orders the panel: open before ended, then the more severe,
 * then unacknowledged before acknowledged, then the newest.
 */
export function compareAlerts(a: Alert, b: Alert): number {
  const open = Number(isOpen(b)) - Number(isOpen(a));
  if (open !== 0) return open;
  const sev = severityRank(b.severity) - severityRank(a.severity);
  if (sev !== 0) return sev;
  const unacked = Number(b.state === 'active') - Number(a.state === 'active');
  if (unacked !== 0) return unacked;
  return Date.parse(b.started_at) - Date.parse(a.started_at);
}

/** What an alert event carries. */
export interface AlertEventData {
  action: string;
  alert: Alert;
}

/** What folding one event changed, for the panel's reactions (sound, pin). */
export interface Folded {
  changed: boolean;
  /** raised: first seen and open (or refired); the sound and the pin follow it */
  raised: boolean;
  /** escalated to red, or raised red */
  red: boolean;
}

/**
 * foldAlert applies an alert (from the list or an event) to the alerts held
 * by id. An alert older than the one held (by updated_at) changes nothing,
 * so a replay after a reconnect cannot undo a newer step.
 */
export function foldAlert(held: Map<string, Alert>, a: Alert, action = ''): Folded {
  const old = held.get(a.id);
  if (old && Date.parse(old.updated_at) > Date.parse(a.updated_at)) {
    return { changed: false, raised: false, red: false };
  }
  held.set(a.id, a);
  const raised = (!old && isOpen(a) && action !== 'updated') || action === 'raised' || action === 'refired';
  const red = a.severity === 'red' && isOpen(a) && (raised || (old !== undefined && old.severity !== 'red'));
  return { changed: true, raised, red };
}

/** sortedAlerts lists the alerts held, in the panel's order, filtered. */
export function sortedAlerts(held: Map<string, Alert>, filter: { severity?: Severity | ''; open?: boolean } = {}): Alert[] {
  const out: Alert[] = [];
  for (const a of held.values()) {
    if (filter.severity && a.severity !== filter.severity) continue;
    if (filter.open && !isOpen(a)) continue;
    out.push(a);
  }
  return out.sort(compareAlerts);
}

/** unmutedRed says whether any open red alert is not yet acknowledged: the sound plays while one is. */
export function unackedRed(held: Map<string, Alert>): boolean {
  for (const a of held.values()) if (a.severity === 'red' && a.state === 'active') return true;
  return false;
}
