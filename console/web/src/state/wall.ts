// The video wall's logic, kept apart from the views so that it is tested on
// its own: where each tile of a layout sits, which stream a tile plays,
// what a tile shows at a moment (its source, its patrol, the wall's patrol
// or an alert's pin) and how a wall event from the server is applied.

import type { Layout, Patrol, Source, Tile, Wall } from '../api/types';

export const layouts: Layout[] = ['1', '4', '9', '16', '1+5'];

/** tileCount is how many tiles a layout has. */
export function tileCount(layout: Layout): number {
  switch (layout) {
    case '1':
      return 1;
    case '4':
      return 4;
    case '9':
      return 9;
    case '16':
      return 16;
    case '1+5':
      return 6;
  }
}

export interface Cell {
  row: number; // 1-based CSS grid line
  col: number;
  rowSpan: number;
  colSpan: number;
}

export interface Geometry {
  rows: number;
  cols: number;
  cells: Cell[];
}

/**
 * geometry places a layout's tiles on a CSS grid. 1+5 is a 3x3 grid whose
 * first tile spans the top-left 2x2, the five others around it, as command
 * rooms lay out one main picture with five beside and below it.
 */
export function geometry(layout: Layout): Geometry {
  if (layout === '1+5') {
    return {
      rows: 3,
      cols: 3,
      cells: [
        { row: 1, col: 1, rowSpan: 2, colSpan: 2 },
        { row: 1, col: 3, rowSpan: 1, colSpan: 1 },
        { row: 2, col: 3, rowSpan: 1, colSpan: 1 },
        { row: 3, col: 1, rowSpan: 1, colSpan: 1 },
        { row: 3, col: 2, rowSpan: 1, colSpan: 1 },
        { row: 3, col: 3, rowSpan: 1, colSpan: 1 },
      ],
    };
  }
  const n = Math.sqrt(tileCount(layout));
  const cells: Cell[] = [];
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) cells.push({ row: r + 1, col: c + 1, rowSpan: 1, colSpan: 1 });
  }
  return { rows: n, cols: n, cells };
}

/**
 * streamFor says which of a camera's streams a tile plays: the sub stream
 * (640x360 on most cameras) on tiles a third of the wall wide or smaller,
 * the main stream on larger ones. Sixteen main streams would be sixteen
 * 1080p decodes for pictures a quarter of that size.
 */
export function streamFor(layout: Layout, index: number): 'main' | 'sub' {
  const g = geometry(layout);
  const cell = g.cells[index];
  if (!cell) return 'sub';
  return cell.colSpan / g.cols > 1 / 3 ? 'main' : 'sub';
}

function startedAt(p: Patrol): number {
  const t = p.started_at ? Date.parse(p.started_at) : 0;
  return Number.isFinite(t) ? t : 0;
}

/**
 * patrolStep is the index of the patrol's current step at now: every screen
 * computes it from started_at and dwell_s alone, so all screens showing a
 * wall agree without the server ticking.
 */
export function patrolStep(p: Patrol, steps: number, now: number): number {
  if (steps <= 0 || p.dwell_s <= 0) return 0;
  const elapsed = Math.max(0, now - startedAt(p));
  return Math.floor(elapsed / (p.dwell_s * 1000)) % steps;
}

/** msToNextStep is the time from now to the patrol's next switch. */
export function msToNextStep(p: Patrol, now: number): number {
  const dwell = p.dwell_s * 1000;
  if (dwell <= 0) return Infinity;
  const elapsed = Math.max(0, now - startedAt(p));
  return dwell - (elapsed % dwell);
}

/** What a tile shows at a moment, and why. */
export interface Shown {
  source: Source | null;
  by: 'alert' | 'tile-patrol' | 'wall-patrol' | 'source' | 'empty';
  /** patrol position, 1-based, and length, when a patrol chose it */
  step?: number;
  steps?: number;
}

