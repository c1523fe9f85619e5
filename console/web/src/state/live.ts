// The console's live picture: the user, the cameras, devices, sites, walls
// and alerts of their subtree, loaded once and then kept current by the
// events stream. A gap in the stream (the server restarted, or the client
// was away too long) reloads everything; views only read from here.

import { reactive, ref, watchEffect } from 'vue';
import { api } from '../api/client';
import { follow, type SSEMessage } from '../api/sse';
import type { Alert, Camera, CameraState, Command, Device, ListResponse, LiveEvent, Me, Site, StreamStatus, Wall } from '../api/types';
import { session } from './session';
import { foldAlert, unackedRed, type AlertEventData, type Folded } from './alerts';
import { setAlarm } from './alarm';
import { applyWallEvent, type WallEventData } from './wall';

export const me = ref<Me | null>(null);
export const cameras = reactive(new Map<string, Camera>());
export const cameraStatus = reactive(new Map<string, StreamStatus>());
export const devices = reactive(new Map<string, Device>());
export const sites = reactive(new Map<string, Site>());
export const walls = reactive(new Map<string, Wall>());
export const alerts = reactive(new Map<string, Alert>());
export const commands = reactive(new Map<string, Command>());
export const stream = reactive({ state: 'connecting' as 'connecting' | 'open' | 'closed', detail: '', loaded: false, error: '', none: false });
/** currentWall is the wall the operator last worked on (the map puts cameras there). */
export const currentWall = ref('');

// The alarm sounds while a red alert waits for acknowledgement, whichever
// page is open; never when nobody is signed in (stopLive empties alerts).
watchEffect(() => setAlarm(unackedRed(alerts)));

type AlertListener = (a: Alert, f: Folded) => void;
const alertListeners = new Set<AlertListener>();

/** onAlert registers a listener for every folded alert change; it returns the unregistering function. */
export function onAlert(fn: AlertListener): () => void {
  alertListeners.add(fn);
  return () => alertListeners.delete(fn);
}

function replace<T extends { id: string }>(m: Map<string, T>, items: T[]) {
  m.clear();
  for (const it of items) m.set(it.id, it);
}

/** cameraState is a camera's state as the wall shows it. */
export function cameraState(id: string): CameraState | 'unknown' {
  return cameraStatus.get(id)?.state ?? cameras.get(id)?.state ?? 'unknown';
}

// Events that arrive while a load runs wait in held and are applied after
// it, so a change made during the load is not overwritten by its older
// copy. One load runs at a time; asking for another while one runs makes
// it run again once after (a gap during a load).
let held: SSEMessage[] | null = null;
let loading: Promise<void> | null = null;
let again = false;
// generation changes at stopLive: a load that began before it is dropped.
let generation = 0;

/** load reads everything the console shows, replacing what was held; a failure is retried with backoff until it succeeds or the session stops. */
export function load(): Promise<void> {
  if (loading) {
    again = true;
    return loading;
  }
  const gen = generation;
  held = held ?? [];
  loading = (async () => {
    for (let attempt = 0; gen === generation; attempt++) {
      again = false;
      try {
        await loadAll(gen);
        if (gen !== generation) return;
        stream.error = '';
        if (!again) break;
      } catch (err) {
        if (gen !== generation) return;
        stream.error = err instanceof Error ? err.message : String(err);
        await new Promise((r) => setTimeout(r, Math.min(30000, 1000 * 2 ** Math.min(attempt, 5))));
      }
    }
  })().finally(() => {
    loading = null;
    const waiting = held ?? [];
    held = null;
    if (gen === generation) for (const m of waiting) handle(m);
  });
  return loading;
}

