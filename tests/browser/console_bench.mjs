// Measures the console in headless Chromium for lookout-bench console:
// the first contentful paint of the console over a fresh connection, a
// 16-tile wall on the cameras' sub streams (each tile's decoded frames per
// second, dropped frames, frames waiting to decode and the jitter buffer's
// delay, at the start and the end of the window: frames piling up show as
// the last two growing), and switching a tile to another camera (the
// operator's request to the new camera's first frame). Prints one JSON
// line.
//
// Environment: LOOKOUT_BASE, LOOKOUT_USER, LOOKOUT_PASSWORD, LOOKOUT_WALL (a
// 16-tile wall), LOOKOUT_SWITCH_CAMERAS (comma-separated ids to switch tile 0
// through), LOOKOUT_LOADS (first-paint runs), LOOKOUT_DURATION_S,
// LOOKOUT_SWITCHES, LOOKOUT_SWITCH_LAYOUT (the wall's layout for the switches,
// default 16), LOOKOUT_CHROMIUM, LOOKOUT_SHOT (a screenshot of the wall).

import { chromium } from 'playwright-core';
import { chromiumArgs } from './chromium.mjs';

const env = (k, d) => process.env[k] ?? d;
const base = env('LOOKOUT_BASE');
const args = chromiumArgs({ media: false });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const out = { ok: false, fcp_ms: [], tiles: [], switches_ms: [], switch_first_frame_ms: [] };
const watchdog = setTimeout(() => {
  out.error = 'no result in time';
  console.log(JSON.stringify(out));
  process.exit(1);
}, 30 * 60 * 1000);

