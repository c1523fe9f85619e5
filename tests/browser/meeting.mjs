// Two participants meet in headless Chromium (Debian's, never a downloaded
// one) through Lookout's meeting page: both join, each sees the other's
// video play, the active speaker follows whoever has the microphone open,
// screenshots are taken (A at desktop size, B at phone size), and when A's
// browser context goes away without a goodbye, B sees A leave. Prints one
// JSON line and exits 0 when every step passed, 1 when not.
//
// Environment:
//   LOOKOUT_MEET_URL_A      A's page, e.g. http://127.0.0.1:8080/meet/#room=r1&token=...
//   LOOKOUT_MEET_URL_B      B's page, with B's token
//   LOOKOUT_SCREENSHOT_DIR  where the PNGs go (default: a temporary directory)
//   LOOKOUT_CHROMIUM        the browser (default /usr/bin/chromium)
//   LOOKOUT_TIMEOUT_MS      the whole run's bound (default 45000)
//   LOOKOUT_FAKE_AUDIO      "beep" for Chromium's own fake microphone (a short
//                           beep a second); by default a speech-like WAV
//                           written by this script, which noise suppression
//                           does not take for noise
//   LOOKOUT_MEET_MEDIA_MS   if set, only the joining and the video both ways,
//                           then this many ms more of it, and each side's
//                           sending statistics (sendStats); the rest is skipped
//   LOOKOUT_MEET_BEHIND_NAT "1": the pages signal none of their own ICE
//                           candidates, as browsers behind a NAT whose
//                           addresses the server learns from their checks
//                           only (through whatever stands in front of it)

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { chromiumArgs } from './chromium.mjs';

const urlA = process.env.LOOKOUT_MEET_URL_A;
const urlB = process.env.LOOKOUT_MEET_URL_B;
const shotDir = process.env.LOOKOUT_SCREENSHOT_DIR || mkdtempSync(join(tmpdir(), 'lookout-meeting-'));
const executablePath = process.env.LOOKOUT_CHROMIUM || '/usr/bin/chromium';
const timeoutMs = Number(process.env.LOOKOUT_TIMEOUT_MS || 45000);
const started = Date.now();
const left = () => Math.max(1000, timeoutMs - (Date.now() - started));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// speechWAV is 5 s of 16-bit mono PCM at 48 kHz that sounds like speech to
// a level meter: syllables of 250 ms at changing pitch, with harmonics and
// an envelope, never quite silent. Chromium loops it.
function speechWAV() {
  const rate = 48000;
  const n = rate * 5;
  const pcm = Buffer.alloc(n * 2);
  const pitches = [180, 240, 300, 220, 260, 200, 320, 190];
  let phase = 0;
  for (let i = 0; i < n; i++) {
    const syl = Math.floor(i / (rate / 4));
    const pos = (i % (rate / 4)) / (rate / 4);
    const f = pitches[syl % pitches.length];
    phase += (2 * Math.PI * f) / rate;
    const env = 0.2 + 0.8 * Math.sin(Math.PI * pos) ** 2;
    const s = Math.sin(phase) + 0.5 * Math.sin(2 * phase) + 0.25 * Math.sin(3 * phase);
    pcm.writeInt16LE(Math.round(Math.max(-1, Math.min(1, 0.45 * env * s)) * 32767), i * 2);
  }
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + pcm.length, 4);
  h.write('WAVE', 8);
  h.write('fmt ', 12);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([h, pcm]);
}

const args = chromiumArgs({ background: true });
if (process.env.LOOKOUT_FAKE_AUDIO !== 'beep') {
  const wav = join(mkdtempSync(join(tmpdir(), 'lookout-meeting-audio-')), 'speech.wav');
  writeFileSync(wav, speechWAV());
  args.push(`--use-file-for-fake-audio-capture=${wav}`);
}

const result = { ok: false, error: '', steps: {}, a: {}, b: {}, screenshots: [], console: [], server_metrics: [] };
let browser;
const pages = {};
const step = (name, t0) => { result.steps[name] = Date.now() - t0; };
// A hard stop, should the browser hang where no timeout reaches.
const watchdog = setTimeout(() => {
  result.error = result.error || `no result within ${timeoutMs} ms`;
  console.log(JSON.stringify(result));
  process.exit(1);
}, timeoutMs + 5000);

// hideCandidates, run in a page before its scripts, drops the page's own
// ICE candidates from what it sends the server (LOOKOUT_MEET_BEHIND_NAT).
function hideCandidates() {
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    try {
      const m = JSON.parse(data);
      if (m.type === 'candidate' && m.candidate) return undefined;
      if ((m.type === 'offer' || m.type === 'answer') && m.sdp) {
        m.sdp = m.sdp.split('\r\n').filter((l) => !l.startsWith('a=candidate:')).join('\r\n');
        return send.call(this, JSON.stringify(m));
      }
    } catch (_) {
      // not JSON: as it is
    }
    return send.call(this, data);
  };
}