/**
 * shownAt resolves what tile index of wall shows at now. An alert's pin
 * comes first (the alert area must show the alert), then the tile's own
 * patrol, then the wall's patrol, which pages through its cameras a wall's
 * worth at a time, then the tile's source.
 */
export function shownAt(wall: Wall, index: number, now: number): Shown {
  const tile: Tile | undefined = wall.tiles[index];
  if (tile?.alert_id && tile.source) return { source: tile.source, by: 'alert' };
  if (tile?.patrol && tile.patrol.camera_ids.length > 0) {
    const ids = tile.patrol.camera_ids;
    const step = patrolStep(tile.patrol, ids.length, now);
    return { source: { kind: 'camera', id: ids[step] }, by: 'tile-patrol', step: step + 1, steps: ids.length };
  }
  if (wall.patrol && wall.patrol.camera_ids.length > 0) {
    const ids = wall.patrol.camera_ids;
    const n = wall.tiles.length;
    const pages = Math.ceil(ids.length / n);
    const page = patrolStep(wall.patrol, pages, now);
    const id = ids[page * n + index];
    return id
      ? { source: { kind: 'camera', id }, by: 'wall-patrol', step: page + 1, steps: pages }
      : { source: null, by: 'empty', step: page + 1, steps: pages };
  }
  if (tile?.source) return { source: tile.source, by: 'source' };
  return { source: null, by: 'empty' };
}

/** msToNextChange is when any patrol on the wall next switches (Infinity: none). */
export function msToNextChange(wall: Wall, now: number): number {
  let next = Infinity;
  if (wall.patrol && wall.patrol.camera_ids.length > 0) next = msToNextStep(wall.patrol, now);
  for (const t of wall.tiles) {
    if (t.patrol && t.patrol.camera_ids.length > 0 && !t.alert_id) next = Math.min(next, msToNextStep(t.patrol, now));
  }
  return next;
}

/** sourceKey names a source for keyed rendering and comparisons. */
export function sourceKey(s: Source | null | undefined): string {
  if (!s) return '';
  return s.kind === 'participant' ? `participant:${s.room_id ?? ''}:${s.id}` : `camera:${s.id}`;
}

/** The data of a wall event: a wall, or a deleted wall's id. */
export type WallEventData = Wall | { id: string; deleted: true };

/**
 * applyWallEvent folds a wall event into the walls known by id. An event
 * older than what is held (a lower version, as a replay after a reconnect
 * can bring) changes nothing. It returns whether anything changed.
 */
export function applyWallEvent(walls: Map<string, Wall>, data: WallEventData): boolean {
  if ('deleted' in data && data.deleted) {
    return walls.delete(data.id);
  }
  const w = data as Wall;
  const held = walls.get(w.id);
  if (held && held.version >= w.version) return false;
  walls.set(w.id, w);
  return true;
}

/** dropPayload is what a camera being dragged carries (DataTransfer type below). */
export const dragType = 'application/x-lookout-source';

/** startDrag puts a source on a drag, for a tile to take (parseDrop). */
export function startDrag(ev: DragEvent, source: Source) {
  if (!ev.dataTransfer) return;
  ev.dataTransfer.setData(dragType, JSON.stringify(source));
  ev.dataTransfer.setData('text/plain', source.id);
  ev.dataTransfer.effectAllowed = 'copy';
}

/** parseDrop reads a dragged source, or null when it is not one. */
export function parseDrop(raw: string): Source | null {
  try {
    const v = JSON.parse(raw);
    if (!v || (v.kind !== 'camera' && v.kind !== 'participant') || typeof v.id !== 'string' || v.id === '') return null;
    if (v.kind === 'participant' && (typeof v.room_id !== 'string' || v.room_id === '')) return null;
    return v.kind === 'participant' ? { kind: 'participant', id: v.id, room_id: v.room_id } : { kind: 'camera', id: v.id };
  } catch {
    return null;
  }
}
