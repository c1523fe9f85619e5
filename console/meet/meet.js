// The meeting page: /meet/#room=<room>&token=<join token>.
//
// The token stays in the fragment, which browsers never send, and leaves
// the address bar as soon as it is read (it is kept in this tab's
// sessionStorage, so a reload joins again). A pre-join panel shows the
// camera and microphone and explains what the browser refused; the meeting
// then shows a tile per participant, the spotlight or a screen share large,
// chat, the participants (with host controls for a host), and the
// connection's state. Strings are in i18n.js, Simplified Chinese first.
//
// For tests and tools: <body data-state> is prejoin, joining, joined,
// reconnecting, failed or left (and data-media is checking or ready before
// joining); each remote participant's tile has data-identity; and
// window.lookoutMeet has participants(), speakers(), videoStats(identity),
// self(), state(), departed(), setMicEnabled(on), restartIce(),
// iceUfrags(), sendStats(), layerStats() and recvStats(identity).

import { MeetingClient } from './signal.js';
import { t, has, lang, setLang, initLang, applyI18n } from './i18n.js';

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';

const ICONS = {
  mic: 'M12 3a3 3 0 0 0-3 3v6a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3z M5 11a7 7 0 0 0 14 0 M12 18v3',
  micOff: 'M12 3a3 3 0 0 0-3 3v6a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3z M5 11a7 7 0 0 0 14 0 M12 18v3 M3 3l18 18',
  cam: 'M3 7h12v10H3z M15 10.5l6-3.5v10l-6-3.5',
  camOff: 'M3 7h12v10H3z M15 10.5l6-3.5v10l-6-3.5 M3 3l18 18',
  star: 'M12 3l2.6 5.6 6.1.6-4.6 4.1 1.3 6-5.4-3.1-5.4 3.1 1.3-6L3.3 9.2l6.1-.6z',
  remove: 'M9 11a3 3 0 1 0 0-6 3 3 0 0 0 0 6z M3 20a6 6 0 0 1 12 0 M16 9l5 5 M21 9l-5 5',
  more: 'M5 12h.01 M12 12h.01 M19 12h.01',
  lock: 'M6 11h12v9H6z M8 11V8a4 4 0 0 1 8 0v3',
  unlock: 'M6 11h12v9H6z M8 11V8a4 4 0 0 1 7.7-1.5',
};

function icon(name) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', ICONS[name]);
  svg.append(path);
  return svg;
}

function h(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'type' || k === 'title') e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

// tx is t of a key made of a prefix and a code from the server, with a
// fallback for a code this page does not know.
function tx(prefix, code, fallback, vars = {}) {
  const key = prefix + code;
  return has(key) ? t(key, vars) : t(fallback, { ...vars, code });
}

// --- the link: room and token

// claimsOf reads a join token's claims (name, room, role, rights, exp) to
// greet the participant before joining; the server checks the token.
function claimsOf(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bin = atob(part + '='.repeat((4 - (part.length % 4)) % 4));
    const json = new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
    const c = JSON.parse(json);
    return c && typeof c === 'object' ? c : null;
  } catch {
    return null;
  }
}

function readLink() {
  const frag = new URLSearchParams(location.hash.slice(1));
  let token = frag.get('token') || '';
  const claims = token ? claimsOf(token) : null;
  const room = frag.get('room') || (claims && claims.room) || '';
  const key = `lookout.meet.token.${room}`;
  try {
    if (token) sessionStorage.setItem(key, token);
    else if (room) token = sessionStorage.getItem(key) || '';
  } catch {
    // Storage off: a reload needs the link again.
  }
  const keep = new URLSearchParams();
  if (room) keep.set('room', room);
  if (frag.get('lang')) keep.set('lang', frag.get('lang'));
  // The token leaves the address bar and the history entry at once.
  history.replaceState(null, '', `${location.pathname}${location.search}${keep.toString() ? '#' + keep : ''}`);
  return { room, token, claims: token ? claimsOf(token) : null };
}

initLang();
const link = readLink();

// --- elements and state

const el = {
  conn: $('conn'), connText: $('conn-text'), roomName: $('room-name'), lockFlag: $('lock-flag'), lang: $('lang'),
  prejoin: $('prejoin'), preview: $('preview'), previewOff: $('preview-off'), meter: $('meter'), who: $('who'),
  note: $('media-note'), preMic: $('pre-mic'), preCam: $('pre-cam'), devices: $('devices'), camSelect: $('cam-select'),
  micSelect: $('mic-select'), join: $('join'), retry: $('retry-media'), prejoinError: $('prejoin-error'),
  meeting: $('meeting'), stage: $('stage'), main: $('main'), grid: $('grid'),
  panel: $('panel'), panelTitle: $('panel-title'), panelClose: $('panel-close'), peoplePanel: $('people-panel'),
  hostRoom: $('host-room'), lock: $('lock'), people: $('people'), chatPanel: $('chat-panel'), chatLog: $('chat-log'),
  chatEmpty: $('chat-empty'), chatForm: $('chat-form'), chatInput: $('chat-input'), chatSend: $('chat-send'),
  controls: $('controls'), ctlMic: $('ctl-mic'), ctlCam: $('ctl-cam'), ctlScreen: $('ctl-screen'), ctlPeople: $('ctl-people'),
  peopleCount: $('people-count'), ctlChat: $('ctl-chat'), chatUnread: $('chat-unread'), ctlLeave: $('ctl-leave'),
  ended: $('ended'), endedTitle: $('ended-title'), endedText: $('ended-text'), rejoin: $('rejoin'),
  consent: $('consent'), consentText: $('consent-text'), confirm: $('confirm'), confirmText: $('confirm-text'),
  toasts: $('toasts'), audioSink: $('audio-sink'),
};

const canPublish = !link.claims || !link.claims.rights || link.claims.rights.publish !== false;

const local = {
  stream: new MediaStream(), // camera and microphone, one msid stream
  mic: null,
  cam: null,
  screen: null,
  micOn: true,
  camOn: true,
  note: '', // the key of what the pre-join check found
  noteVars: {},
  checking: null,
  meter: null,
};

let client = null;
let pageState = 'prejoin';
let connCode = '';
let mediaTrouble = false;
const tiles = new Map(); // identity -> camera tile of a remote participant
const screens = new Map(); // identity -> screen-share tile of a remote participant
let selfTile = null;
let selfScreenTile = null;
let pinned = null; // a tile this viewer put in the main view
let panel = ''; // people | chat | ''
let unread = 0;
const pendingOwnChat = [];
const audios = new Map(); // remote audio track id -> <audio>
const sentLayers = new Map();
const departed = [];