let browser;
try {
  browser = await chromium.launch({ executablePath: env('LOOKOUT_CHROMIUM', '/usr/bin/chromium'), args });

  // First contentful paint: a fresh context each time (no cache, new
  // connections), the console's first page.
  for (let i = 0; i < Number(env('LOOKOUT_LOADS', 10)); i++) {
    const ctx = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
    const p = await ctx.newPage();
    await p.goto(`${base}/login`);
    const fcp = await p.waitForFunction(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime, null, { timeout: 10000 }).then((h) => h.jsonValue());
    out.fcp_ms.push(Math.round(fcp));
    await ctx.close();
  }

  const ctx = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(30000);
  await page.goto(`${base}/login`);
  await page.fill('#u', env('LOOKOUT_USER'));
  await page.fill('#p', env('LOOKOUT_PASSWORD'));
  await page.click('button[type=submit]');
  await page.waitForURL(/\/wall/);
  // The big-screen view: the wall alone, full window.
  await page.goto(`${base}/screen/${env('LOOKOUT_WALL')}`);
  await page.waitForFunction(() => document.querySelectorAll('.tile[data-state="live"]').length === 16, null, { timeout: 60000, polling: 200 });
  await sleep(5000); // settled

  const read = () => page.evaluate(() => [...document.querySelectorAll('.cell')].map((c) => {
    const t = c.querySelector('.tile');
    const v = c.querySelector('video');
    return {
      camera: t.dataset.camera,
      state: t.dataset.state,
      frames: Number(t.dataset.frames),
      dropped: Number(t.dataset.dropped),
      backlog: Number(t.dataset.backlog),
      buffer_ms: t.dataset.bufferMs === '' ? null : Number(t.dataset.bufferMs),
      width: v.videoWidth,
      height: v.videoHeight,
    };
  }));
  const a = await read();
  const t0 = Date.now();
  await sleep(Number(env('LOOKOUT_DURATION_S', 30)) * 1000);
  const b = await read();
  const secs = (Date.now() - t0) / 1000;
  out.window_s = secs;
  out.tiles = b.map((e, i) => ({
    camera: e.camera,
    state: e.state,
    size: `${e.width}x${e.height}`,
    fps: Math.round(((e.frames - a[i].frames) / secs) * 10) / 10,
    dropped: e.dropped - a[i].dropped,
    backlog_start: a[i].backlog,
    backlog_end: e.backlog,
    buffer_ms_start: a[i].buffer_ms,
    buffer_ms_end: e.buffer_ms,
  }));
  if (env('LOOKOUT_SHOT')) await page.screenshot({ path: env('LOOKOUT_SHOT') });

  // How busy the page is with 16 tiles playing: a request to the server
  // that answers at once, and a zero timeout, as the page sees them.
  out.page_lag = await page.evaluate(async () => {
    const fetches = [];
    const timers = [];
    for (let i = 0; i < 20; i++) {
      let t = performance.now();
      await fetch('/healthz', { cache: 'no-store' });
      fetches.push(performance.now() - t);
      t = performance.now();
      await new Promise((r) => setTimeout(r, 0));
      timers.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 50));
    }
    const p50 = (a) => Math.round(a.sort((x, y) => x - y)[a.length >> 1]);
    return { fetch_p50_ms: p50(fetches), fetch_max_ms: Math.round(Math.max(...fetches)), timer_p50_ms: p50(timers), timer_max_ms: Math.round(Math.max(...timers)) };
  });

  // Switching: tile 0 to each camera in turn, through the walls API as the
  // operator's console does, timed to the new camera's first frame.
  await page.evaluate(() => {
    window.__long = [];
    new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push(Math.round(e.duration)); }).observe({ type: 'longtask', buffered: false });
  });
  if (env('LOOKOUT_TRACE')) {
    await browser.startTracing(page, { path: env('LOOKOUT_TRACE'), categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline'] });
  }
  let cdp;
  if (env('LOOKOUT_PROFILE')) {
    cdp = await ctx.newCDPSession(page);
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
    await cdp.send('Profiler.start');
  }
  const cams = env('LOOKOUT_SWITCH_CAMERAS', '').split(',').filter(Boolean);
  const wall = env('LOOKOUT_WALL');
  const layout = env('LOOKOUT_SWITCH_LAYOUT', '16');
  if (layout !== '16') {
    // Switch on a wall of fewer tiles: its tile 0 is larger and plays the
    // main stream (layout 1, 4, 1+5).
    await page.evaluate(async ({ wall, layout }) => {
      const token = JSON.parse(localStorage.getItem('lookout.session')).token;
      await fetch(`/api/v1/walls/${wall}`, { method: 'PATCH', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ layout }) });
    }, { wall, layout });
    await page.waitForFunction((layout) => document.querySelector(`[data-test=wall][data-layout="${layout}"]`) && [...document.querySelectorAll('.tile')].every((t) => t.dataset.state === 'live'), layout, { timeout: 30000 });
    await sleep(3000);
  }
  out.switch_layout = layout;
  for (let i = 0; i < Number(env('LOOKOUT_SWITCHES', 20)) && cams.length > 0; i++) {
    const cam = cams[i % cams.length];
    const r = await page.evaluate(async ({ wall, cam }) => {
      const token = JSON.parse(localStorage.getItem('lookout.session')).token;
      const start = performance.now();
      const resp = await fetch(`/api/v1/walls/${wall}/tiles/0`, {
        method: 'PUT',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ source: { kind: 'camera', id: cam } }),
      });
      if (!resp.ok) return { error: `HTTP ${resp.status}` };
      for (;;) {
        const t = document.querySelector('.cell[data-index="0"] .tile');
        if (t && t.dataset.camera === cam && t.dataset.state === 'live') {
          // When the new camera's first frame was shown (the tile notes
          // the frame's presentation time), not when this busy page got
          // round to seeing it.
          const shown = Number(t.dataset.switchShownAt);
          const seen = performance.now();
          return { ms: (shown > start ? shown : seen) - start, seen_ms: seen - start, first_frame_ms: Number(t.dataset.switchMs), api_ms: Number(t.dataset.switchApiMs) };
        }
        if (performance.now() - start > 10000) return { error: 'no picture within 10 s' };
        await new Promise((r) => requestAnimationFrame(r));
      }
    }, { wall, cam });
    if (r.error) throw new Error(`switch to ${cam}: ${r.error}`);
    out.switches_ms.push(Math.round(r.ms));
    out.switch_first_frame_ms.push(r.first_frame_ms);
    (out.switch_api_ms ??= []).push(r.api_ms);
    (out.switch_seen_ms ??= []).push(Math.round(r.seen_ms));
    await sleep(700 + ((i * 397) % 1300)); // land at different points of the group of pictures
  }
  // The switch calls as the browser's network stack timed them.
  out.switch_resource = await page.evaluate(() => performance.getEntriesByType('resource')
    .filter((e) => e.name.endsWith('/camera'))
    .map((e) => ({ queued: Math.round(e.requestStart - e.startTime), server: Math.round(e.responseStart - e.requestStart), total: Math.round(e.responseEnd - e.startTime) })));
  out.long_tasks_during_switches_ms = await page.evaluate(() => window.__long);
  if (env('LOOKOUT_TRACE')) await browser.stopTracing();
  if (cdp) {
    const { profile } = await cdp.send('Profiler.stop');
    const self = new Map();
    const dt = new Map();
    profile.samples.forEach((id, i) => dt.set(id, (dt.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
    for (const n of profile.nodes) {
      const k = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber}`;
      self.set(k, (self.get(k) ?? 0) + (dt.get(n.id) ?? 0));
    }
    out.profile_top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([k, us]) => `${Math.round(us / 1000)} ms ${k}`);
  }
  out.ok = true;
} catch (err) {
  out.error = String(err && err.message ? err.message : err);
} finally {
  clearTimeout(watchdog);
  if (browser) await browser.close().catch(() => {});
  console.log(JSON.stringify(out));
  process.exit(out.ok ? 0 : 1);
}