async function open(name, url, contextOpts) {
  const ctx = await browser.newContext(contextOpts);
  if (process.env.LOOKOUT_MEET_BEHIND_NAT === '1') await ctx.addInitScript(hideCandidates);
  await ctx.grantPermissions(['camera', 'microphone']).catch(() => {});
  const page = await ctx.newPage();
  page.on('console', (m) => {
    result.console.push(`${name} ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => result.console.push(`${name} pageerror: ${e.message}`));
  await page.goto(url, { timeout: left() });
  pages[name] = { ctx, page };
  return page;
}

// until polls fn in the page until it returns something truthy.
function until(page, fn, arg, what) {
  return page.waitForFunction(fn, arg, { timeout: left(), polling: 100 }).catch((err) => {
    throw new Error(`${what}: ${String(err.message || err).split('\n')[0]}`);
  });
}

async function state(page) {
  return page.evaluate(() => ({
    state: document.body.dataset.state,
    status: document.getElementById('conn-text').innerText,
    ended: document.getElementById('ended').hidden ? '' : document.getElementById('ended-text').innerText,
    self: window.lookoutMeet.self(),
    participants: window.lookoutMeet.participants(),
    speakers: window.lookoutMeet.speakers(),
    // The tiles the page marks as speaking, loudest first.
    speaking_tiles: [...document.querySelectorAll('.tile[data-speaking="true"]')]
      .sort((x, y) => Number(y.classList.contains('loudest')) - Number(x.classList.contains('loudest')))
      .map((e) => (e.dataset.self ? `self:${window.lookoutMeet.self()}` : e.dataset.identity)),
  }));
}

// videoPlays waits until viewer shows identity's video, then checks that
// its frames advance over about a second.
async function videoPlays(viewer, identity) {
  await until(viewer, (id) => {
    const s = window.lookoutMeet.videoStats(id);
    return s && s.width > 0 && s.frames > 0 && document.querySelector(`[data-identity="${id}"]`);
  }, identity, `the video of ${identity}`);
  const first = await viewer.evaluate((id) => window.lookoutMeet.videoStats(id), identity);
  await sleep(1000);
  const second = await viewer.evaluate((id) => window.lookoutMeet.videoStats(id), identity);
  return { width: second.width, height: second.height, frames: second.frames, frames_advanced: second.frames - first.frames, presented_advanced: second.presented - first.presented };
}

// videoResumes waits (up to 10 s) until viewer has shown 10 more frames
// of identity's video than now, as after a network change the video must
// go on once ICE has found its new path; then it checks a second of play
// as videoPlays does, and says how long the wait took.
async function videoResumes(viewer, identity) {
  const t0 = Date.now();
  const before = await viewer.evaluate((id) => window.lookoutMeet.videoStats(id), identity);
  await viewer.waitForFunction(([id, n]) => {
    const s = window.lookoutMeet.videoStats(id);
    return s && s.frames >= n;
  }, [identity, before.frames + 10], { timeout: Math.min(10000, left()), polling: 100 }).catch(async (err) => {
    const now = await viewer.evaluate((id) => window.lookoutMeet.videoStats(id), identity);
    throw new Error(`the video of ${identity} did not go on within 10 s (${JSON.stringify(before)} -> ${JSON.stringify(now)}): ${String(err.message || err).split('\n')[0]}`);
  });
  const resumedMs = Date.now() - t0;
  return { ...(await videoPlays(viewer, identity)), resumed_ms: resumedMs };
}

// speakerIs waits until each page's speakers list starts with identity,
// and the muted one is not in it.
async function speakerIs(pageList, identity, muted, what) {
  await Promise.all(pageList.map((p) => until(p, ([id, quiet]) => {
    const s = window.lookoutMeet.speakers();
    return s.length > 0 && s[0].identity === id && !s.some((x) => x.identity === quiet);
  }, [identity, muted], what)));
}

// restOfMeeting is the run past the video both ways: the active speaker,
// the screenshots, A's ICE restart, A leaving without a goodbye.
async function restOfMeeting(a, b, idA, idB) {
  // The active speaker: B speaks while A is muted, then the other way.
  let t0 = Date.now();
  await a.evaluate(() => window.lookoutMeet.setMicEnabled(false));
  await b.evaluate(() => window.lookoutMeet.setMicEnabled(true));
  await speakerIs([a, b], idB, idA, 'B as the first speaker, A muted');
  step('speaker_b_ms', t0);
  result.a.speakers_b = await a.evaluate(() => window.lookoutMeet.speakers());
  t0 = Date.now();
  await b.evaluate(() => window.lookoutMeet.setMicEnabled(false));
  await a.evaluate(() => window.lookoutMeet.setMicEnabled(true));
  await speakerIs([a, b], idA, idB, 'A as the first speaker, B muted');
  step('speaker_a_ms', t0);
  result.b.speakers_a = await b.evaluate(() => window.lookoutMeet.speakers());

  // Screenshots: A at desktop size, B at phone size.
  t0 = Date.now();
  for (const [name, page] of [['a-desktop', a], ['b-phone', b]]) {
    const path = join(shotDir, `meeting-${name}.png`);
    await page.screenshot({ path, timeout: left() });
    result.screenshots.push(path);
  }
  step('screenshots_ms', t0);
  Object.assign(result.a, await state(a));
  Object.assign(result.b, await state(b));
  // The layer each receives by now (the server starts low and raises it).
  result.a.video_of_b_end = await a.evaluate((id) => window.lookoutMeet.videoStats(id), idB);
  result.b.video_of_a_end = await b.evaluate((id) => window.lookoutMeet.videoStats(id), idA);

  // A's network changes: it restarts ICE on both its connections (its
  // publisher by a new offer, its subscriber by asking the server for one),
  // and the video goes on both ways.
  t0 = Date.now();
  const ufragsBefore = await a.evaluate(() => window.lookoutMeet.iceUfrags());
  await a.evaluate(() => window.lookoutMeet.restartIce());
  await until(a, (was) => {
    const now = window.lookoutMeet.iceUfrags();
    return now.publisher && now.subscriber && now.publisher !== was.publisher && now.subscriber !== was.subscriber;
  }, ufragsBefore, 'new ICE credentials on both of A\'s connections');
  result.a.ice_ufrags = { before: ufragsBefore, after: await a.evaluate(() => window.lookoutMeet.iceUfrags()) };
  const [afterA, afterB] = await Promise.all([videoResumes(a, idB), videoResumes(b, idA)]);
  result.a.video_of_b_after_restart = afterA;
  result.b.video_of_a_after_restart = afterB;
  // How long each direction's video paused while ICE found its new path.
  result.steps.ice_restart_resume_a_ms = afterA.resumed_ms;
  result.steps.ice_restart_resume_b_ms = afterB.resumed_ms;
  for (const [who, v] of [['A shows B after its ICE restart', afterA], ['B shows A after its ICE restart', afterB]]) {
    if (!(v.frames_advanced > 0)) throw new Error(`${who}: ${JSON.stringify(v)}`);
  }
  step('ice_restart_ms', t0);

  // A goes away without a goodbye: its renderer dies (the page's pagehide,
  // which says goodbye, never runs), then its context closes. B sees A leave.
  t0 = Date.now();
  const cdp = await pages.a.ctx.newCDPSession(a);
  const crashed = new Promise((resolve) => a.once('crash', () => resolve(true)));
  cdp.send('Page.crash').catch(() => {}); // never answered: the page is gone
  result.a.crashed = await Promise.race([crashed, sleep(3000).then(() => false)]);
  await pages.a.ctx.close();
  delete pages.a;
  await b.waitForFunction((id) => !window.lookoutMeet.participants().includes(id) && !document.querySelector(`[data-identity="${id}"]`),
    idA, { timeout: Math.min(25000, left()), polling: 100 }).catch(() => {
    throw new Error('B did not see A leave within 25 s');
  });
  step('leave_seen_ms', t0);
  result.b.departed = await b.evaluate(() => window.lookoutMeet.departed());
  result.b.state_after = await b.evaluate(() => document.body.dataset.state);
  const leftShot = join(shotDir, 'meeting-b-alone.png');
  await b.screenshot({ path: leftShot, timeout: left() });
  result.screenshots.push(leftShot);

  const errors = result.console.filter((l) => / (error|pageerror):/.test(l));
  if (errors.length) throw new Error(`the pages logged errors: ${errors.join(' | ')}`);
  if (result.b.state_after !== 'joined') throw new Error(`B is ${result.b.state_after} after A left`);
  const why = (result.b.departed.find((d) => d.identity === idA) || {}).reason;
  if (why !== 'disconnected' && why !== 'timeout') throw new Error(`B saw A leave with reason ${why}, not disconnected`);
}

try {
  if (!urlA || !urlB) throw new Error('LOOKOUT_MEET_URL_A and LOOKOUT_MEET_URL_B must be set');
  browser = await chromium.launch({ executablePath, args, timeout: left() });

  let t0 = Date.now();
  const [a, b] = await Promise.all([
    open('a', urlA, { viewport: { width: 1280, height: 720 } }),
    open('b', urlB, { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }),
  ]);
  step('open_ms', t0);

  // The pre-join panel: camera and microphone found, then Join.
  t0 = Date.now();
  await Promise.all([a, b].map((p) => until(p, () => document.body.dataset.media === 'ready', null, 'the camera and microphone check')));
  result.b.prejoin_note = await b.evaluate(() => document.getElementById('media-note').innerText);
  const prejoinShot = join(shotDir, 'meeting-b-prejoin.png');
  await b.screenshot({ path: prejoinShot, timeout: left() });
  result.screenshots.push(prejoinShot);
  await Promise.all([a, b].map((p) => p.click('#join', { timeout: left() })));
  await Promise.all([a, b].map((p) => until(p, () => ['joined', 'failed', 'left'].includes(document.body.dataset.state), null, 'joining')));
  result.a = await state(a);
  result.b = { ...result.b, ...(await state(b)) };
  if (result.a.state !== 'joined' || result.b.state !== 'joined') {
    throw new Error(`joining: A ${result.a.state} (${result.a.status} ${result.a.ended}), B ${result.b.state} (${result.b.status} ${result.b.ended})`);
  }
  const idA = result.a.self;
  const idB = result.b.self;
  step('joined_ms', t0);

  // Each sees the other, and the other's video plays.
  t0 = Date.now();
  await until(a, (id) => window.lookoutMeet.participants().includes(id), idB, 'A sees B');
  await until(b, (id) => window.lookoutMeet.participants().includes(id), idA, 'B sees A');
  const [seenByA, seenByB] = await Promise.all([videoPlays(a, idB), videoPlays(b, idA)]);
  result.a.video_of_b = seenByA;
  result.b.video_of_a = seenByB;
  step('video_ms', t0);
  for (const [who, v] of [['A shows B', seenByA], ['B shows A', seenByB]]) {
    if (!(v.width > 0 && v.frames_advanced > 0)) throw new Error(`${who}: ${JSON.stringify(v)}`);
  }
  const mediaMs = Number(process.env.LOOKOUT_MEET_MEDIA_MS || 0);
  if (mediaMs > 0) {
    const framesBefore = await Promise.all([a.evaluate((id) => window.lookoutMeet.videoStats(id), idB), b.evaluate((id) => window.lookoutMeet.videoStats(id), idA)]);
    await sleep(mediaMs);
    result.a.send_stats = await a.evaluate(() => window.lookoutMeet.sendStats());
    result.b.send_stats = await b.evaluate(() => window.lookoutMeet.sendStats());
    const framesAfter = await Promise.all([a.evaluate((id) => window.lookoutMeet.videoStats(id), idB), b.evaluate((id) => window.lookoutMeet.videoStats(id), idA)]);
    result.a.frames_of_b = framesAfter[0].frames - framesBefore[0].frames;
    result.b.frames_of_a = framesAfter[1].frames - framesBefore[1].frames;
  } else {
    await restOfMeeting(a, b, idA, idB);
  }
  result.ok = true;
} catch (err) {
  result.error = String(err && err.message ? err.message : err).split('\n')[0];
  // What the pages showed when it went wrong.
  for (const [name, { page }] of Object.entries(pages)) {
    const path = join(shotDir, `meeting-${name}-failed.png`);
    await page.screenshot({ path, timeout: 3000 }).then(() => result.screenshots.push(path), () => {});
    const s = await state(page).catch(() => null);
    if (s) result[name] = { ...result[name], final: s };
  }
  // How the video went and arrives on each side: the camera's layers and
  // packets as sent, and the other's video as received, now and two seconds later
  // (a stall that ends apart from one that does not).
  const other = { a: result.b.self, b: result.a.self };
  const recv = (page, name) => (other[name] ? page.evaluate((id) => window.lookoutMeet.recvStats(id), other[name]).catch((e) => String(e)) : null);
  for (const [name, { page }] of Object.entries(pages)) {
    result[name].final_layers = await page.evaluate(() => window.lookoutMeet.layerStats()).catch((e) => String(e));
    result[name].final_recv = await recv(page, name);
    result[name].final_send = await page.evaluate(() => window.lookoutMeet.sendStats()).catch((e) => String(e));
  }
  // The server's figures of the meeting (NACKs and keyframe requests
  // each way, layers, loss), while the participants are still in it.
  try {
    const text = await (await fetch(`${new URL(urlA).origin}/metrics`, { signal: AbortSignal.timeout(3000) })).text();
    result.server_metrics = text.split('\n').filter((l) => l.startsWith('lookout_meeting_'));
  } catch (e) {
    result.server_metrics = [String(e)];
  }
  await sleep(2000);
  for (const [name, { page }] of Object.entries(pages)) result[name].final_recv_2s = await recv(page, name);
} finally {
  if (browser) await browser.close().catch(() => {});
  clearTimeout(watchdog);
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