// --- language

function renderLanguage() {
  applyI18n(document);
  document.title = `${t('app.title')}${link.room ? ' · ' + roomLabel() : ''} · Lookout`;
  renderWho();
  renderNote();
  renderStatus();
  renderControls();
  renderPanel();
  renderEnded();
  for (const tile of allTiles()) renderTile(tile);
}

el.lang.addEventListener('click', () => {
  setLang(lang() === 'zh' ? 'en' : 'zh');
  // The link in the address bar says the language chosen, so a reload keeps it.
  const frag = new URLSearchParams(location.hash.slice(1));
  if (frag.has('lang')) {
    frag.set('lang', lang());
    history.replaceState(null, '', `${location.pathname}${location.search}#${frag}`);
  }
  const q = new URLSearchParams(location.search);
  if (q.has('lang')) {
    q.set('lang', lang());
    history.replaceState(null, '', `${location.pathname}?${q}${location.hash}`);
  }
  renderLanguage();
});

function roomLabel() {
  return (client && client.room && client.room.name) || link.room;
}

// --- connection state

function setPageState(s) {
  pageState = s;
  document.body.dataset.state = s;
  renderStatus();
  renderEnded();
}

function renderStatus() {
  let text;
  if (pageState === 'joined' && mediaTrouble) text = t('state.media');
  else if (pageState === 'failed') text = t('state.failedwhy', { why: tx('err.', connCode, 'err.unknown') });
  else if (pageState === 'left' && connCode === 'removed') text = t('state.removed');
  else text = t(`state.${pageState}`);
  el.connText.textContent = text;
  el.conn.dataset.state = pageState === 'joined' && mediaTrouble ? 'reconnecting' : pageState;
  el.roomName.textContent = roomLabel();
  el.lockFlag.hidden = !(client && client.room && client.room.locked);
}

function renderEnded() {
  const show = pageState === 'left' || pageState === 'failed';
  el.ended.hidden = !show;
  if (!show) return;
  if (pageState === 'failed') {
    el.endedTitle.textContent = t('state.failed');
    el.endedText.textContent = tx('err.', connCode, 'err.unknown');
    el.rejoin.hidden = connCode === 'bad_token' || connCode === 'notoken';
  } else {
    el.endedTitle.textContent = connCode === 'removed' ? t('state.removed') : t('state.left');
    el.endedText.textContent = tx('ended.', connCode || 'left', 'ended.left');
    el.rejoin.hidden = connCode === 'removed';
  }
}

el.rejoin.addEventListener('click', () => location.reload());

// --- pre-join: camera and microphone

function renderWho() {
  const c = link.claims;
  const lines = [];
  if (c && c.name) lines.push(t('prejoin.as', { name: c.name }));
  if (link.room) lines.push(t('prejoin.room', { room: link.room }));
  if (c && c.rights && c.rights.publish === false) lines.push(t('prejoin.viewer'));
  el.who.textContent = lines.join(' · ');
  if (!link.token) {
    el.prejoinError.textContent = t('err.notoken');
    el.prejoinError.hidden = false;
  } else if (c && typeof c.exp === 'number' && c.exp * 1000 < Date.now()) {
    el.prejoinError.textContent = t('err.bad_token');
    el.prejoinError.hidden = false;
  }
}

function renderNote() {
  el.note.textContent = local.note ? t(local.note, local.noteVars) : '';
  el.note.hidden = !local.note;
  el.preMic.setAttribute('aria-pressed', String(!!local.mic && local.micOn));
  el.preCam.setAttribute('aria-pressed', String(!!local.cam && local.camOn));
  el.preMic.disabled = !canPublish;
  el.preCam.disabled = !canPublish;
  el.preMic.title = local.mic && local.micOn ? t('ctl.mic.mute') : t('ctl.mic.unmute');
  el.preCam.title = local.cam && local.camOn ? t('ctl.cam.stop') : t('ctl.cam.start');
  el.previewOff.hidden = !!(local.cam && local.camOn);
  el.retry.hidden = !canPublish || !local.note.startsWith('media.');
}

function audioConstraints(deviceId) {
  const c = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  if (deviceId) c.deviceId = { exact: deviceId };
  return c;
}

function videoConstraints(deviceId) {
  const c = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 25, max: 30 } };
  if (deviceId) c.deviceId = { exact: deviceId };
  return c;
}

async function permissionOf(name) {
  try {
    return (await navigator.permissions.query({ name })).state;
  } catch {
    return 'prompt';
  }
}

// getMedia asks for what is wanted, and for less when the browser refuses
// all of it; it says what it found in local.note.
async function getMedia(wantAudio, wantVideo, ids = {}) {
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia) {
    return { stream: null, note: window.isSecureContext ? 'media.unsupported' : 'media.insecure' };
  }
  const ask = (a, v) => md.getUserMedia({
    audio: a ? audioConstraints(ids.microphone) : false,
    video: v ? videoConstraints(ids.camera) : false,
  });
  try {
    return { stream: await ask(wantAudio, wantVideo), note: '' };
  } catch (err) {
    const name = err && err.name;
    if (wantAudio && wantVideo) {
      if (name === 'NotAllowedError' || name === 'SecurityError') {
        // Denied together; one of them may still be allowed by itself.
        if (await permissionOf('microphone') === 'granted') {
          try { return { stream: await ask(true, false), note: 'media.camdenied' }; } catch { /* fall through */ }
        }
        if (await permissionOf('camera') === 'granted') {
          try { return { stream: await ask(false, true), note: 'media.micdenied' }; } catch { /* fall through */ }
        }
        return { stream: null, note: 'media.denied' };
      }
      try {
        return { stream: await ask(true, false), note: name === 'NotReadableError' ? 'media.cambusy' : 'media.nocamera' };
      } catch {
        try {
          return { stream: await ask(false, true), note: 'media.nomic' };
        } catch {
          return { stream: null, note: name === 'NotReadableError' ? 'media.busy' : 'media.none' };
        }
      }
    }
    if (name === 'NotAllowedError' || name === 'SecurityError') return { stream: null, note: 'media.denied' };
    if (name === 'NotReadableError' || name === 'AbortError') return { stream: null, note: 'media.busy' };
    if (name === 'NotFoundError' || name === 'OverconstrainedError') return { stream: null, note: wantVideo ? 'media.nocamera' : 'media.nomic' };
    return { stream: null, note: 'media.error', vars: { error: (err && err.message) || String(err) } };
  }
}

