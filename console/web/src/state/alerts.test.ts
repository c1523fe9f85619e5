import { describe, expect, it } from 'vitest';
import type { Alert } from '../api/types';
import { foldAlert, sortedAlerts, stepsFrom, unackedRed } from './alerts';

function alert(over: Partial<Alert>): Alert {
  return {
    id: 'a',
    rule_id: 'r',
    kind: 'threshold',
    device_id: 'd',
    site_id: 's',
    org_id: 'o',
    severity: 'yellow',
    state: 'active',
    started_at: '2026-11-30T10:00:00Z',
    updated_at: '2026-11-30T10:00:00Z',
    value: 1,
    ...over,
  };
}

describe('foldAlert', () => {
  it('says raised for a new open alert, and red for a red one', () => {
    const m = new Map<string, Alert>();
    expect(foldAlert(m, alert({}), 'raised')).toEqual({ changed: true, raised: true, red: false });
    expect(foldAlert(m, alert({ id: 'b', severity: 'red' }), 'raised')).toEqual({ changed: true, raised: true, red: true });
  });

  it('says red when an alert escalates to red, not again on its repeats', () => {
    const m = new Map<string, Alert>();
    foldAlert(m, alert({}), 'raised');
    expect(foldAlert(m, alert({ severity: 'red', updated_at: '2026-11-30T10:01:00Z' }), 'escalated').red).toBe(true);
    expect(foldAlert(m, alert({ severity: 'red', updated_at: '2026-11-30T10:02:00Z' }), 'updated')).toEqual({ changed: true, raised: false, red: false });
  });

  it('keeps a newer alert against a replayed older one', () => {
    const m = new Map<string, Alert>();
    foldAlert(m, alert({ state: 'acknowledged', updated_at: '2026-11-30T10:05:00Z' }));
    expect(foldAlert(m, alert({ state: 'active', updated_at: '2026-11-30T10:00:00Z' }), 'raised').changed).toBe(false);
    expect(m.get('a')?.state).toBe('acknowledged');
  });
});

describe('sortedAlerts', () => {
  it('puts open first, then severity, then unacknowledged, then newest', () => {
    const m = new Map<string, Alert>();
    for (const a of [
      alert({ id: 'closed-red', severity: 'red', state: 'closed' }),
      alert({ id: 'blue', severity: 'blue' }),
      alert({ id: 'red-acked', severity: 'red', state: 'acknowledged' }),
      alert({ id: 'red-old', severity: 'red', started_at: '2026-11-30T09:00:00Z' }),
      alert({ id: 'red-new', severity: 'red', started_at: '2026-11-30T11:00:00Z' }),
      alert({ id: 'orange', severity: 'orange', state: 'dispatched' }),
    ]) {
      foldAlert(m, a);
    }
    expect(sortedAlerts(m).map((a) => a.id)).toEqual(['red-new', 'red-old', 'red-acked', 'orange', 'blue', 'closed-red']);
    expect(sortedAlerts(m, { open: true, severity: 'red' }).map((a) => a.id)).toEqual(['red-new', 'red-old', 'red-acked']);
  });
});

describe('stepsFrom', () => {
  it.each([
    ['active', ['ack']],
    ['acknowledged', ['dispatch', 'resolve']],
    ['dispatched', ['resolve']],
    ['resolved', ['close']],
    ['closed', []],
  ] as const)('%s allows %j', (state, want) => {
    expect(stepsFrom(state)).toEqual(want);
  });
});

describe('unackedRed', () => {
  it('is true only while a red alert waits for acknowledgement', () => {
    const m = new Map<string, Alert>();
    foldAlert(m, alert({ severity: 'orange' }));
    expect(unackedRed(m)).toBe(false);
    foldAlert(m, alert({ id: 'r', severity: 'red' }));
    expect(unackedRed(m)).toBe(true);
    foldAlert(m, alert({ id: 'r', severity: 'red', state: 'acknowledged', updated_at: '2026-11-30T10:01:00Z' }));
    expect(unackedRed(m)).toBe(false);
  });
});