async function loadAll(gen: number): Promise<void> {
  // What the role may read, and nothing else: a hearing officer's console
  // has no cameras or alerts to load.
  const m = await api<Me>('/me');
  const may = (p: string) => m.permissions.includes(p);
  const none = <T>() => Promise.resolve({ items: [] as T[] });
  const [cams, devs, ss, ws, as] = await Promise.all([
    may('devices:read') ? api<ListResponse<Camera>>('/cameras') : none<Camera>(),
    may('devices:read') ? api<ListResponse<Device>>('/devices') : none<Device>(),
    // Sites are what petitions concern too: a hearing officer lists them.
    may('devices:read') || may('petitions:write') ? api<ListResponse<Site>>('/sites') : none<Site>(),
    may('devices:read') ? api<ListResponse<Wall>>('/walls').catch(() => ({ items: [] as Wall[] })) : none<Wall>(),
    may('alerts:read') ? api<ListResponse<Alert>>('/alerts?limit=500') : none<Alert>(),
  ]);
  if (gen !== generation) return; // signed out meanwhile
  me.value = m;
  replace(cameras, cams.items);
  cameraStatus.clear();
  for (const c of cams.items) if (c.stream) cameraStatus.set(c.id, c.stream);
  replace(devices, devs.items);
  replace(sites, ss.items);
  replace(walls, ws.items);
  alerts.clear();
  for (const a of as.items) foldAlert(alerts, a);
  stream.loaded = true;
}

function handle(m: SSEMessage) {
  if (held && m.event !== 'gap') {
    held.push(m);
    return;
  }
  if (m.event === 'gap') {
    void load();
    return;
  }
  let ev: LiveEvent;
  try {
    ev = JSON.parse(m.data);
  } catch {
    return; // not an event of ours; the stream goes on
  }
  const d = ev.data as Record<string, unknown>;
  if (!d || typeof d !== 'object') return; // not an event of ours
  switch (ev.type) {
    case 'alert': {
      const data = d as unknown as AlertEventData;
      if (!data.alert) return;
      const f = foldAlert(alerts, data.alert, data.action);
      if (f.changed) for (const fn of alertListeners) fn(data.alert, f);
      break;
    }
    case 'wall':
      applyWallEvent(walls, d as unknown as WallEventData);
      break;
    case 'camera':
      if (d.action === 'state' && typeof d.camera_id === 'string') {
        cameraStatus.set(d.camera_id, d.status as StreamStatus);
      } else if (d.camera && typeof d.camera === 'object') {
        const cam = d.camera as Camera;
        if (d.action === 'deleted') cameras.delete(cam.id);
        else cameras.set(cam.id, { ...cameras.get(cam.id), ...cam });
      }
      break;
    case 'device':
      if (d.action === 'presence' && typeof d.device_id === 'string') {
        const dev = devices.get(d.device_id);
        if (dev) devices.set(dev.id, { ...dev, state: d.state as Device['state'], online: d.state === 'online' });
      } else if (d.device && typeof d.device === 'object') {
        const dev = d.device as Device;
        if (d.action === 'deleted') devices.delete(dev.id);
        else devices.set(dev.id, { ...devices.get(dev.id), ...dev });
      }
      break;
    case 'command': {
      const c = d as unknown as Command;
      if (c.id) commands.set(c.id, c);
      break;
    }
  }
}

let stop: (() => void) | null = null;

/** start loads the picture and follows the events stream; stop with stopLive. */
export async function startLive(): Promise<void> {
  if (stop) return;
  stop = follow({
    url: '/api/v1/events',
    token: () => session.token(),
    onMessage: handle,
    onState: (s, detail) => {
      stream.state = s;
      stream.detail = detail ?? '';
      // A role without any event to follow has no live state to show.
      stream.none = detail === 'forbidden';
    },
    onUnauthorized: () => session.end('expired'),
  });
  await load();
}

export function stopLive() {
  stop?.();
  stop = null;
  generation++;
  held = null;
  stream.loaded = false;
  stream.error = '';
  me.value = null;
  currentWall.value = '';
  // Nothing of this user stays for the next one to see.
  for (const m of [cameras, cameraStatus, devices, sites, walls, alerts, commands] as Map<string, unknown>[]) m.clear();
}