function setLocalMic(track) {
  if (local.mic && local.mic !== track) {
    local.stream.removeTrack(local.mic);
    local.mic.stop();
  }
  local.mic = track;
  if (track) {
    track.enabled = local.micOn;
    local.stream.addTrack(track);
  }
  startMeter();
}

function setLocalCam(track) {
  if (local.cam && local.cam !== track) {
    local.stream.removeTrack(local.cam);
    local.cam.stop();
  }
  local.cam = track;
  if (track) local.stream.addTrack(track);
  el.preview.srcObject = track ? new MediaStream([track]) : null;
  if (selfTile) attachVideo(selfTile, track);
}

async function checkMedia() {
  if (!canPublish) {
    local.note = 'prejoin.viewer';
    document.body.dataset.media = 'ready';
    renderNote();
    return;
  }
  local.note = 'prejoin.checking';
  document.body.dataset.media = 'checking';
  renderNote();
  const wantVideo = local.camOn;
  const { stream, note, vars } = await getMedia(true, wantVideo, { camera: el.camSelect.value, microphone: el.micSelect.value });
  local.note = note;
  local.noteVars = vars || {};
  if (stream) {
    const a = stream.getAudioTracks()[0] || null;
    const v = stream.getVideoTracks()[0] || null;
    setLocalMic(a);
    if (v || wantVideo) setLocalCam(v);
    await listDevices();
  }
  if (client) publishLocal();
  document.body.dataset.media = 'ready';
  renderNote();
}

async function listDevices() {
  let list = [];
  try {
    list = await navigator.mediaDevices.enumerateDevices();
  } catch {
    return;
  }
  const fill = (select, kind, current) => {
    const devs = list.filter((d) => d.kind === kind && d.deviceId);
    select.replaceChildren(...devs.map((d, i) => h('option', { value: d.deviceId, text: d.label || `${kind === 'videoinput' ? t('prejoin.camera') : t('prejoin.microphone')} ${i + 1}` })));
    const id = current && current.getSettings().deviceId;
    if (id) select.value = id;
    return devs.length;
  };
  const cams = fill(el.camSelect, 'videoinput', local.cam);
  const mics = fill(el.micSelect, 'audioinput', local.mic);
  el.devices.hidden = cams + mics < 3;
}

el.camSelect.addEventListener('change', async () => {
  if (!local.camOn) return;
  const { stream } = await getMedia(false, true, { camera: el.camSelect.value });
  if (stream) {
    const v = stream.getVideoTracks()[0];
    setLocalCam(v);
    if (client) client.setLocalTrack('camera', v, local.stream);
  }
});

el.micSelect.addEventListener('change', async () => {
  const { stream } = await getMedia(true, false, { microphone: el.micSelect.value });
  if (stream) {
    const a = stream.getAudioTracks()[0];
    setLocalMic(a);
    if (client) client.setLocalTrack('microphone', a, local.stream);
  }
});

// The microphone's level, so a participant sees the microphone works before
// joining. An AudioContext may only start after the user touched the page.
function startMeter() {
  stopMeter();
  if (!local.mic || pageState !== 'prejoin') return;
  if (!(navigator.userActivation && navigator.userActivation.hasBeenActive)) {
    window.addEventListener('pointerdown', startMeter, { once: true });
    return;
  }
  try {
    const ctx = new AudioContext();
    const an = ctx.createAnalyser();
    an.fftSize = 512;
    ctx.createMediaStreamSource(new MediaStream([local.mic])).connect(an);
    const buf = new Float32Array(an.fftSize);
    const step = () => {
      if (!local.meter || local.meter.ctx !== ctx) return;
      an.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const x of buf) sum += x * x;
      const level = Math.min(1, Math.sqrt(sum / buf.length) * 4);
      el.meter.style.setProperty('--level', (local.mic && local.mic.enabled ? level : 0).toFixed(3));
      local.meter.raf = requestAnimationFrame(step);
    };
    local.meter = { ctx, raf: requestAnimationFrame(step) };
  } catch {
    local.meter = null;
  }
}

function stopMeter() {
  if (!local.meter) return;
  cancelAnimationFrame(local.meter.raf);
  local.meter.ctx.close().catch(() => {});
  local.meter = null;
  el.meter.style.setProperty('--level', '0');
}

el.preMic.addEventListener('click', () => setMicEnabled(!(local.mic && local.micOn)));
el.preCam.addEventListener('click', () => setCamEnabled(!(local.cam && local.camOn)));
el.retry.addEventListener('click', () => {
  local.micOn = true;
  local.camOn = true;
  local.checking = checkMedia();
});

// --- own microphone, camera and screen

/** Turns the microphone on or off (the track sends silence while off). */
async function setMicEnabled(on) {
  on = !!on;
  if (on && !local.mic && canPublish) {
    const { stream, note } = await getMedia(true, false, { microphone: el.micSelect.value });
    if (!stream) {
      toast(t(note));
      return false;
    }
    local.micOn = true;
    setLocalMic(stream.getAudioTracks()[0]);
    if (client) await client.setLocalTrack('microphone', local.mic, local.stream);
  }
  local.micOn = on;
  if (local.mic) local.mic.enabled = on;
  if (client && local.mic) client.setMuted('audio', !on);
  renderNote();
  renderControls();
  if (selfTile) renderTile(selfTile);
  renderPeople();
  return !!local.mic;
}

/** Starts or stops the camera: a stopped camera is released (its light goes off). */
async function setCamEnabled(on) {
  if (!on) {
    local.camOn = false;
    if (client) await client.setLocalTrack('camera', null);
    setLocalCam(null);
    if (client) client.setMuted('video', true);
  } else {
    const { stream, note } = await getMedia(false, true, { camera: el.camSelect.value });
    if (!stream) {
      toast(t(note));
      return false;
    }
    local.camOn = true;
    setLocalCam(stream.getVideoTracks()[0]);
    if (client) {
      await client.setLocalTrack('camera', local.cam, local.stream);
      client.setMuted('video', false);
    }
  }
  renderNote();
  renderControls();
  if (selfTile) renderTile(selfTile);
  renderPeople();
  layout();
  return true;
}

