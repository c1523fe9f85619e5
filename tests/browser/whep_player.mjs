// Opens Lookout's player page in headless Chromium (Debian's, never a
// downloaded one), waits for the camera's video, checks that its frames
// advance, takes a screenshot, then leaves the page (which hangs the WHEP
// session up). Prints one JSON line and exits 0 when the video played, 1
// when not.
//
// Environment:
//   LOOKOUT_PLAYER_URL  the page, e.g. http://127.0.0.1:8080/player/#camera=cam-1&token=...
//   LOOKOUT_WANT_SIZE   the video size to wait for, e.g. 640x360
//   LOOKOUT_SCREENSHOT  where to write the PNG (default: a temporary file)
//   LOOKOUT_CHROMIUM    the browser (default /usr/bin/chromium)
//   LOOKOUT_TIMEOUT_MS  the whole run's bound (default 30000)

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { chromiumArgs } from './chromium.mjs';

const url = process.env.LOOKOUT_PLAYER_URL;
const [wantW, wantH] = (process.env.LOOKOUT_WANT_SIZE || '640x360').split('x').map(Number);
const shot = process.env.LOOKOUT_SCREENSHOT || join(mkdtempSync(join(tmpdir(), 'lookout-player-')), 'player.png');
const executablePath = process.env.LOOKOUT_CHROMIUM || '/usr/bin/chromium';
const timeoutMs = Number(process.env.LOOKOUT_TIMEOUT_MS || 30000);
const started = Date.now();
const left = () => Math.max(1000, timeoutMs - (Date.now() - started));

const args = chromiumArgs();

const result = { ok: false, screenshot: '', console: [] };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let browser;
let page;
// A hard stop, should the browser hang where no timeout reaches.
const watchdog = setTimeout(() => {
  result.error = `no result within ${timeoutMs} ms`;
  console.log(JSON.stringify(result));
  process.exit(1);
}, timeoutMs + 5000);

try {
  if (!url) throw new Error('LOOKOUT_PLAYER_URL is not set');
  browser = await chromium.launch({ executablePath, args, timeout: left() });
  page = await browser.newPage({ viewport: { width: 1040, height: 760 } });
  page.on('console', (m) => result.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.console.push(`pageerror: ${e.message}`));
  await page.goto(url, { timeout: left() });

  // The page's own state first: a refusal is reported with its reason.
  await page.waitForFunction(() => ['playing', 'failed'].includes(document.body.dataset.state), null, { timeout: left(), polling: 50 });
  const state = () => page.evaluate(() => ({
    state: document.body.dataset.state,
    status: document.getElementById('status').innerText,
    page_error: document.getElementById('error').innerText,
  }));
  Object.assign(result, await state());
  if (result.state !== 'playing') throw new Error(`the page says ${result.status}: ${result.page_error}`);

  await page.waitForFunction(([w, h]) => {
    const v = document.getElementById('video');
    return v.videoWidth === w && v.videoHeight === h;
  }, [wantW, wantH], { timeout: left(), polling: 50 });
  const sample = () => page.evaluate(() => {
    const v = document.getElementById('video');
    const q = v.getVideoPlaybackQuality();
    return { frames: q.totalVideoFrames, dropped: q.droppedVideoFrames, time: v.currentTime, paused: v.paused, width: v.videoWidth, height: v.videoHeight };
  });
  // Frames presented on the page, as requestVideoFrameCallback sees them.
  await page.evaluate(() => {
    const v = document.getElementById('video');
    window.presented = 0;
    const count = () => { window.presented++; v.requestVideoFrameCallback(count); };
    v.requestVideoFrameCallback(count);
  });
  const a = await sample();
  await sleep(Math.min(2000, left() - 500));
  const b = await sample();
  result.presented = await page.evaluate(() => window.presented);
  Object.assign(result, {
    first_frame_ms: Number(await page.evaluate(() => document.body.dataset.firstFrameMs)),
    width: b.width,
    height: b.height,
    frames: b.frames,
    frames_advanced: b.frames - a.frames,
    dropped: b.dropped,
    dropped_advanced: b.dropped - a.dropped,
    current_time_advanced: Math.round((b.time - a.time) * 1000) / 1000,
    paused: b.paused,
  });
  await page.screenshot({ path: shot, timeout: left() });
  result.screenshot = shot;
  Object.assign(result, await state());

  // Leaving the page fires pagehide: the page hangs its session up.
  await page.goto('about:blank', { timeout: left() });
  await sleep(300);
  result.ok = result.width === wantW && result.height === wantH && result.frames_advanced > 0 && result.presented > 0 && !result.paused;
  if (!result.ok) result.error = 'the video did not play on';
} catch (err) {
  result.error = String(err && err.message ? err.message : err).split('\n')[0];
  if (page && !result.screenshot) {
    // What the page showed when it went wrong.
    await page.screenshot({ path: shot, timeout: 3000 }).then(() => { result.screenshot = shot; }, () => {});
  }
} finally {
  if (browser) await browser.close().catch(() => {});
  clearTimeout(watchdog);
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
