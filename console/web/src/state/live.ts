// The console's live picture: the user, the cameras, devices, sites, walls
// and alerts of their subtree, loaded once and then kept current by the
// events stream. A gap in the stream (the server restarted, or the client
// was away too long) reloads everything; views only read from here.

import { reactive, ref } from 'vue';
import { api } from '../api/client';
import { follow, type SSEMessage } from '../api/sse';
import type { Alert, Camera, CameraState, Command, Device, ListResponse, LiveEvent, Me, Site, StreamStatus, Wall } from '../api/types';
import { session } from './session';
import { foldAlert, type AlertEventData, type Folded } from './alerts';
import { applyWallEvent, type WallEventData } from './wall';

export const me = ref<Me | null>(null);
export const cameras = reactive(new Map<string, Camera>());
export const cameraStatus = reactive(new Map<string, StreamStatus>());
export const devices = reactive(new Map<string, Device>());
export const sites = reactive(new Map<string, Site>());
export const walls = reactive(new Map<string, Wall>());
export const alerts = reactive(new Map<string, Alert>());
export const commands = reactive(new Map<string, Command>());
export const stream = reactive({ state: 'connecting' as 'connecting' | 'open' | 'closed', detail: '', loaded: false, error: '' });

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

// Events that arrive while load runs wait in held and are applied after
// it, so a change made during the load is not overwritten by its older copy.
let held: SSEMessage[] | null = null;

/** load reads everything the console shows, replacing what was held. */
export async function load(): Promise<void> {
  held = held ?? [];
  try {
    await loadAll();
  } finally {
    const waiting = held;
    held = null;
    for (const m of waiting) handle(m);
  }
}

async function loadAll(): Promise<void> {
  const [m, cams, devs, ss, ws, as] = await Promise.all([
    api<Me>('/me'),
    api<ListResponse<Camera>>('/cameras'),
    api<ListResponse<Device>>('/devices'),
    api<ListResponse<Site>>('/sites'),
    api<ListResponse<Wall>>('/walls').catch(() => ({ items: [] as Wall[] })),
    api<ListResponse<Alert>>('/alerts?limit=500'),
  ]);
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
    void load().catch((err) => (stream.error = String(err)));
    return;
  }
  let ev: LiveEvent;
  try {
    ev = JSON.parse(m.data);
  } catch {
    return; // not an event of ours; the stream goes on
  }
  const d = ev.data as Record<string, unknown>;
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
    },
    onUnauthorized: () => session.end('expired'),
  });
  try {
    await load();
    stream.error = '';
  } catch (err) {
    stream.error = err instanceof Error ? err.message : String(err);
  }
}

export function stopLive() {
  stop?.();
  stop = null;
  stream.loaded = false;
  me.value = null;
}