async function toggleScreen() {
  if (local.screen) {
    stopScreen();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: false });
  } catch (err) {
    if (err && err.name !== 'NotAllowedError' && err.name !== 'AbortError') toast(t('notice.screenfailed', { error: err.message || String(err) }));
    return;
  }
  const track = stream.getVideoTracks()[0];
  if (!track) return;
  if ('contentHint' in track) track.contentHint = 'detail';
  track.addEventListener('ended', stopScreen);
  local.screen = track;
  selfScreenTile = makeTile({ identity: selfId(), self: true, screen: true });
  attachVideo(selfScreenTile, track);
  renderTile(selfScreenTile);
  if (client) client.setLocalTrack('screen', track, stream);
  renderControls();
  layout();
}

function stopScreen() {
  if (!local.screen) return;
  local.screen.stop();
  local.screen = null;
  if (client) client.setLocalTrack('screen', null);
  if (selfScreenTile) {
    dropTile(selfScreenTile);
    selfScreenTile = null;
  }
  renderControls();
  layout();
}

function publishLocal() {
  if (!client || !canPublish) return;
  if (local.mic) client.setLocalTrack('microphone', local.mic, local.stream);
  if (local.cam && local.camOn) client.setLocalTrack('camera', local.cam, local.stream);
  client.setMuted('audio', !local.micOn || !local.mic);
  client.setMuted('video', !local.camOn || !local.cam);
}

