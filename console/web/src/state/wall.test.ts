import { describe, expect, it } from 'vitest';
import type { Wall } from '../api/types';
import { applyWallEvent, geometry, layouts, msToNextChange, parseDrop, patrolStep, shownAt, streamFor, tileCount } from './wall';

function wall(over: Partial<Wall> = {}): Wall {
  return { id: 'w', org_id: 'o', name: 'W', layout: '4', tiles: [{}, {}, {}, {}], version: 1, ...over };
}

describe('geometry', () => {
  it.each(layouts)('places every tile of layout %s once, inside the grid, without overlap', (layout) => {
    const g = geometry(layout);
    expect(g.cells).toHaveLength(tileCount(layout));
    const taken = new Set<string>();
    for (const c of g.cells) {
      for (let r = c.row; r < c.row + c.rowSpan; r++) {
        for (let k = c.col; k < c.col + c.colSpan; k++) {
          expect(r).toBeLessThanOrEqual(g.rows);
          expect(k).toBeLessThanOrEqual(g.cols);
          const key = `${r},${k}`;
          expect(taken.has(key)).toBe(false);
          taken.add(key);
        }
      }
    }
    expect(taken.size).toBe(g.rows * g.cols);
  });

  it('gives 1+5 one large tile and five small ones', () => {
    const g = geometry('1+5');
    expect(g.cells[0]).toEqual({ row: 1, col: 1, rowSpan: 2, colSpan: 2 });
    expect(g.cells.slice(1).every((c) => c.rowSpan === 1 && c.colSpan === 1)).toBe(true);
  });
});

describe('streamFor', () => {
  it.each([
    ['1', 0, 'main'],
    ['4', 3, 'main'],
    ['9', 0, 'sub'],
    ['16', 15, 'sub'],
    ['1+5', 0, 'main'],
    ['1+5', 1, 'sub'],
    ['1+5', 5, 'sub'],
  ] as const)('layout %s tile %d plays the %s stream', (layout, i, want) => {
    expect(streamFor(layout, i)).toBe(want);
  });
});

describe('patrols', () => {
  const start = Date.parse('2026-11-30T00:00:00Z');
  const patrol = { camera_ids: ['a', 'b', 'c'], dwell_s: 10, started_at: new Date(start).toISOString() };

  it.each([
    [0, 0],
    [9_999, 0],
    [10_000, 1],
    [29_999, 2],
    [30_000, 0],
    [-5_000, 0], // a screen whose clock is behind shows the first
  ])('at +%d ms shows step %d', (dt, want) => {
    expect(patrolStep(patrol, 3, start + dt)).toBe(want);
  });

  it('cycles a tile through its group, and says where it is', () => {
    const w = wall({ tiles: [{ patrol }, {}, {}, {}] });
    expect(shownAt(w, 0, start + 12_000)).toEqual({ source: { kind: 'camera', id: 'b' }, by: 'tile-patrol', step: 2, steps: 3 });
  });

  it('pages the whole wall through its group a wall at a time', () => {
    const ids = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'];
    const w = wall({ patrol: { camera_ids: ids, dwell_s: 5, started_at: patrol.started_at } });
    expect([0, 1, 2, 3].map((i) => shownAt(w, i, start).source?.id)).toEqual(['c1', 'c2', 'c3', 'c4']);
    const second = [0, 1, 2, 3].map((i) => shownAt(w, i, start + 5_000));
    expect(second.map((s) => s.source?.id ?? null)).toEqual(['c5', 'c6', null, null]);
    expect(second[3].by).toBe('empty');
  });

  it('lets an alert pin win over every patrol', () => {
    const w = wall({
      patrol: { camera_ids: ['x', 'y'], dwell_s: 5 },
      tiles: [{ source: { kind: 'camera', id: 'dam' }, alert_id: 'alr_1', patrol }, {}, {}, {}],
    });
    expect(shownAt(w, 0, start)).toEqual({ source: { kind: 'camera', id: 'dam' }, by: 'alert' });
  });

  it('wakes at the next switch of any patrol, and never without one', () => {
    expect(msToNextChange(wall(), start)).toBe(Infinity);
    const w = wall({ tiles: [{ patrol }, { patrol: { ...patrol, dwell_s: 7 } }, {}, {}] });
    expect(msToNextChange(w, start + 3_000)).toBe(4_000);
  });
});

describe('applyWallEvent', () => {
  it('takes newer versions, ignores replays of older ones, and deletes', () => {
    const m = new Map<string, Wall>();
    expect(applyWallEvent(m, wall({ version: 2, name: 'two' }))).toBe(true);
    expect(applyWallEvent(m, wall({ version: 1, name: 'one' }))).toBe(false);
    expect(m.get('w')?.name).toBe('two');
    expect(applyWallEvent(m, wall({ version: 3, layout: '9' }))).toBe(true);
    expect(m.get('w')?.layout).toBe('9');
    expect(applyWallEvent(m, { id: 'w', deleted: true })).toBe(true);
    expect(m.size).toBe(0);
  });
});

describe('parseDrop', () => {
  it.each([
    ['{"kind":"camera","id":"cam-1"}', { kind: 'camera', id: 'cam-1' }],
    ['{"kind":"participant","id":"p","room_id":"r"}', { kind: 'participant', id: 'p', room_id: 'r' }],
    ['{"kind":"participant","id":"p"}', null],
    ['{"kind":"camera","id":""}', null],
    ['{"kind":"file","id":"x"}', null],
    ['not json', null],
    ['', null],
  ])('%s', (raw, want) => {
    expect(parseDrop(raw)).toEqual(want);
  });
});
