// The resident's page of a remote petition hearing (信访远程听证), served
// at /h/{token} for any token (docs/hearings.md). Mobile first, Simplified
// Chinese, large controls; no account and no app.
//
// The steps, each a screen (<body data-step>):
//
//   opening   the link's token (from the path) goes to
//             POST /api/v1/hearing-link/open; a refusal ends here (refused:
//             what happened and what to do, nothing of the hearing)
//   check     the hearing's notice, and the camera and microphone at once:
//             a live preview, a level meter, plain instructions when the
//             browser is not allowed to use them, audio only without a
//             camera
//   consent   the hearing is recorded, and why: 同意并进入, or 不同意 (then
//             declined: an in-person hearing can be asked for instead)
//   lobby     POST /api/v1/hearing-link/join gives a join token of the
//             hearing's room, which waits in its lobby (signal.js, state
//             waiting) until the officer admits the resident
//   call      the officer large, oneself small, big buttons; the link's
//             quality; audio only while the server pauses the incoming
//             video (layer_changed) or the uplink is too weak for video;
//             reconnecting by itself after a drop
//   ended, left, out, refused   the end: the hearing ended (thanks), one
//             hung up (and may go back), was turned away, or the link was
//             refused
//
// For tests and tools, window.lookoutHearing tells the step, the page's
// performance marks (hearing:notice, hearing:preview, hearing:lobby,
// hearing:admitted, hearing:remote-video; also in performance.getEntriesByType
// ('mark')), the videos' frames, the network indicator and the banner.

import { MeetingClient } from './signal.js';
import { REFUSALS, t } from './hearing_i18n.js';

const $ = (id) => document.getElementById(id);

const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
const VIDEO = { facingMode: 'user', width: { ideal: 960 }, height: { ideal: 540 }, frameRate: { ideal: 24, max: 30 } };
const STATS_MS = 2000;
// The uplink is too weak for video below this estimate (the low simulcast
// layer needs 150 kbit/s), or above this loss the server reports, for
// POOR_POLLS polls in a row; video is tried again after UPLINK_RETRY_MS,
// doubling to UPLINK_RETRY_MAX_MS while it fails within PROBATION_MS.
const UPLINK_MIN_BPS = 100000;
const UPLINK_MAX_LOSS = 0.2;
const POOR_POLLS = 3;
const UPLINK_RETRY_MS = 15000;
const UPLINK_RETRY_MAX_MS = 60000;
const PROBATION_MS = 6000;
const SCREENS = ['opening', 'check', 'consent', 'declined', 'lobby', 'call', 'end'];

// --- performance marks

const marks = {};
function mark(name) {
  if (Object.hasOwn(marks, name)) return;
  marks[name] = performance.now();
  try {
    performance.mark(`hearing:${name}`);
  } catch {
    // Marks are for measuring; the page goes on without them.
  }
}

// --- the page's state

const page = {
  token: linkToken(),
  notice: null,
  grant: null,
  stream: null,
  mic: null,
  cam: null,
  /** checking | ok | nocamera | camdenied | cambusy | denied | nomic | busy | insecure | error */
  media: 'checking',
  audioOnly: false,
  micOn: true,
  camOn: true,
  client: null,
  /** The step shown. */
  step: 'opening',
  meter: null,
  wakeLock: null,
  statsTimer: 0,
  quality: '',
  /** The media connections' states, while the WebSocket stays up. */
  mediaState: { publisher: '', subscriber: '' },
  uplink: { bad: 0, off: false, retryAt: 0, backoff: UPLINK_RETRY_MS, probationUntil: 0 },
  prevIn: null,
};

/** identity -> {el, video, name, off, frames, sources: Map(source -> track)} */
const remotes = new Map();
const audios = new Map(); // track id -> <audio>
const sentLayers = new Map();

function linkToken() {
  const m = /^\/h\/([^/]+)\/?$/.exec(window.location.pathname);
  if (!m) return '';
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return '';
  }
}

// --- strings and screens

function applyStrings() {
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-aria]')) el.setAttribute('aria-label', t(el.dataset.i18nAria));
  document.title = t('app.title');
}