function renderControls() {
  const micOn = !!local.mic && local.micOn;
  const camOn = !!local.cam && local.camOn;
  const set = (btn, on, labelOn, labelOff) => {
    btn.setAttribute('aria-pressed', String(!on));
    btn.dataset.on = String(on);
    btn.querySelector('.label').textContent = on ? labelOn : labelOff;
  };
  set(el.ctlMic, micOn, t('ctl.mic.mute'), t('ctl.mic.unmute'));
  set(el.ctlCam, camOn, t('ctl.cam.stop'), t('ctl.cam.start'));
  el.ctlScreen.setAttribute('aria-pressed', String(!!local.screen));
  el.ctlScreen.dataset.active = String(!!local.screen);
  el.ctlScreen.querySelector('.label').textContent = local.screen ? t('ctl.screen.stop') : t('ctl.screen.start');
  el.ctlMic.disabled = !canPublish;
  el.ctlCam.disabled = !canPublish;
  el.ctlScreen.hidden = !canPublish || !(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
  el.peopleCount.textContent = client && pageState === 'joined' ? String(client.participants.size + 1) : '';
  el.chatUnread.hidden = unread === 0;
  el.chatUnread.textContent = unread > 99 ? '99+' : String(unread);
  el.ctlChat.setAttribute('aria-pressed', String(panel === 'chat'));
  el.ctlPeople.setAttribute('aria-pressed', String(panel === 'people'));
}

el.ctlMic.addEventListener('click', () => setMicEnabled(!(local.mic && local.micOn)));
el.ctlCam.addEventListener('click', () => setCamEnabled(!(local.cam && local.camOn)));
el.ctlScreen.addEventListener('click', toggleScreen);
el.ctlLeave.addEventListener('click', leave);

// --- tiles

function selfId() {
  return (client && client.self && client.self.identity) || (link.claims && link.claims.sub) || '';
}

function selfName() {
  return (client && client.self && client.self.name) || (link.claims && link.claims.name) || '';
}

function nameOf(identity) {
  if (identity === selfId()) return selfName();
  const p = client && client.participants.get(identity);
  return (p && p.name) || identity;
}

function allTiles() {
  return [...tiles.values(), ...screens.values(), selfTile, selfScreenTile].filter(Boolean);
}

function makeTile({ identity, self = false, screen = false }) {
  const video = h('video', { muted: true, autoplay: true, playsInline: true });
  video.setAttribute('muted', '');
  video.setAttribute('playsinline', '');
  const tile = {
    identity,
    self,
    screen,
    track: null,
    presented: 0,
    frameGen: 0,
    video,
    avatar: h('div', { class: 'avatar', 'aria-hidden': 'true' }),
    paused: h('div', { class: 'paused-note' }),
    name: h('span', { class: 'name' }),
    role: h('span', { class: 'role' }),
    micOff: icon('micOff'),
    spot: icon('star'),
    menuBtn: null,
    menu: null,
  };
  tile.micOff.classList.add('mic-off');
  tile.spot.classList.add('spot');
  const label = h('div', { class: 'label' }, tile.micOff, tile.spot, tile.name, tile.role);
  tile.el = h('div', { class: screen ? 'tile screen' : 'tile' }, video, tile.avatar, tile.paused, label);
  if (!self && !screen) tile.el.dataset.identity = identity;
  if (screen) tile.el.dataset.screenOf = identity;
  if (self) tile.el.dataset.self = 'true';
  tile.el.addEventListener('click', (ev) => {
    if (ev.target.closest('.menu, .menu-btn')) return;
    pinned = pinned === tile ? null : tile;
    layout();
  });
  if (!self && !screen) {
    tile.menuBtn = h('button', { class: 'menu-btn', type: 'button' }, icon('more'));
    tile.menu = h('div', { class: 'menu', hidden: true });
    tile.menuBtn.addEventListener('click', () => {
      const open = tile.menu.hidden;
      closeMenus();
      if (open) {
        tile.menu.replaceChildren(...hostButtons(identity));
        tile.menu.hidden = false;
      }
    });
    tile.el.append(tile.menuBtn, tile.menu);
  }
  return tile;
}

function closeMenus() {
  for (const tile of tiles.values()) if (tile.menu) tile.menu.hidden = true;
}

document.addEventListener('click', (ev) => {
  if (!ev.target.closest('.menu, .menu-btn')) closeMenus();
});

function dropTile(tile) {
  tile.frameGen++;
  tile.video.srcObject = null;
  tile.el.remove();
  if (pinned === tile) pinned = null;
}

function attachVideo(tile, track) {
  if (tile.track === track) return;
  tile.track = track || null;
  tile.frameGen++;
  tile.presented = 0;
  tile.video.srcObject = track ? new MediaStream([track]) : null;
  if (!track) return;
  tile.video.play().catch(() => {});
  if ('requestVideoFrameCallback' in HTMLVideoElement.prototype) {
    const gen = tile.frameGen;
    const step = (_now, meta) => {
      if (gen !== tile.frameGen) return;
      tile.presented = meta.presentedFrames;
      tile.video.requestVideoFrameCallback(step);
    };
    tile.video.requestVideoFrameCallback(step);
  }
}

function initialOf(name) {
  const s = (name || '?').trim();
  return s ? [...s][0].toUpperCase() : '?';
}

// trackState says whether a remote participant's microphone and camera are
// off, from their published tracks.
function trackState(identity) {
  const p = client && client.participants.get(identity);
  let mic = false;
  let cam = false;
  if (p) {
    for (const info of p.tracks.values()) {
      if (info.source === 'microphone' && !info.muted) mic = true;
      if (info.source === 'camera' && !info.muted) cam = true;
    }
  }
  return { micOff: !mic, camOff: !cam, role: p ? p.role : '' };
}

function renderTile(tile) {
  const id = tile.identity;
  const name = nameOf(id);
  const spotlight = !!(client && client.spotlight && client.spotlight === id) && !tile.screen;
  let micOff;
  let camOff;
  let role;
  if (tile.self) {
    micOff = !local.mic || !local.micOn;
    camOff = tile.screen ? false : !local.cam || !local.camOn;
    role = (client && client.self && client.self.role) || (link.claims && link.claims.role) || '';
  } else {
    ({ micOff, camOff, role } = trackState(id));
    if (tile.screen) camOff = !tile.track;
    else if (!tile.track) camOff = true;
  }
  const paused = !tile.self && !!(client && client.paused.get(id));
  tile.name.textContent = tile.screen
    ? (tile.self ? t('tile.myscreen') : t('tile.screen', { name }))
    : (tile.self ? t('tile.you', { name }) : name);
  tile.role.textContent = role === 'host' && !tile.screen ? t('role.host') : '';
  tile.role.hidden = !tile.role.textContent;
  tile.avatar.textContent = initialOf(name);
  tile.paused.textContent = t('tile.paused');
  tile.el.dataset.micOff = String(!tile.screen && micOff);
  tile.el.dataset.camOff = String(camOff);
  tile.el.dataset.paused = String(paused);
  tile.el.dataset.spotlight = String(spotlight);
  tile.micOff.setAttribute('aria-label', t('tile.muted'));
  if (tile.menuBtn) {
    tile.menuBtn.hidden = !(client && client.can('admin'));
    tile.menuBtn.setAttribute('aria-label', t('host.menu', { name }));
    tile.menuBtn.title = t('host.menu', { name });
  }
  renderSpeaking(tile);
}

function renderSpeaking(tile) {
  const list = client ? client.speakers : [];
  const i = tile.screen ? -1 : list.findIndex((s) => s.identity === tile.identity);
  tile.el.dataset.speaking = String(i >= 0);
  tile.el.classList.toggle('loudest', i === 0);
}

function ensureTile(identity) {
  let tile = tiles.get(identity);
  if (!tile) {
    tile = makeTile({ identity });
    tiles.set(identity, tile);
  }
  renderTile(tile);
  return tile;
}

function dropParticipant(identity) {
  const tile = tiles.get(identity);
  if (tile) dropTile(tile);
  tiles.delete(identity);
  const sc = screens.get(identity);
  if (sc) dropTile(sc);
  screens.delete(identity);
  sentLayers.delete(identity);
}

// --- layout: the main view and the grid

function mainTile() {
  const spot = client && client.spotlight;
  if (spot) {
    if (spot === selfId() && selfTile) return selfTile;
    if (tiles.has(spot)) return tiles.get(spot);
  }
  if (pinned && allTiles().includes(pinned)) return pinned;
  const shares = [...screens.values()];
  return shares.length ? shares[shares.length - 1] : null;
}

function layout() {
  if (pageState === 'prejoin') return;
  const main = mainTile();
  el.stage.classList.toggle('has-main', !!main);
  if (main) {
    if (main.el.parentElement !== el.main) el.main.replaceChildren(main.el);
  } else {
    el.main.replaceChildren();
  }
  const order = [...screens.values(), ...tiles.values(), selfScreenTile, selfTile].filter((x) => x && x !== main);
  order.forEach((tile, i) => {
    if (el.grid.children[i] !== tile.el) el.grid.insertBefore(tile.el, el.grid.children[i] || null);
  });
  while (el.grid.children.length > order.length) el.grid.lastChild.remove();
  for (const tile of allTiles()) {
    tile.el.dataset.main = String(tile === main);
    if (tile.track && tile.video.paused) tile.video.play().catch(() => {});
  }
  fitGrid(order.length);
  scheduleLayers();
}

// fitGrid chooses the number of columns that shows the tiles largest in
// the stage, when there is no main view (with one, the grid is a strip).
function fitGrid(n) {
  const style = el.grid.style;
  if (el.stage.classList.contains('has-main') || n === 0) {
    style.removeProperty('--cols');
    style.removeProperty('--tile-w');
    return;
  }
  const gap = 8;
  const W = el.grid.clientWidth;
  const H = el.grid.clientHeight;
  if (W <= 0 || H <= 0) return;
  const ar = W < H ? 4 / 3 : 16 / 9;
  let best = { cols: 1, w: 0 };
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    let w = (W - gap * (cols - 1)) / cols;
    if ((w / ar) * rows + gap * (rows - 1) > H) w = ((H - gap * (rows - 1)) / rows) * ar;
    if (w > best.w) best = { cols, w };
  }
  style.setProperty('--cols', String(best.cols));
  style.setProperty('--tile-w', `${Math.floor(best.w)}px`);
  style.setProperty('--tile-ar', ar > 1.5 ? '16 / 9' : '4 / 3');
}

new ResizeObserver(() => layout()).observe(el.stage);
el.grid.addEventListener('scroll', () => scheduleLayers(), { passive: true });
document.addEventListener('visibilitychange', () => scheduleLayers());

// --- layers: the quality each participant is shown at

let layerTimer = 0;
function scheduleLayers() {
  clearTimeout(layerTimer);
  layerTimer = setTimeout(updateLayers, 200);
}

const RANK = { off: 0, low: 1, medium: 2, high: 3 };

function tileQuality(tile) {
  if (document.visibilityState === 'hidden' || !tile.el.isConnected) return 'off';
  if (tile.el.parentElement === el.main) return 'high';
  const r = tile.el.getBoundingClientRect();
  const g = el.grid.getBoundingClientRect();
  const visible = r.width > 0 && r.height > 0 && r.right > g.left && r.left < g.right && r.bottom > g.top && r.top < g.bottom &&
    r.bottom > 0 && r.top < window.innerHeight;
  if (!visible) return 'off';
  return r.width > 320 ? 'medium' : 'low';
}

