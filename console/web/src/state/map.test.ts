import { describe, expect, it } from 'vitest';
import type { Alert, Device, Site } from '../api/types';
import { alertsGeoJSON, bounds, freeTile, pairTrack, positionOf, vesselsGeoJSON } from './map';

const vessel = (latest: Record<string, number>): Device => ({
  id: 'vessel-1',
  kind: 'vessel',
  name: 'v',
  site_id: 'port',
  org_id: 'o',
  lat: 0,
  lon: 0,
  latest: Object.fromEntries(Object.entries(latest).map(([k, v]) => [k, { ts: 1, value: v }])),
});

describe('positionOf', () => {
  it('puts a vessel at its reported position, a device at its registered one', () => {
    expect(positionOf(vessel({ lat: 24.74, lon: 118.77 }))).toEqual([118.77, 24.74]);
    expect(positionOf(vessel({}))).toBeNull();
    expect(positionOf({ ...vessel({}), kind: 'water_level', lat: 27.2, lon: 102.9 })).toEqual([102.9, 27.2]);
    expect(positionOf({ ...vessel({ lat: 91, lon: 0 }) })).toBeNull();
  });
});

describe('vesselsGeoJSON', () => {
  it('takes the heading, or the course when AIS says 511 (not available)', () => {
    const track = { points: [[118.7, 24.7], [118.8, 24.8]] as [number, number][] };
    const v = vesselsGeoJSON([
      { device: vessel({ lat: 24.7, lon: 118.7, heading: 90, cog: 80 }), ...track },
      { device: { ...vessel({ lat: 24.7, lon: 118.7, heading: 511, cog: 80 }), id: 'vessel-2' }, points: [] },
    ]);
    expect(v.points.features.map((f) => f.properties.heading)).toEqual([90, 80]);
    expect(v.lines.features).toHaveLength(1);
  });
});

describe('pairTrack', () => {
  it('pairs lat and lon by time, oldest first, dropping unpaired and invalid points', () => {
    const lat = [{ ts: 3, value: 24.3 }, { ts: 1, value: 24.1 }, { ts: 2, value: 99 }, { ts: 4, value: 24.4 }];
    const lon = [{ ts: 1, value: 118.1 }, { ts: 2, value: 118.2 }, { ts: 3, value: 118.3 }];
    expect(pairTrack(lat, lon)).toEqual([[118.1, 24.1], [118.3, 24.3]]);
  });
});

describe('alertsGeoJSON', () => {
  it('places open alerts at the vessel position, the device, or the site; ended ones not at all', () => {
    const base = { rule_id: 'r', kind: 'threshold', org_id: 'o', started_at: '', updated_at: '', value: 0 } as const;
    const alerts: Alert[] = [
      { ...base, id: 'a1', device_id: 'vessel-1', site_id: 'port', severity: 'yellow', state: 'active', position: [24.5, 118.5] },
      { ...base, id: 'a2', device_id: 'gauge', site_id: 'dam', severity: 'red', state: 'acknowledged' },
      { ...base, id: 'a3', device_id: 'gone', site_id: 'dam', severity: 'blue', state: 'active' },
      { ...base, id: 'a4', device_id: 'gauge', site_id: 'dam', severity: 'red', state: 'closed' },
    ];
    const devices = new Map<string, Device>([['gauge', { ...vessel({}), id: 'gauge', kind: 'water_level', lat: 27.2, lon: 102.9 }]]);
    const sites = new Map<string, Site>([['dam', { id: 'dam', name: 'D', kind: 'reservoir', org_id: 'o', lat: 27, lon: 103 }]]);
    const fc = alertsGeoJSON(alerts, devices, sites);
    expect(fc.features.map((f) => [f.properties.id, f.geometry.coordinates])).toEqual([
      ['a1', [118.5, 24.5]],
      ['a2', [102.9, 27.2]],
      ['a3', [103, 27]],
    ]);
  });
});

describe('bounds and freeTile', () => {
  it('bounds the sites', () => {
    const s = (lat: number, lon: number): Site => ({ id: `${lat}`, name: '', kind: '', org_id: '', lat, lon });
    expect(bounds([s(27, 103), s(24.7, 118.8)])).toEqual([103, 24.7, 118.8, 27]);
    expect(bounds([])).toBeNull();
  });

  it('puts a camera on the first free tile outside the alert area, else the last', () => {
    const src = { kind: 'camera', id: 'x' };
    expect(freeTile([{}, {}, {}], [0])).toBe(1);
    expect(freeTile([{ source: src }, { source: src }, {}], [])).toBe(2);
    expect(freeTile([{}, { source: src }, { source: src }], [0])).toBe(2);
  });
});
