// The map's data, built from the live picture as GeoJSON: sites, devices
// coloured by state, cameras, vessels with heading and recent track, and
// open alerts at their device (a vessel's alert: its position).

import type { Alert, Camera, Device, Site } from '../api/types';
import { isOpen } from './alerts';

type Position = [number, number]; // [lon, lat]

export interface FeatureCollection {
  type: 'FeatureCollection';
  features: {
    type: 'Feature';
    id?: number;
    properties: Record<string, string | number | boolean>;
    geometry: { type: 'Point'; coordinates: Position } | { type: 'LineString'; coordinates: Position[] };
  }[];
}

function valid(lat: unknown, lon: unknown): lat is number {
  return typeof lat === 'number' && typeof lon === 'number' && Number.isFinite(lat) && Number.isFinite(lon) && Math.abs(lat) <= 90 && Math.abs(lon) <= 180 && !(lat === 0 && lon === 0);
}

function latest(d: Device, metric: string): number | undefined {
  const v = d.latest?.[metric]?.value;
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** positionOf is where a device is: a vessel's newest reported position, else its registered place. */
export function positionOf(d: Device): Position | null {
  if (d.kind === 'vessel') {
    const lat = latest(d, 'lat');
    const lon = latest(d, 'lon');
    if (valid(lat, lon)) return [lon as number, lat as number];
  }
  return valid(d.lat, d.lon) ? [d.lon, d.lat] : null;
}

export function sitesGeoJSON(sites: Iterable<Site>): FeatureCollection {
  const features: FeatureCollection['features'] = [];
  for (const s of sites) {
    if (!valid(s.lat, s.lon)) continue;
    features.push({ type: 'Feature', properties: { id: s.id, name: s.name, kind: s.kind }, geometry: { type: 'Point', coordinates: [s.lon, s.lat] } });
  }
  return { type: 'FeatureCollection', features };
}

export function devicesGeoJSON(devices: Iterable<Device>): FeatureCollection {
  const features: FeatureCollection['features'] = [];
  for (const d of devices) {
    if (d.kind === 'vessel') continue;
    const p = positionOf(d);
    if (!p) continue;
    features.push({ type: 'Feature', properties: { id: d.id, name: d.name, kind: d.kind, state: d.state ?? 'unknown' }, geometry: { type: 'Point', coordinates: p } });
  }
  return { type: 'FeatureCollection', features };
}

export function camerasGeoJSON(cameras: Iterable<Camera>, sites: Map<string, Site>, stateOf: (id: string) => string): FeatureCollection {
  const features: FeatureCollection['features'] = [];
  for (const c of cameras) {
    let p: Position | null = valid(c.lat, c.lon) ? [c.lon as number, c.lat as number] : null;
    if (!p) {
      const s = sites.get(c.site_id);
      if (s && valid(s.lat, s.lon)) p = [s.lon, s.lat];
    }
    if (!p) continue;
    features.push({ type: 'Feature', properties: { id: c.id, name: c.name, state: stateOf(c.id) }, geometry: { type: 'Point', coordinates: p } });
  }
  return { type: 'FeatureCollection', features };
}

export interface Track {
  device: Device;
  points: Position[]; // oldest first
}

/**
 * vesselsGeoJSON gives each vessel a point with its heading (the true
 * heading, or the course over ground when the heading is not available, as
 * AIS sends 511 for "not available") and a line of its recent track.
 */
export function vesselsGeoJSON(tracks: Iterable<Track>): { points: FeatureCollection; lines: FeatureCollection } {
  const points: FeatureCollection['features'] = [];
  const lines: FeatureCollection['features'] = [];
  for (const { device: d, points: track } of tracks) {
    const p = positionOf(d);
    if (!p) continue;
    let heading = latest(d, 'heading');
    if (heading === undefined || heading >= 360) heading = latest(d, 'cog') ?? 0;
    points.push({
      type: 'Feature',
      properties: { id: d.id, name: d.meta?.name || d.name, heading, sog: latest(d, 'sog') ?? 0, state: d.state ?? 'unknown' },
      geometry: { type: 'Point', coordinates: p },
    });
    if (track.length >= 2) lines.push({ type: 'Feature', properties: { id: d.id }, geometry: { type: 'LineString', coordinates: track } });
  }
  return { points: { type: 'FeatureCollection', features: points }, lines: { type: 'FeatureCollection', features: lines } };
}

/** pairTrack joins lat and lon series (by timestamp) into positions, oldest first. */
export function pairTrack(lat: { ts: number; value: number }[], lon: { ts: number; value: number }[]): Position[] {
  const lons = new Map(lon.map((p) => [p.ts, p.value]));
  const out: Position[] = [];
  for (const p of [...lat].sort((a, b) => a.ts - b.ts)) {
    const x = lons.get(p.ts);
    if (x !== undefined && valid(p.value, x)) out.push([x, p.value]);
  }
  return out;
}

export function alertsGeoJSON(alerts: Iterable<Alert>, devices: Map<string, Device>, sites: Map<string, Site>): FeatureCollection {
  const features: FeatureCollection['features'] = [];
  for (const a of alerts) {
    if (!isOpen(a)) continue;
    let p: Position | null = null;
    if (a.position && valid(a.position[0], a.position[1])) p = [a.position[1], a.position[0]];
    const d = devices.get(a.device_id);
    if (!p && d) p = positionOf(d);
    const s = sites.get(a.site_id);
    if (!p && s && valid(s.lat, s.lon)) p = [s.lon, s.lat];
    if (!p) continue;
    features.push({ type: 'Feature', properties: { id: a.id, severity: a.severity, name: a.rule_name || a.rule_id, state: a.state }, geometry: { type: 'Point', coordinates: p } });
  }
  return { type: 'FeatureCollection', features };
}

/** bounds is the [west, south, east, north] around the sites, or null without any. */
export function bounds(sites: Iterable<Site>): [number, number, number, number] | null {
  let w = Infinity;
  let s = Infinity;
  let e = -Infinity;
  let n = -Infinity;
  for (const x of sites) {
    if (!valid(x.lat, x.lon)) continue;
    w = Math.min(w, x.lon);
    e = Math.max(e, x.lon);
    s = Math.min(s, x.lat);
    n = Math.max(n, x.lat);
  }
  return Number.isFinite(w) ? [w, s, e, n] : null;
}

/** freeTile picks where "put on the wall" goes: the first empty tile outside the alert area, else the last tile outside it. */
export function freeTile(tiles: { source?: unknown }[], alertArea: number[] = []): number {
  let last = -1;
  for (let i = 0; i < tiles.length; i++) {
    if (alertArea.includes(i)) continue;
    if (!tiles[i].source) return i;
    last = i;
  }
  return last >= 0 ? last : 0;
}