function updateLayers() {
  if (!client || pageState !== 'joined') return;
  for (const [id, p] of client.participants) {
    if (![...p.tracks.values()].some((info) => info.kind === 'video')) continue;
    let q = 'off';
    for (const tile of [tiles.get(id), screens.get(id)]) {
      if (tile) {
        const tq = tileQuality(tile);
        if (RANK[tq] > RANK[q]) q = tq;
      }
    }
    if (sentLayers.get(id) !== q && client.sendLayer(id, q)) sentLayers.set(id, q);
  }
}

// --- remote media

function addAudio(track) {
  const a = h('audio', { autoplay: true });
  a.srcObject = new MediaStream([track]);
  audios.set(track.id, a);
  el.audioSink.append(a);
  a.play().catch(() => soundBlocked());
}

let soundToast = null;
function soundBlocked() {
  if (soundToast) return;
  soundToast = h('button', { class: 'toast action', type: 'button', text: t('notice.audioblocked') });
  soundToast.addEventListener('click', () => {
    for (const a of audios.values()) a.play().catch(() => {});
    soundToast.remove();
    soundToast = null;
  });
  el.toasts.append(soundToast);
}

function onRemoteTrack({ identity, info, track }) {
  if (track.kind === 'audio') {
    if (!audios.has(track.id)) addAudio(track);
    return;
  }
  if (info.source === 'screen') {
    let tile = screens.get(identity);
    if (!tile) {
      tile = makeTile({ identity, screen: true });
      screens.set(identity, tile);
    }
    attachVideo(tile, track);
    renderTile(tile);
  } else {
    attachVideo(ensureTile(identity), track);
    renderTile(tiles.get(identity));
  }
  layout();
}

function onRemoteTrackGone({ identity, info, track }) {
  if (track.kind === 'audio') {
    const a = audios.get(track.id);
    if (a) {
      a.srcObject = null;
      a.remove();
      audios.delete(track.id);
    }
    return;
  }
  if (info.source === 'screen') {
    const tile = screens.get(identity);
    if (tile && tile.track === track) {
      dropTile(tile);
      screens.delete(identity);
    }
  } else {
    const tile = tiles.get(identity);
    if (tile && tile.track === track) attachVideo(tile, null);
    if (tile) renderTile(tile);
  }
  layout();
}

// --- people and host controls

function hostButtons(identity) {
  if (!client || !client.can('admin')) return [];
  const name = nameOf(identity);
  const isSelf = identity === selfId();
  const { micOff, camOff } = isSelf ? { micOff: !local.micOn || !local.mic, camOff: !local.camOn || !local.cam } : trackState(identity);
  const spotlit = client.spotlight === identity;
  const btn = (iconName, text, fn, cls = '') => {
    const b = h('button', { type: 'button', class: `host-btn ${cls}` }, icon(iconName), h('span', { text }));
    b.addEventListener('click', (ev) => {
      ev.stopPropagation();
      closeMenus();
      fn();
    });
    return b;
  };
  const out = [];
  if (!isSelf && !micOff) out.push(btn('micOff', t('host.mute'), () => client.host('mute', { identity, kind: 'audio' })));
  if (!isSelf && !camOff) out.push(btn('camOff', t('host.stopvideo'), () => client.host('mute', { identity, kind: 'video' })));
  out.push(btn('star', spotlit ? t('host.unspotlight') : t('host.spotlight'), () => client.host('spotlight', { identity: spotlit ? '' : identity })));
  if (!isSelf) {
    out.push(btn('remove', t('host.remove'), async () => {
      if (await confirmDialog(t('host.removeconfirm', { name }))) client.host('remove', { identity });
    }, 'danger'));
  }
  return out;
}

function renderPeople() {
  if (!client || panel !== 'people') return;
  const admin = client.can('admin');
  el.hostRoom.hidden = !admin;
  const locked = !!(client.room && client.room.locked);
  el.lock.replaceChildren(icon(locked ? 'unlock' : 'lock'), h('span', { text: locked ? t('ctl.unlock') : t('ctl.lock') }));
  const row = (identity, self) => {
    const name = nameOf(identity);
    const st = self
      ? { micOff: !local.mic || !local.micOn, camOff: !local.cam || !local.camOn, role: (client.self && client.self.role) || '' }
      : trackState(identity);
    const li = h('li', { class: 'person' },
      h('span', { class: 'avatar small', text: initialOf(name), 'aria-hidden': 'true' }),
      h('span', { class: 'person-name', text: self ? t('tile.you', { name }) : name }),
      st.role ? h('span', { class: 'role', text: has(`role.${st.role}`) ? t(`role.${st.role}`) : st.role }) : null,
      h('span', { class: 'person-state' }, st.micOff ? icon('micOff') : icon('mic'), st.camOff ? icon('camOff') : icon('cam')));
    li.dataset.person = identity;
    if (admin) li.append(h('div', { class: 'person-actions' }, ...hostButtons(identity)));
    return li;
  };
  el.people.replaceChildren(row(selfId(), true), ...[...client.participants.keys()].map((id) => row(id, false)));
}

el.lock.addEventListener('click', () => {
  if (client && client.room) client.host('lock', { locked: !client.room.locked });
});

function renderPanel() {
  el.panel.hidden = !panel;
  el.meeting.classList.toggle('with-panel', !!panel);
  el.peoplePanel.hidden = panel !== 'people';
  el.chatPanel.hidden = panel !== 'chat';
  if (panel === 'people') {
    el.panelTitle.textContent = t('people.title', { n: client ? client.participants.size + 1 : 1 });
    renderPeople();
  } else if (panel === 'chat') {
    el.panelTitle.textContent = t('chat.title');
    unread = 0;
    const can = !!client && client.can('publish_data');
    el.chatInput.disabled = !can;
    el.chatSend.disabled = !can;
    el.chatInput.placeholder = can ? t('chat.placeholder') : t('chat.unavailable');
  }
  renderControls();
}

function togglePanel(name) {
  panel = panel === name ? '' : name;
  renderPanel();
  if (panel === 'chat' && !el.chatInput.disabled && window.matchMedia('(pointer: fine)').matches) el.chatInput.focus();
  layout();
}

el.ctlPeople.addEventListener('click', () => togglePanel('people'));
el.ctlChat.addEventListener('click', () => togglePanel('chat'));
el.panelClose.addEventListener('click', () => togglePanel(panel));

