// The player page: takes a camera and a token from the URL fragment
// (#camera=ID&token=T) or from the form, plays the camera over WHEP, shows
// the state in Chinese with English beside it, and leaves the session when
// the page goes away.
//
// For tests and tools, <body> carries data-state (idle, connecting,
// playing, failed) and, once a frame was shown, data-first-frame-ms:
// milliseconds from the page's navigation to its first video frame.

import { play } from './whep.js';

const STATES = {
  idle: ['等待输入', 'Waiting for a camera'],
  connecting: ['连接中', 'Connecting'],
  playing: ['播放中', 'Playing'],
  failed: ['连接失败', 'Connection failed'],
};

// noVideoMs is how long a connection may go without a first frame before
// the page calls it failed.
const noVideoMs = 20000;

const form = document.getElementById('pick');
const video = document.getElementById('video');
const statusEl = document.getElementById('status');
const errorEl = document.getElementById('error');
const statsEl = document.getElementById('stats');

let session = null;
let attempt = 0;
let statsTimer = 0;
let noVideoTimer = 0;

function setState(name, detail = '') {
  document.body.dataset.state = name;
  const [zh, en] = STATES[name];
  statusEl.querySelector('.zh').textContent = zh;
  statusEl.querySelector('.en').textContent = en;
  errorEl.textContent = detail;
  errorEl.hidden = !detail;
}

function showStats(firstFrameMs) {
  const q = video.getVideoPlaybackQuality();
  statsEl.textContent = `${video.videoWidth}×${video.videoHeight} · ` +
    `首帧 first frame ${Math.round(firstFrameMs)} ms · ` +
    `帧 frames ${q.totalVideoFrames} · 丢帧 dropped ${q.droppedVideoFrames}`;
}

function stop() {
  attempt++;
  clearInterval(statsTimer);
  clearTimeout(noVideoTimer);
  if (session) {
    session.close();
    session = null;
  }
  video.srcObject = null;
}

async function start(camera, token) {
  stop();
  const mine = attempt;
  delete document.body.dataset.firstFrameMs;
  statsEl.textContent = '';
  setState('connecting');
  const failed = (msg) => {
    if (mine !== attempt) return;
    stop();
    setState('failed', msg);
  };
  noVideoTimer = setTimeout(() => failed(`no video within ${noVideoMs / 1000} s`), noVideoMs);
  video.requestVideoFrameCallback(() => {
    if (mine !== attempt) return;
    clearTimeout(noVideoTimer);
    const first = performance.now();
    document.body.dataset.firstFrameMs = String(Math.round(first));
    setState('playing');
    showStats(first);
    statsTimer = setInterval(() => showStats(first), 500);
  });
  try {
    const s = await play(`/api/v1/whep/cameras/${encodeURIComponent(camera)}`, token, video, {
      onConnectionState: (st) => {
        if (st === 'failed') failed('ICE/DTLS connection failed');
      },
    });
    if (mine !== attempt) {
      s.close();
      return;
    }
    session = s;
  } catch (err) {
    failed(err.message || String(err));
  }
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const camera = form.elements.camera.value.trim();
  const token = form.elements.token.value.trim();
  history.replaceState(null, '', `#camera=${encodeURIComponent(camera)}`);
  start(camera, token);
});

window.addEventListener('pagehide', stop);

const frag = new URLSearchParams(location.hash.slice(1));
const camera = frag.get('camera') || '';
const token = frag.get('token') || '';
form.elements.camera.value = camera;
form.elements.token.value = token;
if (token) {
  // The token leaves the address bar and the history entry at once.
  history.replaceState(null, '', `#camera=${encodeURIComponent(camera)}`);
}
if (camera && token) {
  start(camera, token);
} else {
  setState('idle');
}