function show(screen, step = screen) {
  for (const s of SCREENS) $(s).hidden = s !== screen;
  page.step = step;
  document.body.dataset.step = step;
  window.scrollTo(0, 0);
  renderNet();
}

const pad = (n) => String(n).padStart(2, '0');

// china gives the parts of a time in China's time (UTC+8, no summer time),
// whatever the phone's own zone.
function china(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return null;
  const c = new Date(d.getTime() + 8 * 3600 * 1000);
  return { key: `${c.getUTCFullYear()}-${c.getUTCMonth()}-${c.getUTCDate()}`, month: c.getUTCMonth() + 1, day: c.getUTCDate(), hm: `${pad(c.getUTCHours())}:${pad(c.getUTCMinutes())}` };
}

// when words a time: HH:mm today, with the day otherwise (or always).
function when(iso, withDay = false) {
  const c = china(iso);
  if (!c) return '';
  const today = china(new Date().toISOString());
  if (!withDay && today && today.key === c.key) return c.hm;
  return `${t('time.day', { month: c.month, day: c.day })} ${c.hm}`;
}

// --- the link

async function post(path, body) {
  const res = await fetch(`/api/v1/hearing-link/${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
    referrerPolicy: 'no-referrer',
  });
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  return { status: res.status, data: data || {} };
}

function errorCode(r) {
  const e = r.data && r.data.error;
  return e && typeof e.code === 'string' ? e.code : 'unknown';
}

async function open() {
  show('opening');
  if (!page.token) {
    refuse('link_invalid');
    return;
  }
  let r;
  try {
    r = await post('open', { token: page.token });
  } catch {
    refuse('network');
    return;
  }
  if (r.status !== 200 || !r.data.notice) {
    refuse(errorCode(r), r.data);
    return;
  }
  page.notice = r.data.notice;
  renderNotice();
  show('check');
  mark('notice');
  startMedia();
}

function renderNotice() {
  const n = page.notice;
  $('n-subject').textContent = n.subject || '';
  $('n-org').textContent = n.organisation || '';
  $('n-time').textContent = when(n.starts_at, true);
  $('n-petitioner').textContent = n.petitioner || '';
}

// refuse shows why the link does not open and what to do; nothing of the
// hearing.
function refuse(code, data = {}) {
  const key = REFUSALS.includes(code) || code === 'network' ? code : 'unknown';
  let vars = {};
  if (key === 'link_not_yet_valid') vars = { start: when(data.starts_at), opens: when(data.opens_at) };
  const retry = key === 'network' || key === 'unknown' || key === 'link_not_yet_valid';
  document.body.dataset.refusal = code;
  finish('refused', {
    tone: key === 'hearing_over' ? 'done' : 'warn',
    heading: t(`refused.${key}.heading`),
    text: t(`refused.${key}.text`, vars),
    button: retry ? { label: t('refused.retry'), action: () => window.location.reload() } : null,
  });
}

// --- camera and microphone

async function acquire() {
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia) return { status: 'insecure' };
  const ask = (audio, video) => md.getUserMedia({ audio: audio ? AUDIO : false, video: video ? VIDEO : false });
  try {
    return { status: 'ok', stream: await ask(true, true) };
  } catch (err) {
    const name = err && err.name;
    const denied = name === 'NotAllowedError' || name === 'SecurityError';
    const busy = name === 'NotReadableError' || name === 'AbortError';
    // The microphone alone may still work: no camera, or the camera
    // refused or busy.
    let audio;
    try {
      audio = await ask(true, false);
    } catch (err2) {
      const name2 = err2 && err2.name;
      if (denied || name2 === 'NotAllowedError' || name2 === 'SecurityError') return { status: 'denied' };
      if (busy || name2 === 'NotReadableError') return { status: 'busy' };
      if (name === 'NotFoundError' || name === 'OverconstrainedError') return { status: 'nomic' };
      return { status: 'error' };
    }
    if (denied) return { status: 'camdenied', stream: audio };
    if (busy) return { status: 'cambusy', stream: audio };
    return { status: 'nocamera', stream: audio };
  }
}

async function startMedia() {
  stopMedia();
  page.media = 'checking';
  page.audioOnly = false;
  renderCheck();
  const got = await acquire();
  page.stream = got.stream || null;
  page.mic = page.stream ? page.stream.getAudioTracks()[0] || null : null;
  page.cam = page.stream ? page.stream.getVideoTracks()[0] || null : null;
  if (page.mic) page.mic.enabled = page.micOn;
  if (page.cam) page.cam.enabled = page.camOn;
  page.media = got.status;
  for (const v of [$('preview'), $('lobby-preview'), $('self-video')]) {
    v.srcObject = page.cam ? new MediaStream([page.cam]) : null;
    if (page.cam) v.play().catch(() => {});
  }
  if (page.cam) {
    const v = $('preview');
    const first = () => {
      mark('preview');
      renderCheck();
    };
    if ('requestVideoFrameCallback' in v) v.requestVideoFrameCallback(first);
    else v.addEventListener('playing', first, { once: true });
  }
  startMeter();
  renderCheck();
  // Something to do: the words saying what, in view.
  if (page.media !== 'ok' && page.step === 'check') $('check-note').scrollIntoView({ block: 'start' });
  return page.media === 'ok' || !!page.mic;
}

function stopMedia() {
  stopMeter();
  for (const tr of [page.mic, page.cam]) if (tr) tr.stop();
  page.stream = page.mic = page.cam = null;
  for (const v of [$('preview'), $('lobby-preview'), $('self-video')]) v.srcObject = null;
}

function renderCheck() {
  const st = page.media;
  const notes = {
    checking: 'check.checking', ok: 'check.ok', nocamera: 'check.nocamera', camdenied: 'check.camdenied', cambusy: 'check.busy',
    denied: 'check.denied', nomic: 'check.nomic', busy: 'check.busy', insecure: 'check.insecure', error: 'check.error',
  };
  let note = notes[st] || 'check.error';
  if (page.audioOnly) note = 'check.audioonly';
  $('check-note').textContent = t(note);
  $('check-note').dataset.tone = st === 'ok' || page.audioOnly ? 'ok' : st === 'checking' ? '' : 'warn';
  $('check-help').hidden = !(st === 'denied' || st === 'camdenied');
  $('retry').hidden = !['camdenied', 'cambusy', 'denied', 'nomic', 'busy', 'error'].includes(st);
  $('audio-only').hidden = page.audioOnly || !['nocamera', 'camdenied', 'cambusy'].includes(st);
  $('next').disabled = !(st === 'ok' || (page.audioOnly && page.mic));
  // Nothing to preview (neither camera nor microphone): no black box above
  // the instructions.
  $('check').querySelector('.preview').hidden = !page.stream && st !== 'checking';
  const media = page.cam ? (Object.hasOwn(marks, 'preview') ? 'on' : 'checking') : st === 'checking' ? 'checking' : 'off';
  for (const box of document.querySelectorAll('.preview')) box.dataset.media = page.camOn || !page.cam ? media : 'off';
  document.body.dataset.media = st;
}

// The microphone's level: a bar that moves as one speaks. A browser may
// hold the audio back until the page is touched; the first touch starts it.
function startMeter() {
  stopMeter();
  if (!page.mic) return;
  let ctx;
  try {
    ctx = new AudioContext();
  } catch {
    return;
  }
  const an = ctx.createAnalyser();
  an.fftSize = 512;
  ctx.createMediaStreamSource(new MediaStream([page.mic])).connect(an);
  const buf = new Float32Array(an.fftSize);
  let shown = 0;
  const timer = setInterval(() => {
    an.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const x of buf) sum += x * x;
    const db = 20 * Math.log10(Math.sqrt(sum / buf.length) + 1e-9);
    const level = page.micOn ? Math.max(0, Math.min(1, (db + 60) / 45)) : 0;
    shown = level > shown ? level : shown * 0.7 + level * 0.3;
    for (const m of document.querySelectorAll('.meter')) {
      m.style.setProperty('--level', shown.toFixed(3));
      m.setAttribute('aria-valuenow', String(Math.round(shown * 100)));
    }
  }, 100);
  const resume = () => ctx.resume().catch(() => {});
  if (ctx.state === 'suspended') {
    window.addEventListener('pointerdown', resume, { once: true });
    window.addEventListener('keydown', resume, { once: true });
  }
  page.meter = { ctx, timer, resume };
}

function stopMeter() {
  const m = page.meter;
  if (!m) return;
  clearInterval(m.timer);
  window.removeEventListener('pointerdown', m.resume);
  window.removeEventListener('keydown', m.resume);
  m.ctx.close().catch(() => {});
  page.meter = null;
}

// --- consent and joining

async function join() {
  $('agree').disabled = true;
  $('consent-error').hidden = true;
  let r;
  try {
    r = await post('join', { token: page.token, consent: true });
  } catch {
    $('agree').disabled = false;
    $('consent-error').textContent = t('refused.network.text');
    $('consent-error').hidden = false;
    return;
  }
  $('agree').disabled = false;
  if (r.status !== 200 || typeof r.data.token !== 'string') {
    refuse(errorCode(r), r.data);
    return;
  }
  page.grant = r.data;
  connect();
}

function connect() {
  const c = new MeetingClient(page.grant.token, { endWithRoom: true });
  page.client = c;
  wire(c);
  if (page.mic) c.setLocalTrack('microphone', page.mic, page.stream);
  if (page.cam && !page.audioOnly) c.setLocalTrack('camera', page.cam, page.stream);
  if (!page.micOn) c.setMuted('audio', true);
  if (!page.camOn || page.audioOnly) c.setMuted('video', true);
  page.uplink = { bad: 0, off: false, retryAt: 0, backoff: UPLINK_RETRY_MS, probationUntil: 0 };
  $('lobby-heading').textContent = t('lobby.entering');
  show('lobby');
  keepAwake();
  c.connect();
}

function wire(c) {
  c.addEventListener('state', (ev) => {
    if (c !== page.client) return;
    const { state, code } = ev.detail;
    switch (state) {
      case 'waiting':
        mark('lobby');
        $('lobby-heading').textContent = t('lobby.heading');
        if (page.step !== 'lobby') show('lobby');
        break;
      case 'joined':
        mark('admitted');
        page.mediaState = { publisher: '', subscriber: '' };
        enterCall();
        break;
      case 'reconnecting':
        // The server dropped the tracks with the connection: they come
        // back with the next joined.
        for (const id of [...remotes.keys()]) dropRemote(id);
        stopStats();
        break;
      case 'failed':
        out(code);
        return;
      case 'left':
        left(code);
        return;
      default:
        break;
    }
    renderNet();
  });
  c.addEventListener('participant_joined', () => syncRemotes());
  c.addEventListener('participant_left', (ev) => {
    if (c.self && ev.detail.identity === c.self.identity) return;
    dropRemote(ev.detail.identity);
    syncRemotes();
  });
  c.addEventListener('remotetrack', (ev) => addTrack(ev.detail));
  c.addEventListener('remotetrackgone', (ev) => removeTrack(ev.detail));
  for (const type of ['track_published', 'track_unpublished', 'mute_changed', 'spotlight']) c.addEventListener(type, () => syncRemotes());
  c.addEventListener('layer_changed', () => {
    syncRemotes();
    renderNet();
  });
  c.addEventListener('media', (ev) => {
    page.mediaState[ev.detail.target] = ev.detail.state;
    if (ev.detail.state === 'connected') mark(`${ev.detail.target}-connected`);
    renderNet();
  });
  c.addEventListener('unmute_request', (ev) => {
    if (ev.detail.kind === 'audio' && !page.micOn) $('unmute').hidden = false;
  });
}

// --- the call

function enterCall() {
  show('call');
  syncRemotes();
  renderControls();
  startStats();
}

function ensureRemote(identity) {
  let r = remotes.get(identity);
  if (r) return r;
  const el = document.createElement('div');
  el.className = 'tile';
  el.dataset.identity = identity;
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  const off = document.createElement('div');
  off.className = 'tile-off';
  const offText = document.createElement('span');
  off.append(offText);
  const name = document.createElement('span');
  name.className = 'name';
  el.append(video, off, name);
  r = { identity, el, video, off: offText, name, frames: 0, sources: new Map(), track: null, gen: 0 };
  remotes.set(identity, r);
  return r;
}

function dropRemote(identity) {
  const r = remotes.get(identity);
  if (!r) return;
  r.gen++;
  r.video.srcObject = null;
  r.el.remove();
  remotes.delete(identity);
  sentLayers.delete(identity);
  for (const [id, a] of [...audios]) {
    if (a.dataset.identity === identity) {
      a.srcObject = null;
      a.remove();
      audios.delete(id);
    }
  }
}

function addTrack({ identity, info, track }) {
  if (track.kind === 'audio') {
    const a = document.createElement('audio');
    a.autoplay = true;
    a.dataset.identity = identity;
    a.srcObject = new MediaStream([track]);
    $('audio-sink').append(a);
    a.play().catch(() => {});
    audios.set(info.id, a);
    return;
  }
  mark('remote-track');
  const r = ensureRemote(identity);
  r.sources.set(info.source || 'camera', track);
  syncRemotes();
}

function removeTrack({ identity, info, track }) {
  const a = audios.get(info.id);
  if (a) {
    a.srcObject = null;
    a.remove();
    audios.delete(info.id);
  }
  const r = remotes.get(identity);
  if (r && track.kind === 'video') {
    for (const [src, tr] of r.sources) if (tr === track) r.sources.delete(src);
    syncRemotes();
  }
}

// showTrack puts track in r's video, counting its frames; the first frame
// of the officer after admission is the hearing:remote-video mark.
function showTrack(r, track) {
  if (r.track === track) return;
  r.track = track;
  r.gen++;
  r.video.srcObject = track ? new MediaStream([track]) : null;
  if (!track) return;
  r.video.play().catch(() => {});
  const gen = r.gen;
  const frame = () => {
    if (gen !== r.gen) return;
    r.frames++;
    if (marks.admitted !== undefined) mark('remote-video');
    if ('requestVideoFrameCallback' in r.video) r.video.requestVideoFrameCallback(frame);
  };
  if ('requestVideoFrameCallback' in r.video) r.video.requestVideoFrameCallback(frame);
  else r.video.addEventListener('playing', frame, { once: true });
}

// mainIdentity is who the large view shows: the spotlighted participant,
// else the host (the officer), else whoever came first.
function mainIdentity(c) {
  if (c.spotlight && c.participants.has(c.spotlight)) return c.spotlight;
  for (const p of c.participants.values()) if (p.role === 'host') return p.identity;
  const first = c.participants.keys().next();
  return first.done ? '' : first.value;
}

function syncRemotes() {
  const c = page.client;
  if (!c || c.state !== 'joined') return;
  const main = mainIdentity(c);
  for (const id of c.participants.keys()) ensureRemote(id);
  for (const id of [...remotes.keys()]) if (!c.participants.has(id)) dropRemote(id);
  const strip = $('remote-strip');
  for (const [id, r] of remotes) {
    const p = c.participants.get(id);
    const isMain = id === main;
    const track = r.sources.get('screen') || r.sources.get('camera') || null;
    showTrack(r, track);
    let camOff = !track;
    if (p && !r.sources.has('screen')) {
      const cams = [...p.tracks.values()].filter((x) => x.source === 'camera');
      if (cams.length === 0 || cams.every((x) => x.muted)) camOff = true;
    }
    const paused = !!c.paused.get(id);
    r.el.dataset.camOff = String(camOff);
    r.el.dataset.paused = String(paused && !camOff);
    r.el.dataset.screen = String(r.sources.has('screen'));
    r.off.textContent = camOff ? (track ? t('call.camoff') : t('call.waiting')) : paused ? t('call.voiceonly') : '';
    r.name.textContent = p && p.role === 'host' ? `${t('call.officer')} · ${p.name}` : (p ? p.name : id);
    const parent = isMain ? $('remote-main') : strip;
    if (r.el.parentElement !== parent) {
      parent.append(r.el);
      r.video.play().catch(() => {});
    }
    r.el.classList.toggle('main', isMain);
    // The size shown; never off: a video not arrived yet (or muted) is
    // not sent anyway, and one asked off starts paused when it comes.
    const want = isMain ? 'high' : 'low';
    if (sentLayers.get(id) !== want) {
      sentLayers.set(id, want);
      c.sendLayer(id, want);
    }
  }
  $('remote-wait').hidden = !!main;
  $('remote-strip').hidden = strip.childElementCount === 0;
}

function renderControls() {
  const mic = $('ctl-mic');
  mic.setAttribute('aria-pressed', String(!page.micOn));
  mic.dataset.off = String(!page.micOn);
  mic.querySelector('.label').textContent = page.micOn ? t('ctl.mic') : t('ctl.micoff');
  mic.disabled = !page.mic;
  const cam = $('ctl-cam');
  const camOn = page.camOn && !!page.cam && !page.audioOnly;
  cam.setAttribute('aria-pressed', String(!camOn));
  cam.dataset.off = String(!camOn);
  cam.querySelector('.label').textContent = camOn ? t('ctl.cam') : t('ctl.camoff');
  cam.disabled = !page.cam || page.audioOnly;
  $('self').dataset.off = String(!camOn || page.uplink.off);
  renderCheck();
}

function setMic(on) {
  page.micOn = on;
  if (page.mic) page.mic.enabled = on;
  if (page.client) page.client.setMuted('audio', !on);
  if (on) $('unmute').hidden = true;
  renderControls();
}

function setCam(on) {
  page.camOn = on;
  if (page.cam) page.cam.enabled = on;
  if (page.client && !page.uplink.off) page.client.setMuted('video', !on);
  renderControls();
}

// --- the network: quality, audio only, reconnecting

function startStats() {
  stopStats();
  page.prevIn = null;
  page.statsTimer = setInterval(() => {
    pollStats().catch(() => {});
  }, STATS_MS);
}

function stopStats() {
  clearInterval(page.statsTimer);
  page.statsTimer = 0;
  page.quality = '';
}

function selectedPair(report) {
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) || pair;
  });
  if (!pair) {
    report.forEach((s) => {
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
    });
  }
  return pair;
}

async function pollStats() {
  const c = page.client;
  if (!c || c.state !== 'joined') return;
  let rtt = 0;
  let lossIn = 0;
  if (c.sub) {
    const rep = await c.sub.getStats();
    let lost = 0;
    let got = 0;
    rep.forEach((s) => {
      if (s.type === 'inbound-rtp') {
        lost += s.packetsLost || 0;
        got += s.packetsReceived || 0;
      }
    });
    const prev = page.prevIn;
    page.prevIn = { lost, got };
    if (prev) {
      const dl = Math.max(0, lost - prev.lost);
      const dg = Math.max(0, got - prev.got);
      lossIn = dl + dg > 0 ? dl / (dl + dg) : 0;
    }
    const pair = selectedPair(rep);
    if (pair && pair.currentRoundTripTime) rtt = pair.currentRoundTripTime;
  }
  let outBps = Infinity;
  let lossOut = 0;
  if (c.pub) {
    const rep = await c.pub.getStats();
    const pair = selectedPair(rep);
    if (pair && pair.availableOutgoingBitrate) outBps = pair.availableOutgoingBitrate;
    if (pair && pair.currentRoundTripTime) rtt = Math.max(rtt, pair.currentRoundTripTime);
    rep.forEach((s) => {
      if (s.type === 'remote-inbound-rtp' && s.kind === 'video' && typeof s.fractionLost === 'number') lossOut = Math.max(lossOut, s.fractionLost);
    });
  }
  if (c !== page.client || c.state !== 'joined') return;
  uplinkCheck(outBps, lossOut);
  const loss = Math.max(lossIn, lossOut);
  if (loss > 0.08 || rtt > 0.6 || outBps < 150000 || audioOnlyNow()) page.quality = 'poor';
  else if (loss > 0.02 || rtt > 0.3 || outBps < 400000) page.quality = 'fair';
  else page.quality = 'good';
  renderNet();
}

// uplinkCheck stops sending video while the uplink cannot carry it, and
// tries it again later.
function uplinkCheck(outBps, loss) {
  const c = page.client;
  const up = page.uplink;
  const now = Date.now();
  const sending = !!page.cam && !page.audioOnly && page.camOn;
  if (up.off) {
    if (now >= up.retryAt) {
      up.off = false;
      up.bad = 0;
      up.probationUntil = now + PROBATION_MS;
      if (page.cam) c.setLocalTrack('camera', page.cam, page.stream).catch(() => {});
      if (page.camOn) c.setMuted('video', false);
      renderControls();
    }
    return;
  }
  if (!sending) return;
  const poor = outBps < UPLINK_MIN_BPS || loss > UPLINK_MAX_LOSS;
  up.bad = poor ? up.bad + 1 : 0;
  if (up.bad >= POOR_POLLS || (poor && now < up.probationUntil)) {
    up.off = true;
    up.retryAt = now + up.backoff;
    up.backoff = Math.min(up.backoff * 2, UPLINK_RETRY_MAX_MS);
    c.setLocalTrack('camera', null).catch(() => {});
    c.setMuted('video', true);
    renderControls();
  } else if (!poor && up.probationUntil && now > up.probationUntil) {
    up.probationUntil = 0;
    up.backoff = UPLINK_RETRY_MS;
  }
}

// audioOnlyNow says the call is on audio only for the network's sake: the
// server paused the officer's video, or the uplink cannot carry ours.
function audioOnlyNow() {
  const c = page.client;
  if (!c || c.state !== 'joined') return false;
  if (page.uplink.off) return true;
  const main = mainIdentity(c);
  return !!(main && c.paused.get(main));
}

function renderNet() {
  const c = page.client;
  const inRoom = c && (page.step === 'lobby' || page.step === 'call');
  let net = '';
  let banner = '';
  if (inRoom) {
    const media = Object.values(page.mediaState);
    if (c.state === 'reconnecting' || (c.state === 'joined' && media.some((s) => s === 'disconnected' || s === 'failed'))) {
      net = 'reconnecting';
      banner = t('net.reconnecting');
    } else if (c.state === 'connecting') {
      net = 'connecting';
    } else if (c.state === 'joined' && audioOnlyNow()) {
      net = 'audio';
      banner = t('net.audioonly');
    } else if (c.state === 'joined') {
      net = page.quality || 'good';
    }
  }
  document.body.dataset.net = net;
  const el = $('net');
  el.hidden = !net;
  el.dataset.q = net;
  const words = { good: 'net.good', fair: 'net.fair', poor: 'net.poor', audio: 'net.poor', reconnecting: 'net.reconnecting', connecting: 'net.connecting' };
  $('net-text').textContent = net ? t(words[net]) : '';
  $('banner').textContent = banner;
  $('banner').hidden = !banner;
  $('banner').dataset.kind = net;
}

// --- the end

function finish(step, { tone, heading, text, extra = '', button = null }) {
  teardown();
  $('end').dataset.tone = tone;
  $('end-heading').textContent = heading;
  $('end-text').textContent = text;
  $('end-extra').textContent = extra;
  $('end-extra').hidden = !extra;
  const b = $('end-button');
  b.hidden = !button;
  b.onclick = null;
  if (button) {
    b.textContent = button.label;
    b.onclick = button.action;
  }
  show('end', step);
}

function teardown() {
  stopStats();
  for (const id of [...remotes.keys()]) dropRemote(id);
  for (const a of audios.values()) a.remove();
  audios.clear();
  stopMedia();
  renderCheck();
  if (page.wakeLock) page.wakeLock.release().catch(() => {});
  page.wakeLock = null;
}

function left(code) {
  page.client = null;
  if (code === 'closed') {
    finish('ended', { tone: 'done', heading: t('ended.heading'), text: t('ended.text'), extra: t('ended.again') });
    return;
  }
  if (code === 'rejected' || code === 'removed' || code === 'replaced') {
    finish('out', { tone: 'warn', heading: t(`out.${code}.heading`), text: t(`out.${code}.text`) });
    document.body.dataset.reason = code;
    return;
  }
  finish('left', { tone: 'info', heading: t('left.heading'), text: t('left.text'), button: { label: t('left.rejoin'), action: rejoin } });
}

function out(code) {
  page.client = null;
  document.body.dataset.reason = code;
  if (code === 'room_not_found') {
    finish('ended', { tone: 'done', heading: t('ended.heading'), text: t('ended.text'), extra: t('ended.again') });
    return;
  }
  const text = code === 'room_full' || code === 'bad_token' ? t(`out.${code}.text`) : t('out.failed.text');
  finish('out', { tone: 'warn', heading: t('out.failed.heading'), text, button: { label: t('out.reload'), action: () => window.location.reload() } });
}

// rejoin goes back after hanging up: the camera and microphone again, then
// straight in (the consent was given; admitted once, no lobby).
async function rejoin() {
  show('opening');
  const ok = await startMedia();
  if (!ok) {
    show('check');
    return;
  }
  await join();
}

function hangup() {
  const c = page.client;
  if (c) c.leave();
}

async function keepAwake() {
  try {
    if (navigator.wakeLock && !page.wakeLock) page.wakeLock = await navigator.wakeLock.request('screen');
  } catch {
    page.wakeLock = null;
  }
}

// --- wiring the page

function bind() {
  $('next').addEventListener('click', () => show('consent'));
  $('retry').addEventListener('click', () => startMedia());
  $('audio-only').addEventListener('click', () => {
    page.audioOnly = true;
    if (page.cam) {
      page.cam.stop();
      page.cam = null;
    }
    renderCheck();
  });
  $('agree').addEventListener('click', () => join());
  $('disagree').addEventListener('click', () => show('declined'));
  $('back-to-consent').addEventListener('click', () => show('consent'));
  $('ctl-mic').addEventListener('click', () => setMic(!page.micOn));
  $('ctl-cam').addEventListener('click', () => setCam(!page.camOn));
  $('unmute-yes').addEventListener('click', () => setMic(true));
  const dialog = $('hangup-dialog');
  const ask = () => {
    if (typeof dialog.showModal === 'function') dialog.showModal();
    else hangup();
  };
  $('ctl-hangup').addEventListener('click', ask);
  $('lobby-leave').addEventListener('click', ask);
  dialog.addEventListener('close', () => {
    if (dialog.returnValue === 'leave') hangup();
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && page.client) keepAwake();
  });
  window.addEventListener('pagehide', () => {
    const c = page.client;
    if (c && c.state !== 'left' && c.state !== 'failed') c.leave();
  });
}

function videoStats(v, frames) {
  const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
  return { width: v.videoWidth, height: v.videoHeight, frames, decoded: q ? q.totalVideoFrames : 0, time: v.currentTime };
}

Object.defineProperty(window, 'lookoutHearing', {
  value: Object.freeze({
    /** The step shown (<body data-step>). */
    step: () => document.body.dataset.step,
    /** The page's marks, ms from the page's start (the link opened). */
    marks: () => ({ ...marks }),
    /** performance.timeOrigin, to put marks of two pages on one clock. */
    origin: () => performance.timeOrigin,
    /** What the camera and microphone check found. */
    media: () => page.media,
    /** The network indicator: good, fair, poor, audio, reconnecting, connecting or "". */
    net: () => document.body.dataset.net,
    banner: () => ($('banner').hidden ? '' : $('banner').textContent),
    /** The signaling client's state. */
    state: () => (page.client ? page.client.state : ''),
    /** The remote participants shown, the large one first. */
    remotes: () => [...remotes.values()].sort((a, b) => Number(b.el.classList.contains('main')) - Number(a.el.classList.contains('main'))).map((r) => r.identity),
    /** The large video's size and frames (presented and decoded). */
    mainVideo: () => {
      const r = [...remotes.values()].find((x) => x.el.classList.contains('main'));
      return r ? { identity: r.identity, ...videoStats(r.video, r.frames) } : null;
    },
    /** One's own preview. */
    preview: () => videoStats($('preview'), 0),
    /** The visible text of the page. */
    text: () => document.body.innerText,
    /**
     * For tests: a server message as if it came over the signaling
     * WebSocket (e.g. layer_changed), and a drop of that WebSocket.
     */
    test: Object.freeze({
      serverMessage: (m) => {
        const c = page.client;
        if (c && c._ws) c._onMessage(m, c._session);
      },
      dropSignaling: () => {
        const c = page.client;
        if (c && c._ws) c._ws.close(4000, 'test');
      },
    }),
  }),
  writable: false,
  configurable: false,
});

applyStrings();
bind();
open();