// --- chat

function timeOf(at) {
  const d = at ? new Date(at) : new Date();
  return (isNaN(d) ? new Date() : d).toLocaleTimeString(lang() === 'zh' ? 'zh-CN' : 'en', { hour: '2-digit', minute: '2-digit' });
}

function addChat(identity, name, text, at) {
  const mine = identity === selfId();
  const li = h('li', { class: mine ? 'msg mine' : 'msg' },
    h('div', { class: 'msg-head' }, h('span', { class: 'msg-name', text: mine ? t('tile.you', { name }) : name }), h('time', { text: timeOf(at) })),
    h('div', { class: 'msg-text', text }));
  el.chatLog.append(li);
  while (el.chatLog.children.length > 300) el.chatLog.firstChild.remove();
  el.chatEmpty.hidden = true;
  li.scrollIntoView({ block: 'end' });
  if (panel !== 'chat' && !mine) {
    unread++;
    renderControls();
  }
}

el.chatForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = el.chatInput.value.trim();
  if (!text || !client) return;
  if (new TextEncoder().encode(text).length > 2000) {
    toast(t('chat.toolong'));
    return;
  }
  if (!client.sendChat(text)) {
    toast(t('chat.notsent'));
    return;
  }
  pendingOwnChat.push(text);
  if (pendingOwnChat.length > 20) pendingOwnChat.shift();
  addChat(selfId(), selfName(), text, '');
  el.chatInput.value = '';
});

function onChat(m) {
  if (m.identity === selfId()) {
    const i = pendingOwnChat.indexOf(m.text);
    if (i >= 0) {
      pendingOwnChat.splice(i, 1);
      return;
    }
  }
  addChat(m.identity, m.name || nameOf(m.identity), m.text, m.at);
}

// --- notices and dialogs

function toast(text) {
  const n = h('div', { class: 'toast', text });
  el.toasts.append(n);
  const others = el.toasts.querySelectorAll('.toast:not(.action)');
  if (others.length > 3) others[0].remove();
  setTimeout(() => n.remove(), 5000);
}

function confirmDialog(text) {
  return new Promise((resolve) => {
    el.confirmText.textContent = text;
    el.confirm.returnValue = '';
    el.confirm.addEventListener('close', () => resolve(el.confirm.returnValue === 'ok'), { once: true });
    el.confirm.showModal();
  });
}

function askConsent(kind) {
  if (!canPublish) return;
  el.consentText.textContent = kind === 'video' ? t('consent.video') : t('consent.audio');
  if (el.consent.open) return;
  el.consent.returnValue = '';
  el.consent.dataset.kind = kind;
  el.consent.addEventListener('close', async () => {
    if (el.consent.returnValue !== 'accept') return;
    if (el.consent.dataset.kind === 'video') await setCamEnabled(true);
    else await setMicEnabled(true);
  }, { once: true });
  el.consent.showModal();
}

// --- the meeting

function wire(c) {
  c.addEventListener('state', (ev) => {
    const { state, code } = ev.detail;
    connCode = code;
    mediaTrouble = false;
    const page = { connecting: 'joining', joined: 'joined', reconnecting: 'reconnecting', failed: 'failed', left: 'left' }[state];
    if (state === 'reconnecting') {
      // The server dropped everyone's tracks with the connection: they come
      // back with the next `joined`.
      for (const id of [...tiles.keys()]) dropParticipant(id);
    }
    if (state === 'failed' || state === 'left') endLocalMedia();
    setPageState(page || pageState);
    renderControls();
    layout();
  });
  c.addEventListener('joined', () => {
    for (const tile of [selfTile, selfScreenTile]) if (tile) tile.identity = selfId();
    for (const id of [...tiles.keys()]) if (!c.participants.has(id)) dropParticipant(id);
    for (const id of c.participants.keys()) ensureTile(id);
    sentLayers.clear();
    renderLanguage();
    layout();
  });
  c.addEventListener('participant_joined', (ev) => {
    const p = ev.detail.participant;
    if (!p || p.identity === selfId()) return;
    ensureTile(p.identity);
    toast(t('notice.joined', { name: nameOf(p.identity) }));
    renderPanel();
    layout();
  });
  c.addEventListener('participant_left', (ev) => {
    const { identity, reason } = ev.detail;
    if (identity === selfId()) return;
    const name = tiles.has(identity) ? tiles.get(identity).name.textContent : identity;
    departed.push({ identity, reason: reason || '' });
    dropParticipant(identity);
    toast(tx('left.', reason || 'left', 'left.left', { name }));
    renderPanel();
    layout();
  });
  const refresh = (ev) => {
    const id = ev.detail.identity;
    const tile = tiles.get(id);
    if (tile) renderTile(tile);
    const sc = screens.get(id);
    if (sc) renderTile(sc);
    renderPeople();
    scheduleLayers();
  };
  c.addEventListener('track_published', refresh);
  c.addEventListener('track_unpublished', refresh);
  c.addEventListener('layer_changed', refresh);
  c.addEventListener('mute_changed', (ev) => {
    const { identity, kind, muted, by } = ev.detail;
    if (identity === selfId()) {
      if (muted && by && by !== selfId()) {
        if (kind === 'audio' && local.micOn) {
          setMicEnabled(false);
          toast(t('notice.mutedby', { name: nameOf(by) }));
        } else if (kind === 'video' && local.camOn && local.cam) {
          setCamEnabled(false);
          toast(t('notice.camoffby', { name: nameOf(by) }));
        }
      }
      return;
    }
    refresh(ev);
  });
  c.addEventListener('speakers', () => {
    for (const tile of allTiles()) renderSpeaking(tile);
  });
  c.addEventListener('spotlight', (ev) => {
    const id = c.spotlight;
    if (id) toast(id === selfId() ? t('notice.spotlightme') : t('notice.spotlight', { name: nameOf(id) }));
    else if (ev.detail.by) toast(t('notice.spotlightend'));
    for (const tile of allTiles()) renderTile(tile);
    renderPeople();
    layout();
  });
  c.addEventListener('unmute_request', (ev) => askConsent(ev.detail.kind || 'audio'));
  c.addEventListener('room_locked', (ev) => {
    toast(ev.detail.locked ? t('notice.locked') : t('notice.unlocked'));
    renderStatus();
    renderPeople();
  });
  c.addEventListener('chat', (ev) => onChat(ev.detail));
  c.addEventListener('error', (ev) => {
    const code = ev.detail.code;
    if (['bad_token', 'room_not_found', 'room_locked', 'room_full', 'removed'].includes(code)) return;
    toast(tx('err.', code, 'err.unknown'));
  });
  c.addEventListener('problem', (ev) => {
    if (ev.detail.code === 'forbidden' || ev.detail.code === 'bad_sdp') toast(tx('err.', ev.detail.code, 'err.unknown'));
    else console.warn('lookout-meet:', ev.detail.code, ev.detail.message);
  });
  c.addEventListener('media', () => {
    const bad = (pc) => pc && (pc.connectionState === 'failed' || pc.connectionState === 'disconnected');
    mediaTrouble = bad(c.pub) || bad(c.sub);
    renderStatus();
  });
  c.addEventListener('remotetrack', (ev) => onRemoteTrack(ev.detail));
  c.addEventListener('remotetrackgone', (ev) => onRemoteTrackGone(ev.detail));
}

