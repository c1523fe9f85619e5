// A resident joins a remote petition hearing from a phone in headless
// Chromium (Debian's, never a downloaded one; fake camera and microphone),
// through the page of the hearing's link, /h/{token}, while the officer
// sits in the meeting page as the room's host: the notice with the
// camera's preview, the consent, the lobby, the officer's admission, the
// call with both videos' frames advancing; audio only while the server
// pauses the video, and back; a signaling drop and the page coming back
// by itself without the lobby; the refusals (another phone, a forged
// token, a link not open yet, a revoked link, the camera not allowed); a
// resident of another hearing turned away from its lobby;
// the end of the hearing. Screenshots of each screen go to LOOKOUT_SHOTS.
// Prints one JSON line (every step, whether it passed, how long it took;
// the figures measured from the pages' own performance marks) and exits 0
// when every step passed.
//
// Environment:
//   LOOKOUT_BASE         the server, e.g. http://127.0.0.1:8080
//   LOOKOUT_ADMIN_TOKEN  a console token that may admit, re-issue the link and end the hearing
//   LOOKOUT_HEARING      the hearing's id
//   LOOKOUT_LINK         the resident's link path, /h/{token}
//   LOOKOUT_LATER_LINK   the link of a hearing that starts later (not open yet)
//   LOOKOUT_REJECT_HEARING, LOOKOUT_REJECT_LINK   a third hearing, whose resident is turned away
//   LOOKOUT_SUBJECT, LOOKOUT_ORG_NAME, LOOKOUT_PETITIONER   what the notice shows
//   LOOKOUT_OFFICER_URL  the officer's meeting page, /meet/#room=..&token=.. (a host token)
//   LOOKOUT_SHOTS        the screenshots' directory
//   LOOKOUT_CHROMIUM     the browser (default /usr/bin/chromium)
//   LOOKOUT_TIMEOUT_MS   the whole run's bound (default 90000)

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { chromiumArgs } from './chromium.mjs';

const env = (k, d) => process.env[k] ?? d;
const base = env('LOOKOUT_BASE');
const admin = env('LOOKOUT_ADMIN_TOKEN');
const hearingId = env('LOOKOUT_HEARING');
const link = env('LOOKOUT_LINK');
const shots = env('LOOKOUT_SHOTS', '.');
const timeoutMs = Number(env('LOOKOUT_TIMEOUT_MS', 90000));
mkdirSync(shots, { recursive: true });

const args = chromiumArgs({ background: true });
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' };

const result = { ok: false, steps: [], figures: {}, screenshots: [], console: [] };
const watchdog = setTimeout(() => {
  result.error = `no result within ${timeoutMs} ms`;
  console.log(JSON.stringify(result));
  process.exit(1);
}, timeoutMs + 5000);