function join() {
  if (client || !link.token) return;
  stopMeter();
  el.prejoin.hidden = true;
  el.meeting.hidden = false;
  el.controls.hidden = false;
  selfTile = makeTile({ identity: selfId(), self: true });
  attachVideo(selfTile, local.camOn ? local.cam : null);
  renderTile(selfTile);
  client = new MeetingClient(link.token);
  wire(client);
  publishLocal();
  setPageState('joining');
  renderLanguage();
  client.connect();
  layout();
}

el.join.addEventListener('click', join);

function endLocalMedia() {
  stopScreen();
  stopMeter();
  for (const tr of [local.mic, local.cam]) if (tr) tr.stop();
  for (const a of audios.values()) {
    a.srcObject = null;
    a.remove();
  }
  audios.clear();
}

function leave() {
  if (!client) return;
  client.leave();
}

window.addEventListener('pagehide', () => {
  if (client && client.state !== 'left' && client.state !== 'failed') client.leave();
});

// --- for tests and tools

/** A tile's video as shown: its size, and the frames decoded and presented. */
function shownStats(tile) {
  const v = tile.video;
  const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
  return { width: v.videoWidth, height: v.videoHeight, frames: q ? q.totalVideoFrames : tile.presented, presented: tile.presented };
}

Object.defineProperty(window, 'lookoutMeet', {
  value: Object.freeze({
    /** The identities of the other participants. */
    participants: () => (client ? [...client.participants.keys()] : []),
    /** The last speakers list: [{identity, level}], loudest first. */
    speakers: () => (client ? client.speakers.map((s) => ({ identity: s.identity, level: s.level })) : []),
    /** A participant's camera video as shown: size and frames decoded (and presented). */
    videoStats: (identity) => {
      const tile = identity === selfId() ? selfTile : tiles.get(identity);
      return tile ? shownStats(tile) : null;
    },
    self: () => selfId(),
    state: () => document.body.dataset.state,
    /** Who left, and why, in order. */
    departed: () => departed.map((d) => ({ ...d })),
    /** Turns the microphone on or off, as the button does. */
    setMicEnabled: (on) => setMicEnabled(on),
    /** Restarts ICE of both media connections, as after a network change. */
    restartIce: () => client && client.restartIce(),
    /** What the camera's video sent, summed over its simulcast layers (WebRTC's outbound-rtp statistics). */
    sendStats: async () => {
      const sum = { packets: 0, retransmitted: 0, nacks: 0 };
      if (!client || !client.pub) return sum;
      (await client.pub.getStats()).forEach((s) => {
        if (s.type !== 'outbound-rtp' || s.kind !== 'video') return;
        sum.packets += s.packetsSent || 0;
        sum.retransmitted += s.retransmittedPacketsSent || 0;
        sum.nacks += s.nackCount || 0;
      });
      return sum;
    },
    /** The camera's simulcast layers as the browser sends them (outbound-rtp per rid): what a stalled viewer is read against. */
    layerStats: async () => {
      const out = [];
      if (!client || !client.pub) return out;
      (await client.pub.getStats()).forEach((s) => {
        if (s.type !== 'outbound-rtp' || s.kind !== 'video') return;
        out.push({
          rid: s.rid || '', active: s.active, width: s.frameWidth || 0, fps: s.framesPerSecond || 0,
          encoded: s.framesEncoded || 0, keyframes: s.keyFramesEncoded || 0, plis: s.pliCount || 0, firs: s.firCount || 0,
          limited: s.qualityLimitationReason || '',
        });
      });
      return out.sort((a, b) => a.rid.localeCompare(b.rid));
    },
    /** How a participant's camera video arrives here (inbound-rtp, with the candidate pair's state): what a stalled tile is read against. */
    recvStats: async (identity) => {
      const tile = tiles.get(identity);
      const stream = tile && tile.video.srcObject;
      const track = stream && stream.getVideoTracks()[0];
      if (!track || !client || !client.sub) return null;
      const out = {
        track: track.readyState, muted: track.muted, server_paused: !!client.paused.get(identity),
        shown: { ...shownStats(tile), paused: tile.video.paused, ready: tile.video.readyState },
      };
      (await client.sub.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video' && s.trackIdentifier === track.id) {
          Object.assign(out, {
            ssrc: s.ssrc, packets: s.packetsReceived || 0, lost: s.packetsLost || 0, width: s.frameWidth || 0,
            decoded: s.framesDecoded || 0, keyframes: s.keyFramesDecoded || 0, dropped: s.framesDropped || 0,
            plis: s.pliCount || 0, firs: s.firCount || 0, nacks: s.nackCount || 0,
            freezes: s.freezeCount || 0, frozen_s: s.totalFreezesDuration || 0,
          });
        }
        if (s.type === 'candidate-pair' && s.nominated) out.pair = `${s.state} ${s.bytesReceived || 0}B`;
      });
      return out;
    },
    /** The ICE usernames in use: this side's on the publisher connection, the server's on the subscriber one. */
    iceUfrags: () => {
      const ufrag = (d) => (d && (d.sdp.match(/a=ice-ufrag:(\S+)/) || [])[1]) || '';
      return { publisher: ufrag(client && client.pub && client.pub.localDescription), subscriber: ufrag(client && client.sub && client.sub.remoteDescription) };
    },
  }),
  writable: false,
  configurable: false,
});

// --- start

renderLanguage();
el.join.disabled = !link.token;
if (!link.token) {
  document.body.dataset.media = 'ready';
} else {
  local.checking = checkMedia();
}