let failed = false;
let shotOnFail = [];
async function step(name, fn) {
  if (failed) {
    result.steps.push({ name, ok: false, skipped: true });
    return;
  }
  const t0 = Date.now();
  try {
    const detail = await fn();
    result.steps.push({ name, ok: true, ms: Date.now() - t0, detail });
  } catch (err) {
    failed = true;
    result.error = `${name}: ${String(err && err.message ? err.message : err).split('\n')[0]}`;
    result.steps.push({ name, ok: false, ms: Date.now() - t0, error: String(err && err.message ? err.message : err).slice(0, 2000) });
    for (const [who, p] of shotOnFail) {
      const path = join(shots, `hearing-failed-${who}.png`);
      await p.screenshot({ path, timeout: 3000 }).then(() => result.screenshots.push(path), () => {});
    }
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function api(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(data)}`);
  return data;
}

function watch(name, page) {
  page.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warning') return;
    result.console.push(`${name} ${m.type()}: ${m.text()}`.slice(0, 500));
  });
  page.on('pageerror', (e) => result.console.push(`${name} pageerror: ${e.message}`));
}

async function shot(page, name) {
  const path = join(shots, `hearing-${name}.png`);
  await page.screenshot({ path, timeout: 10000 });
  result.screenshots.push(path);
  return path;
}

// until polls fn in the page until it returns something truthy.
function until(page, fn, arg, what, timeout = 15000) {
  return page.waitForFunction(fn, arg, { timeout, polling: 50 }).then((h) => h.jsonValue()).catch((err) => {
    throw new Error(`${what}: ${String(err.message || err).split('\n')[0]}`);
  });
}

const H = (page) => ({
  step: () => page.evaluate(() => window.lookoutHearing.step()),
  text: () => page.evaluate(() => window.lookoutHearing.text()),
});

// framesAdvance waits, within a bound, for a second in which the page's
// video (got by stats) shows new frames (more than 5); it says how long it
// waited for one.
async function framesAdvance(page, stats, arg, what, within = 8000) {
  const t0 = Date.now();
  let a = await page.evaluate(stats, arg);
  const seen = [a];
  for (;;) {
    await sleep(1000);
    const b = await page.evaluate(stats, arg);
    seen.push(b);
    if (a && b && b.width > 0 && b.frames - a.frames > 5) {
      return { width: b.width, height: b.height, frames_per_s: b.frames - a.frames, waited_ms: Date.now() - t0 - 1000 };
    }
    if (Date.now() - t0 > within) throw new Error(`${what}: frames did not advance: ${JSON.stringify(seen)}`);
    a = b;
  }
}

// refused opens url in page and checks the refusal page: the code, its
// words, and nothing of the hearing.
async function refused(page, url, code, words, name) {
  await page.goto(url);
  await until(page, () => document.body.dataset.step === 'refused', null, `the refusal page for ${code}`);
  const got = await page.evaluate(() => ({ code: document.body.dataset.refusal, text: document.body.innerText }));
  if (got.code !== code) throw new Error(`refused with ${got.code}, want ${code}`);
  for (const w of words) if (!got.text.includes(w)) throw new Error(`the ${code} page does not say ${w}: ${got.text}`);
  for (const secret of [env('LOOKOUT_SUBJECT'), env('LOOKOUT_ORG_NAME'), env('LOOKOUT_PETITIONER')]) {
    if (secret && got.text.includes(secret)) throw new Error(`the ${code} page reveals ${secret}`);
  }
  await shot(page, name);
  return { code, text: got.text.replace(/\s+/g, ' ').slice(0, 200) };
}

let browser;
try {
  browser = await chromium.launch({ executablePath: env('LOOKOUT_CHROMIUM', '/usr/bin/chromium'), args, timeout: 30000 });

  // The officer, as the room's host, in the meeting page.
  const officerCtx = await browser.newContext({ viewport: { width: 1280, height: 720 }, locale: 'zh-CN' });
  await officerCtx.grantPermissions(['camera', 'microphone']).catch(() => {});
  const officer = await officerCtx.newPage();
  watch('officer', officer);
  shotOnFail.push(['officer', officer]);
  const residentCtx = await browser.newContext(PHONE);
  await residentCtx.grantPermissions(['camera', 'microphone']).catch(() => {});
  const resident = await residentCtx.newPage();
  watch('resident', resident);
  shotOnFail.push(['resident', resident]);
  const h = H(resident);

  await step('the officer joins the hearing room as host', async () => {
    await officer.goto(env('LOOKOUT_OFFICER_URL'));
    await until(officer, () => document.body.dataset.media === 'ready', null, 'the officer\'s camera check');
    await officer.click('#join');
    await until(officer, () => document.body.dataset.state === 'joined', null, 'the officer joined');
    return { self: await officer.evaluate(() => window.lookoutMeet.self()) };
  });

  await step('the link opens the notice with the camera preview at once', async () => {
    await resident.goto(base + link);
    await until(resident, () => window.lookoutHearing.marks().preview !== undefined, null, 'the preview\'s first frame', 10000);
    const marks = await resident.evaluate(() => window.lookoutHearing.marks());
    result.figures.link_to_preview_ms = Math.round(marks.preview);
    result.figures.link_to_notice_ms = Math.round(marks.notice);
    const text = await h.text();
    for (const w of ['您被邀请参加远程听证', env('LOOKOUT_SUBJECT'), env('LOOKOUT_ORG_NAME'), env('LOOKOUT_PETITIONER'), '摄像头和麦克风正常']) {
      if (w && !text.includes(w)) throw new Error(`the notice lacks ${w}: ${text}`);
    }
    const preview = await resident.evaluate(() => window.lookoutHearing.preview());
    if (!(preview.width > 0)) throw new Error(`preview ${JSON.stringify(preview)}`);
    // The microphone's meter moves (Chromium's fake microphone beeps).
    await until(resident, () => Number(document.querySelector('#check .meter').getAttribute('aria-valuenow')) > 5, null, 'the microphone level', 5000);
    if (await resident.isDisabled('#next')) throw new Error('下一步 is disabled with camera and microphone working');
    // Every control a phone's finger hits is 48 px at least.
    const small = await resident.evaluate(() => [...document.querySelectorAll('button')].filter((b) => b.offsetParent && b.getBoundingClientRect().height < 48).map((b) => b.id));
    if (small.length) throw new Error(`buttons under 48 px: ${small}`);
    await shot(resident, '1-notice');
    return { preview_ms: Math.round(marks.preview), notice_ms: Math.round(marks.notice), preview };
  });

  await step('the recording notice and consent; 不同意 explains the in-person hearing', async () => {
    await resident.tap('#next');
    await until(resident, () => document.body.dataset.step === 'consent', null, 'the consent');
    const text = await h.text();
    for (const w of ['本次听证将全程录音录像', '录像仅用于信访事项的办理和存档', '依法保存', '同意并进入', '不同意']) {
      if (!text.includes(w)) throw new Error(`the consent lacks ${w}`);
    }
    await shot(resident, '2-consent');
    await resident.tap('#disagree');
    await until(resident, () => document.body.dataset.step === 'declined', null, 'the declined page');
    if (!(await h.text()).includes('现场参加听证')) throw new Error('declining does not tell of the in-person hearing');
    await resident.tap('#back-to-consent');
    await until(resident, () => document.body.dataset.step === 'consent', null, 'back to the consent');
  });

  await step('同意并进入: the lobby, the preview still shown, the officer sees the resident waiting', async () => {
    await resident.evaluate(() => {
      window.__steps = [];
      new MutationObserver(() => window.__steps.push(document.body.dataset.step)).observe(document.body, { attributes: true, attributeFilter: ['data-step'] });
    });
    await resident.tap('#agree');
    await until(resident, () => window.lookoutHearing.state() === 'waiting', null, 'waiting in the lobby');
    if (!(await h.text()).includes('请稍候，经办人员将很快接入')) throw new Error('the lobby does not say to wait');
    const lobby = await resident.evaluate(() => document.getElementById('lobby-preview').videoWidth);
    if (!(lobby > 0)) throw new Error('no preview in the lobby');
    let hearing;
    for (let i = 0; i < 50; i++) {
      hearing = await api('GET', `/api/v1/hearings/${hearingId}`);
      if ((hearing.lobby || []).some((e) => e.identity === 'resident')) break;
      await sleep(100);
    }
    if (!(hearing.lobby || []).some((e) => e.identity === 'resident')) throw new Error(`the lobby: ${JSON.stringify(hearing.lobby)}`);
    if (!hearing.consent_at) throw new Error('no consent_at');
    // A while in the lobby: no join timeout, no reconnecting.
    await sleep(1500);
    if ((await resident.evaluate(() => window.lookoutHearing.state())) !== 'waiting') throw new Error('left the lobby by itself');
    await shot(resident, '3-lobby');
    return { lobby: hearing.lobby };
  });

  await step('without the camera allowed, plain instructions and a retry', async () => {
    const p = await residentCtx.newPage();
    watch('denied', p);
    await p.addInitScript(() => {
      navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
    });
    await p.goto(base + link);
    await until(p, () => window.lookoutHearing.media() === 'denied', null, 'the denied camera');
    const text = await p.evaluate(() => document.body.innerText);
    for (const w of ['没有获得使用摄像头和麦克风的许可', '允许', '重新检测', '在浏览器中打开']) if (!text.includes(w)) throw new Error(`the instructions lack ${w}`);
    if (!(await p.isVisible('#retry')) || !(await p.isDisabled('#next'))) throw new Error('no retry, or 下一步 enabled');
    if (!(await p.isVisible('#check-note')) || !(await p.evaluate(() => { const r = document.getElementById('check-note').getBoundingClientRect(); return r.top >= 0 && r.top < window.innerHeight; }))) {
      throw new Error('the instructions are not in view');
    }
    await shot(p, 'camera-denied');
    await p.close();
  });

  const other = await browser.newContext(PHONE);
  const otherPage = await other.newPage();
  watch('other', otherPage);

  await step('the link on a second phone: 请使用首次打开链接的手机', () =>
    refused(otherPage, base + link, 'link_other_device', ['请使用首次打开链接的手机', '联系经办人员'], 'refused-other-device'));

  await step('a forged token: 链接无效', () => {
    const token = link.slice(3);
    const forged = token.slice(0, -6) + (token.endsWith('AAAAAA') ? 'BBBBBB' : 'AAAAAA');
    return refused(otherPage, `${base}/h/${forged}`, 'link_invalid', ['链接无效', '重新发送链接'], 'refused-forged');
  });

  await step('a link not open yet says when to come back', () =>
    refused(otherPage, base + env('LOOKOUT_LATER_LINK'), 'link_not_yet_valid', ['听证将于', '开始，请在', '后再打开本链接'], 'refused-not-yet'));

  await step('turned away from the lobby: 未能进入听证, and no reconnecting', async () => {
    await otherPage.goto(base + env('LOOKOUT_REJECT_LINK'));
    await until(otherPage, () => document.body.dataset.step === 'check' && !document.getElementById('next').disabled, null, 'the second hearing\'s check');
    await otherPage.tap('#next');
    await otherPage.tap('#agree');
    await until(otherPage, () => window.lookoutHearing.state() === 'waiting', null, 'waiting in the second hearing\'s lobby');
    await api('POST', `/api/v1/hearings/${env('LOOKOUT_REJECT_HEARING')}/reject`);
    await until(otherPage, () => document.body.dataset.step === 'out', null, 'the page after the rejection');
    const got = await otherPage.evaluate(() => ({ reason: document.body.dataset.reason, text: document.body.innerText }));
    if (got.reason !== 'rejected' || !got.text.includes('未能进入听证')) throw new Error(`after the rejection: ${JSON.stringify(got)}`);
    await sleep(2500); // a reconnect would have come by now (backoff 1 s)
    const state = await otherPage.evaluate(() => ({ step: document.body.dataset.step, state: window.lookoutHearing.state() }));
    if (state.step !== 'out') throw new Error(`after the rejection the page went on: ${JSON.stringify(state)}`);
    const lobby = (await api('GET', `/api/v1/hearings/${env('LOOKOUT_REJECT_HEARING')}`)).lobby || [];
    if (lobby.length) throw new Error(`someone waits after the rejection: ${JSON.stringify(lobby)}`);
    await shot(otherPage, 'rejected');
    return { reason: got.reason };
  });

  let officerId = '';
  await step('admitted: two-way video with frames advancing', async () => {
    // The officer's page notes the first frame of the resident's video.
    await officer.evaluate(() => {
      window.__residentFrame = 0;
      const look = () => {
        const v = document.querySelector('[data-identity="resident"] video');
        if (v && v.srcObject && !v.__watched) {
          v.__watched = true;
          v.requestVideoFrameCallback(() => { window.__residentFrame = performance.timeOrigin + performance.now(); });
        }
        if (!window.__residentFrame) setTimeout(look, 5);
      };
      look();
    });
    const admitAt = Date.now();
    await api('POST', `/api/v1/hearings/${hearingId}/admit`);
    await until(resident, () => window.lookoutHearing.marks()['remote-video'] !== undefined, null, 'the officer\'s video on the phone');
    await until(officer, () => window.__residentFrame > 0, null, 'the resident\'s video at the officer');
    const [origin, marks, officerFrame] = [
      await resident.evaluate(() => window.lookoutHearing.origin()),
      await resident.evaluate(() => window.lookoutHearing.marks()),
      await officer.evaluate(() => window.__residentFrame),
    ];
    const admitted = origin + marks.admitted;
    const twoWay = Math.max(origin + marks['remote-video'], officerFrame);
    result.figures.admitted_to_two_way_video_ms = Math.round(twoWay - admitted);
    result.figures.admitted_to_officer_video_ms = Math.round(marks['remote-video'] - marks.admitted);
    for (const m of ['publisher-connected', 'subscriber-connected', 'remote-track']) {
      if (marks[m] !== undefined) result.figures[`admitted_to_${m.replace('-', '_')}_ms`] = Math.round(marks[m] - marks.admitted);
    }
    result.figures.admitted_to_resident_video_at_officer_ms = Math.round(officerFrame - admitted);
    result.figures.admit_request_to_two_way_video_ms = Math.round(twoWay - admitAt);
    if ((await h.step()) !== 'call') throw new Error(`step ${await h.step()}`);
    const main = await resident.evaluate(() => window.lookoutHearing.mainVideo());
    officerId = main.identity;
    const onPhone = await framesAdvance(resident, () => window.lookoutHearing.mainVideo(), null, 'the officer\'s video on the phone');
    const atOfficer = await framesAdvance(officer, () => window.lookoutMeet.videoStats('resident'), null, 'the resident\'s video at the officer');
    const audio = await resident.evaluate(() => document.querySelectorAll('#audio-sink audio').length);
    if (audio < 1) throw new Error('no audio of the officer');
    const net = await resident.evaluate(() => window.lookoutHearing.net());
    if (!['good', 'fair', 'poor'].includes(net)) throw new Error(`the network indicator says ${net}`);
    const hearing = await api('GET', `/api/v1/hearings/${hearingId}`);
    if (hearing.state !== 'in_progress') throw new Error(`hearing ${hearing.state}`);
    // The controls: big, and the microphone mutes and unmutes.
    await resident.tap('#ctl-mic');
    await until(resident, () => document.getElementById('ctl-mic').dataset.off === 'true', null, 'the microphone muted');
    await until(officer, () => document.querySelector('[data-identity="resident"]') && window.lookoutMeet.participants().includes('resident'), null, 'the officer sees the resident');
    await resident.tap('#ctl-mic');
    await until(resident, () => document.getElementById('ctl-mic').dataset.off === 'false', null, 'the microphone open again');
    await sleep(1200); // the quality indicator's first reading
    await shot(resident, '4-call');
    return { officer: officerId, on_phone: onPhone, at_officer: atOfficer, net: await resident.evaluate(() => window.lookoutHearing.net()) };
  });

  await step('the server pauses the video: 网络较差，已切换为仅语音, audio kept; back to video when resumed', async () => {
    await resident.evaluate((id) => window.lookoutHearing.test.serverMessage({ type: 'layer_changed', identity: id, layer: '', paused: true, reason: 'bandwidth' }), officerId);
    await until(resident, () => window.lookoutHearing.banner() === '网络较差，已切换为仅语音' && window.lookoutHearing.net() === 'audio', null, 'the audio-only banner');
    const audio = await resident.evaluate(() => [...document.querySelectorAll('#audio-sink audio')].filter((a) => a.srcObject && !a.paused).length);
    if (audio < 1) throw new Error('audio stopped');
    await shot(resident, '5-audio-only');
    await resident.evaluate((id) => window.lookoutHearing.test.serverMessage({ type: 'layer_changed', identity: id, layer: 'l', paused: false, reason: 'bandwidth' }), officerId);
    await until(resident, () => window.lookoutHearing.banner() === '' && window.lookoutHearing.net() !== 'audio', null, 'back to video');
  });

  await step('a signaling drop: 正在重新连接…, then back in the call by itself, without the lobby', async () => {
    const t0 = Date.now();
    await resident.evaluate(() => {
      window.__steps = [];
      window.__banners = [];
      new MutationObserver(() => window.__banners.push(document.getElementById('banner').textContent)).observe(document.getElementById('banner'), { childList: true, characterData: true, subtree: true });
      window.lookoutHearing.test.dropSignaling();
    });
    await until(resident, () => window.lookoutHearing.state() === 'reconnecting' || window.__banners.includes('正在重新连接…'), null, 'reconnecting shown');
    await until(resident, () => window.lookoutHearing.state() === 'joined' && window.lookoutHearing.mainVideo() && window.lookoutHearing.mainVideo().frames > 0, null, 'back in the call', 20000);
    const back = Date.now() - t0;
    const seen = await resident.evaluate(() => ({ steps: window.__steps, banners: window.__banners }));
    if (seen.steps.includes('lobby')) throw new Error(`went back to the lobby: ${seen.steps}`);
    if (!seen.banners.includes('正在重新连接…')) throw new Error(`no reconnecting banner: ${seen.banners}`);
    const onPhone = await framesAdvance(resident, () => window.lookoutHearing.mainVideo(), null, 'the officer\'s video after the drop');
    await until(officer, () => {
      const s = window.lookoutMeet.videoStats('resident');
      return s && s.width > 0 && s.frames > 0;
    }, null, 'the resident at the officer after the drop');
    const atOfficer = await framesAdvance(officer, () => window.lookoutMeet.videoStats('resident'), null, 'the resident\'s video at the officer after the drop');
    result.figures.drop_to_call_again_ms = back;
    return { back_ms: back, on_phone: onPhone, at_officer: atOfficer };
  });

  await step('a new link revokes the old one: 链接已失效', async () => {
    const fresh = await api('POST', `/api/v1/hearings/${hearingId}/link`);
    if (!fresh.path || fresh.path === link) throw new Error(`new link ${JSON.stringify(fresh)}`);
    const p = await residentCtx.newPage();
    watch('revoked', p);
    const r = await refused(p, base + link, 'link_revoked', ['链接已失效', '最新收到的链接'], 'refused-revoked');
    await p.close();
    // The call goes on: its join token is not the link.
    if ((await h.step()) !== 'call') throw new Error(`the call page is ${await h.step()}`);
    return r;
  });

  await step('the officer ends the hearing: 听证已结束, thanks', async () => {
    await api('POST', `/api/v1/hearings/${hearingId}/end`, { outcome: 'resolved', note: '双方达成一致' });
    await until(resident, () => document.body.dataset.step === 'ended', null, 'the ended page');
    const text = await h.text();
    for (const w of ['听证已结束', '感谢您的参与']) if (!text.includes(w)) throw new Error(`the end lacks ${w}`);
    const live = await resident.evaluate(() => document.querySelectorAll('video').length - [...document.querySelectorAll('video')].filter((v) => !v.srcObject).length);
    if (live) throw new Error(`${live} videos still attached after the end`);
    await shot(resident, '6-ended');
  });

  await step('no errors in the pages\' consoles', async () => {
    // A refused link answers 401 or 403, which Chromium logs as a failed
    // load: that is the page working.
    const errors = result.console.filter((l) => / (error|pageerror):/.test(l) && !/status of 40[13]/.test(l));
    if (errors.length) throw new Error(errors.join(' | '));
  });
  result.ok = !failed;
} catch (err) {
  result.error = result.error || String(err && err.message ? err.message : err).split('\n')[0];
} finally {
  if (browser) await browser.close().catch(() => {});
  clearTimeout(watchdog);
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
