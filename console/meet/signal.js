// The meeting signaling client (docs/signaling.md): one WebSocket to
// /rtc/signal, a publisher peer connection that this client offers (camera,
// microphone, screen, and the `chat` data channel) and a subscriber peer
// connection that the server offers (everyone else's tracks, and its own
// `chat` data channel).
//
// It knows nothing of the page: it keeps the meeting's state (who is there,
// their tracks, the speakers, the spotlight) and tells the page of changes
// as events. Every server message is dispatched as an event of its type
// (detail: the message), after the state is updated; and:
//
//   state           {state, code, message}: connecting, waiting (in the
//                   room's lobby: the join token says lobby, and a host has
//                   not admitted this participant yet; joined follows when
//                   one does), joined, reconnecting, failed (code says why),
//                   left (code: left, removed, replaced, rejected (a host
//                   turned this participant away from the lobby), closed
//                   (the room ended; only with the endWithRoom option))
//   remotetrack     {identity, info, track}: a participant's track arrived
//                   on the subscriber connection (info: the track_published
//                   track: id, kind, source, muted ...)
//   remotetrackgone {identity, info, track}: it went away
//   media           {target, state}: a peer connection's connectionState
//   problem         {code, message}: something went wrong that the page may
//                   want to show (a refused offer, a failed ICE restart)
//
// It reconnects by itself, with backoff, when the WebSocket drops, joining
// again with the same token (the server removed the old session at once, so
// everything starts anew: new peer connections, a new `joined`; one admitted
// from a lobby comes back without waiting while the room lasts); it
// restarts ICE when a media connection drops while the WebSocket stays up.
// Waiting in a lobby is no failure to join: it may last as long as the host
// takes, so the join's timeout ends with the `lobby` message.

const PING_MS = 15000;
// No message at all for this long (pongs included) means the WebSocket is
// dead even if the browser has not noticed.
const SILENT_MS = 40000;
const JOIN_WAIT_MS = 15000;
const ANSWER_WAIT_MS = 15000;
const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000];
// A media connection that stays disconnected this long gets an ICE
// restart; a failed one at once. Restarts of one connection are this far
// apart at least.
const DISCONNECTED_GRACE_MS = 2000;
const RESTART_SPACING_MS = 5000;

/** Simulcast encodings of a camera, lowest first (docs/signaling.md). */
export const SIMULCAST = Object.freeze([
  Object.freeze({ rid: 'l', scaleResolutionDownBy: 4, maxBitrate: 150000 }),
  Object.freeze({ rid: 'm', scaleResolutionDownBy: 2, maxBitrate: 500000 }),
  Object.freeze({ rid: 'h', maxBitrate: 1200000 }),
]);

// Errors after which joining again with the same token cannot succeed,
// and the WebSocket close codes that follow them.
const FATAL_CODES = new Set(['bad_token', 'room_not_found', 'room_locked', 'room_full', 'removed']);
const FATAL_CLOSE = new Map([[4401, 'bad_token'], [4403, 'forbidden'], [4404, 'room_not_found']]);
// The reasons to stop that end in state left rather than failed: this
// participant was sent away (or the room ended), it did not fail to join.
const LEFT_CODES = new Set(['removed', 'replaced', 'rejected', 'closed']);

/** The signaling endpoint of the page's own host. */
export function signalURL(loc = window.location) {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/rtc/signal`;
}

// sections maps each m-section's mid to the stream and track ids of its
// msid and its direction.
function sections(sdp) {
  const out = new Map();
  for (const part of sdp.split(/\r?\n(?=m=)/).slice(1)) {
    const mid = /^a=mid:(\S+)/m.exec(part);
    if (!mid) continue;
    const msid = /^a=msid:(\S+) (\S+)/m.exec(part) || /^a=ssrc:\d+ msid:(\S+) (\S+)/m.exec(part);
    const dir = /^a=(sendrecv|sendonly|recvonly|inactive)\s*$/m.exec(part);
    out.set(mid[1], {
      kind: part.slice(2, part.indexOf(' ')),
      streamId: msid ? msid[1] : '',
      trackId: msid ? msid[2] : '',
      direction: dir ? dir[1] : 'sendrecv',
      port0: /^m=\S+ 0 /.test(part),
    });
  }
  return out;
}

function sleepJitter(ms) {
  return Math.round(ms * (0.8 + Math.random() * 0.4));
}

export class MeetingClient extends EventTarget {
  /**
   * @param {string} token the join token
   * @param {{url?: string, pingMs?: number, simulcast?: boolean, endWithRoom?: boolean}} [opts]
   *   endWithRoom: the room's end (participant_left about this participant
   *   with reason closed) ends the client in state left, code closed,
   *   instead of reconnecting (which finds the room gone, or, after a
   *   server restart, the room anew)
   */
  constructor(token, opts = {}) {
    super();
    this.token = token;
    this.url = opts.url || signalURL();
    this.pingMs = opts.pingMs || PING_MS;
    this.simulcast = opts.simulcast !== false;
    this.endWithRoom = !!opts.endWithRoom;
    /** connecting | waiting | joined | reconnecting | failed | left (idle before connect) */
    this.state = 'idle';
    this.self = null;
    this.room = null;
    this.iceServers = [];
    /** @type {Map<string, {identity: string, name: string, role: string, tracks: Map<string, object>}>} */
    this.participants = new Map();
    this.spotlight = '';
    /** Who waits in the lobby, as a host is told: [{identity, name, role, since}]. */
    this.lobby = [];
    /** @type {{identity: string, level: number}[]} */
    this.speakers = [];
    /** identity -> true while the server has paused their video for us */
    this.paused = new Map();
    /** What this participant says of its own camera and microphone. */
    this.muted = { audio: false, video: false };
    // source -> {source, track, stream, transceiver, pc}
    this.local = new Map();

    this._ws = null;
    this._session = 0; // counts WebSocket connections: stale callbacks check it
    this._attempt = 0;
    this._final = false;
    this._fatal = '';
    this._fatalMessage = '';
    this._timers = new Set();
    this._pingTimer = 0;
    this._lastRx = 0;

    this._resetConnections();
    this._offerSeq = 0;
    this._waitAnswer = null;
    this._restartAt = { publisher: 0, subscriber: 0 };
    this._graceTimer = { publisher: 0, subscriber: 0 };
    // Subscriber tracks: sdp track id -> {track, streamId, kind}; and those
    // bound to a participant's published track: track id -> {identity, info, track}.
    this._recv = new Map();
    this._bound = new Map();

    this._published = false;
    this._onOnline = () => {
      if (this.state === 'reconnecting') this._reconnectNow();
    };
  }

  /** Whether the grant has a right (publish, subscribe, publish_data, admin). */
  can(right) {
    return !!(this.self && Array.isArray(this.self.rights) && this.self.rights.includes(right));
  }

  /** Connects and joins; again after a failure. */
  connect() {
    this._final = false;
    this._fatal = '';
    this._fatalMessage = '';
    this._attempt = 0;
    window.addEventListener('online', this._onOnline);
    this._setState('connecting');
    this._open();
  }

  /** Says goodbye and closes everything; the client is done. */
  leave() {
    if (this._final) return;
    this._final = true;
    this._send({ type: 'leave' });
    const ws = this._ws;
    this._teardown();
    if (ws) setTimeout(() => ws.close(1000, 'left'), 200);
    this._setState('left', 'left');
    window.removeEventListener('online', this._onOnline);
  }

  /**
   * Sets the track published for a source (camera, microphone, screen,
   * screen_audio): a new source is added and the publisher renegotiated; a
   * camera or microphone is replaced in place; null removes a screen share
   * and leaves a camera or microphone without a track (muted).
   */
  async setLocalTrack(source, track, stream) {
    const entry = this.local.get(source);
    if (entry && entry.transceiver && entry.pc === this.pub && this.pub) {
      if (track || source === 'camera' || source === 'microphone') {
        await entry.transceiver.sender.replaceTrack(track || null);
        entry.track = track || null;
        if (track && stream) entry.stream = stream;
        return;
      }
      try {
        this.pub.removeTrack(entry.transceiver.sender);
      } catch (err) {
        console.warn('lookout-meet: removeTrack', err);
      }
      this.local.delete(source);
      this._negotiate();
      return;
    }
    if (!track) {
      if (entry) entry.track = null;
      if (source !== 'camera' && source !== 'microphone') this.local.delete(source);
      return;
    }
    const e = { source, track, stream: stream || new MediaStream([track]), transceiver: null, pc: null };
    this.local.set(source, e);
    if (this.pub && this.state === 'joined' && this.can('publish')) {
      this._addLocal(e);
      this._negotiate();
    }
  }

  /** Tells the server this participant muted or unmuted its own audio or video. */
  setMuted(kind, muted) {
    this.muted[kind] = muted;
    if (this.state === 'joined') this._send({ type: 'mute', kind, muted });
  }

  /** The size this client shows a participant at: high, medium, low or off. */
  sendLayer(identity, quality) {
    return this._send({ type: 'layer', identity, quality });
  }

  /** A host control: mute {identity, kind}, remove {identity}, lock {locked}, spotlight {identity}. */
  host(action, fields = {}) {
    return this._send({ type: 'host', action, ...fields });
  }

  /** Sends a chat message: on the publisher's data channel when it is open, else over the WebSocket. */
  sendChat(text) {
    const msg = { type: 'chat', text };
    if (this._chatOut && this._chatOut.readyState === 'open') {
      try {
        this._chatOut.send(JSON.stringify(msg));
        return true;
      } catch (err) {
        console.warn('lookout-meet: chat channel', err);
      }
    }
    return this._send(msg);
  }

  /** Restarts ICE of both media connections (after a network change). */
  restartIce() {
    this._restart('publisher', true);
    this._restart('subscriber', true);
  }

  // --- the WebSocket

  _open() {
    clearTimeout(this._reconnectTimer);
    const session = ++this._session;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this._fatal = 'unsupported';
      this._fatalMessage = String(err && err.message ? err.message : err);
      this._closed(session, 0);
      return;
    }
    this._ws = ws;
    // Set by joined or by lobby: the server answered the join.
    this._answered = false;
    ws.addEventListener('open', () => {
      if (session !== this._session) return;
      this._lastRx = Date.now();
      this._send({ type: 'join', token: this.token });
      this._later(() => {
        if (session === this._session && !this._answered) this._drop(session, 'join_timeout');
      }, JOIN_WAIT_MS);
      clearInterval(this._pingTimer);
      this._pingTimer = setInterval(() => {
        if (session !== this._session) return;
        if (Date.now() - this._lastRx > SILENT_MS) {
          this._drop(session, 'silent');
          return;
        }
        this._send({ type: 'ping' });
      }, this.pingMs);
    });
    ws.addEventListener('message', (ev) => {
      if (session !== this._session) return;
      this._lastRx = Date.now();
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        console.warn('lookout-meet: a message that is not JSON');
        return;
      }
      if (msg && typeof msg.type === 'string') this._onMessage(msg, session);
    });
    ws.addEventListener('close', (ev) => this._closed(session, ev.code));
    ws.addEventListener('error', () => {
      // The close event follows with the code; nothing more to learn here.
    });
  }

  // _drop gives up on a WebSocket that seems dead without waiting for the
  // browser to notice.
  _drop(session, why) {
    if (session !== this._session) return;
    const ws = this._ws;
    this._closed(session, 0, why);
    if (ws) {
      try {
        ws.close(4000, why);
      } catch {
        // Already closing.
      }
    }
  }

  _closed(session, code, why = '') {
    if (session !== this._session) return;
    this._session++;
    this._ws = null;
    clearInterval(this._pingTimer);
    this._teardown();
    if (this._final) return;
    const fatal = this._fatal || (FATAL_CLOSE.has(code) ? FATAL_CLOSE.get(code) : '');
    if (fatal) {
      this._final = true;
      this._setState(LEFT_CODES.has(fatal) ? 'left' : 'failed', fatal, this._fatalMessage);
      window.removeEventListener('online', this._onOnline);
      return;
    }
    this._setState('reconnecting', why || (code ? `close_${code}` : ''));
    const delay = sleepJitter(BACKOFF_MS[Math.min(this._attempt, BACKOFF_MS.length - 1)]);
    this._attempt++;
    this._reconnectTimer = setTimeout(() => this._open(), delay);
  }

  _reconnectNow() {
    clearTimeout(this._reconnectTimer);
    if (!this._final && !this._ws) this._open();
  }

  _send(msg) {
    const ws = this._ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  _later(fn, ms) {
    const id = setTimeout(() => {
      this._timers.delete(id);
      fn();
    }, ms);
    this._timers.add(id);
    return id;
  }

  _setState(state, code = '', message = '') {
    this.state = state;
    this._emit('state', { state, code, message });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  // --- server messages

  _onMessage(m, session) {
    switch (m.type) {
      case 'joined':
        this._answered = true;
        this._onJoined(m);
        return;
      case 'lobby':
        if (m.state === 'waiting') {
          // In the lobby: connected, seeing and sending nothing, until a
          // host admits (joined follows) or rejects this participant.
          this._answered = true;
          this._attempt = 0;
          if (m.self) this.self = m.self;
          if (m.room) this.room = m.room;
          this._setState('waiting');
        } else if (Array.isArray(m.lobby)) {
          this.lobby = m.lobby;
        }
        break;
      case 'offer':
        this._onOffer(m, session);
        return;
      case 'answer':
        if (this._waitAnswer && (!m.id || m.id === this._waitAnswer.id)) this._waitAnswer.resolve(m);
        return;
      case 'candidate':
        this._onCandidate(m);
        return;
      case 'pong':
        return;
      case 'participant_joined': {
        const p = m.participant;
        if (p && p.identity && !(this.self && p.identity === this.self.identity)) {
          this.participants.set(p.identity, this._participant(p));
        }
        this._bindAll();
        break;
      }
      case 'participant_left': {
        if (this.self && m.identity === this.self.identity) {
          // Replaced by a join from elsewhere: joining back would replace
          // that one in turn. Rejected from the lobby: refused until the
          // room ends. The close follows.
          if (m.reason === 'replaced' || m.reason === 'rejected') {
            this._fatal = m.reason;
            this._fatalMessage = m.by || '';
          } else if (m.reason === 'closed' && this.endWithRoom) {
            this._fatal = 'closed';
          }
          break;
        }
        this.participants.delete(m.identity);
        this.paused.delete(m.identity);
        this._unbind((b) => b.identity === m.identity);
        break;
      }
      case 'track_published': {
        const p = this.participants.get(m.identity);
        if (p && m.track && m.track.id) p.tracks.set(m.track.id, { ...m.track });
        this._bindAll();
        break;
      }
      case 'track_unpublished': {
        const p = this.participants.get(m.identity);
        const id = m.track && m.track.id;
        if (p && id) p.tracks.delete(id);
        this._unbind((b) => b.identity === m.identity && b.info.id === id);
        break;
      }
      case 'mute_changed': {
        const p = this.participants.get(m.identity);
        if (p) {
          for (const t of p.tracks.values()) {
            if (t.kind === m.kind && (t.source === 'camera' || t.source === 'microphone')) t.muted = !!m.muted;
          }
        }
        break;
      }
      case 'speakers':
        this.speakers = Array.isArray(m.speakers) ? m.speakers : [];
        break;
      case 'room_locked':
        if (this.room) this.room.locked = !!m.locked;
        break;
      case 'spotlight':
        this.spotlight = (typeof m.spotlight === 'string' ? m.spotlight : m.identity) || '';
        break;
      case 'layer_changed':
        if (m.identity) this.paused.set(m.identity, !!m.paused);
        break;
      case 'removed':
        this._fatal = 'removed';
        this._fatalMessage = m.by || '';
        break;
      case 'chat':
        this._onChat(m);
        return;
      case 'error':
        this._onError(m);
        break;
      default:
        break;
    }
    this._emit(m.type, m);
  }

  _participant(p) {
    const tracks = new Map();
    for (const t of Array.isArray(p.tracks) ? p.tracks : []) {
      if (t && t.id) tracks.set(t.id, { ...t });
    }
    return { identity: p.identity, name: p.name || p.identity, role: p.role || '', tracks };
  }

  _onJoined(m) {
    this._attempt = 0;
    this.self = m.self || { identity: '', name: '', role: '', rights: [] };
    this.room = m.room || { id: '', name: '', locked: false };
    this.iceServers = Array.isArray(m.ice_servers) ? m.ice_servers : [];
    this.spotlight = typeof m.spotlight === 'string' ? m.spotlight : '';
    this.speakers = [];
    this.paused = new Map();
    this.participants = new Map();
    for (const p of Array.isArray(m.participants) ? m.participants : []) {
      if (p && p.identity && p.identity !== this.self.identity) this.participants.set(p.identity, this._participant(p));
    }
    this._setupMedia();
    this._setState('joined');
    this._emit('joined', m);
    if (this.pub) this._negotiate();
  }

  _onError(m) {
    if (FATAL_CODES.has(m.code)) {
      this._fatal = m.code;
      this._fatalMessage = m.message || '';
    }
    if (this._waitAnswer && m.id && m.id === this._waitAnswer.id) this._waitAnswer.reject(Object.assign(new Error(m.message || m.code), { code: m.code }));
  }

  // Chat comes on the WebSocket and on the subscriber's data channel; the
  // same message (sender, time and text) is told once.
  _onChat(m) {
    if (typeof m.text !== 'string') return;
    const key = `${m.identity}\u0000${m.at}\u0000${m.text}`;
    this._chatSeen = this._chatSeen || [];
    if (this._chatSeen.includes(key)) return;
    this._chatSeen.push(key);
    if (this._chatSeen.length > 200) this._chatSeen.shift();
    this._emit('chat', m);
  }

  // --- media connections

  _newPC(target) {
    let pc;
    const config = { bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' };
    try {
      pc = new RTCPeerConnection({ ...config, iceServers: this.iceServers });
    } catch (err) {
      // An ICE server the browser cannot use: go on without them.
      console.warn('lookout-meet: ice_servers refused', err);
      pc = new RTCPeerConnection({ ...config, iceServers: [] });
    }
    pc.addEventListener('icecandidate', (ev) => this._localCandidate(target, pc, ev.candidate));
    pc.addEventListener('iceconnectionstatechange', () => this._iceState(target, pc));
    pc.addEventListener('connectionstatechange', () => {
      if (pc === this[target === 'publisher' ? 'pub' : 'sub']) this._emit('media', { target, state: pc.connectionState });
    });
    return pc;
  }

  _setupMedia() {
    this._teardown();
    const publish = this.can('publish');
    if (publish || this.can('publish_data')) {
      const pc = this._newPC('publisher');
      this.pub = pc;
      if (this.can('publish_data')) {
        this._chatOut = pc.createDataChannel('chat', { ordered: true });
        this._chatOut.addEventListener('message', (ev) => this._dataChat(ev.data));
      }
      if (publish) {
        for (const e of this.local.values()) {
          e.transceiver = null;
          e.pc = null;
          if (e.track) this._addLocal(e);
        }
      }
    }
    const sub = this._newPC('subscriber');
    this.sub = sub;
    sub.addEventListener('track', () => queueMicrotask(() => this._scanSubscriber()));
    sub.addEventListener('datachannel', (ev) => {
      if (ev.channel.label !== 'chat') return;
      ev.channel.addEventListener('message', (e) => this._dataChat(e.data));
    });
  }

  _dataChat(data) {
    if (typeof data !== 'string') return;
    try {
      const m = JSON.parse(data);
      if (m && m.type === 'chat') this._onChat(m);
    } catch {
      // Not ours.
    }
  }

  _addLocal(e) {
    const init = { direction: 'sendonly', streams: [e.stream] };
    e.pc = this.pub;
    if (e.source === 'camera' && this.simulcast) {
      try {
        e.transceiver = this.pub.addTransceiver(e.track, { ...init, sendEncodings: SIMULCAST.map((x) => ({ ...x })) });
        return;
      } catch (err) {
        console.warn('lookout-meet: simulcast refused, one encoding', err);
      }
    }
    e.transceiver = this.pub.addTransceiver(e.track, init);
  }

  // _resetConnections forgets both peer connections and the negotiation
  // state that goes with them (at the start, and after a teardown).
  _resetConnections() {
    this.pub = null;
    this.sub = null;
    this._chatOut = null;
    this._pubHold = false;
    this._pubQueue = [];
    this._remoteQueue = { publisher: [], subscriber: [] };
    this._negotiating = false;
    this._again = false;
    this._againRestart = false;
    this._subChain = Promise.resolve();
  }

  _teardown() {
    for (const id of this._timers) clearTimeout(id);
    this._timers.clear();
    for (const target of ['publisher', 'subscriber']) clearTimeout(this._graceTimer[target]);
    if (this._waitAnswer) this._waitAnswer.reject(Object.assign(new Error('connection closed'), { code: 'closed' }));
    this._waitAnswer = null;
    for (const pc of [this.pub, this.sub]) {
      if (pc) pc.close();
    }
    this._resetConnections();
    for (const e of this.local.values()) {
      e.transceiver = null;
      e.pc = null;
    }
    this._published = false;
    this._recv = new Map();
    this._unbind(() => true);
  }

  // _tracks names the source of each track of the publisher's offer, by
  // the track id its m-section's msid carries.
  _tracks(pc) {
    const tracks = {};
    const secs = sections(pc.localDescription.sdp);
    for (const e of this.local.values()) {
      if (!e.transceiver || e.pc !== pc || !e.transceiver.mid) continue;
      const s = secs.get(e.transceiver.mid);
      const id = (s && s.trackId && s.trackId !== '-') ? s.trackId : (e.track && e.track.id);
      if (id) tracks[id] = e.source;
    }
    return tracks;
  }

  // _negotiate offers the publisher connection to the server, one offer at
  // a time: a change while an offer waits for its answer is offered after.
  async _negotiate(iceRestart = false) {
    const pc = this.pub;
    if (!pc || (!this._chatOut && pc.getTransceivers().length === 0)) return;
    if (this._negotiating) {
      this._again = true;
      this._againRestart = this._againRestart || iceRestart;
      return;
    }
    this._negotiating = true;
    let first = !this._published;
    try {
      let restart = iceRestart;
      for (;;) {
        this._again = false;
        this._againRestart = false;
        this._pubHold = true;
        await pc.setLocalDescription(await pc.createOffer({ iceRestart: restart }));
        if (pc !== this.pub) return;
        const id = `o${++this._offerSeq}`;
        const answered = new Promise((resolve, reject) => {
          const timer = this._later(() => reject(Object.assign(new Error('no answer'), { code: 'answer_timeout' })), ANSWER_WAIT_MS);
          this._waitAnswer = {
            id,
            resolve: (m) => { clearTimeout(timer); resolve(m); },
            reject: (err) => { clearTimeout(timer); reject(err); },
          };
        });
        this._send({ type: 'offer', id, sdp: pc.localDescription.sdp, tracks: this._tracks(pc) });
        this._pubHold = false;
        for (const c of this._pubQueue.splice(0)) this._send(c);
        const answer = await answered;
        this._waitAnswer = null;
        if (pc !== this.pub) return;
        await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
        await this._flushRemote('publisher', pc);
        if (first) {
          // What was muted before joining (or before reconnecting) is said
          // once the tracks are there.
          first = false;
          this._published = true;
          for (const kind of ['audio', 'video']) {
            const src = kind === 'audio' ? 'microphone' : 'camera';
            if (this.muted[kind] && this.local.has(src)) this._send({ type: 'mute', kind, muted: true });
          }
        }
        if (!this._again) break;
        restart = this._againRestart;
      }
    } catch (err) {
      if (pc !== this.pub) return;
      this._emit('problem', { code: err.code || 'negotiation', message: err.message || String(err) });
      if (err.code === 'answer_timeout' && this._ws) this._drop(this._session, 'answer_timeout');
      else if (pc.signalingState === 'have-local-offer') {
        // A refused offer leaves the connection waiting: roll it back so a
        // later change can be offered.
        await pc.setLocalDescription({ type: 'rollback' }).catch(() => {});
      }
    } finally {
      if (pc === this.pub) {
        this._negotiating = false;
        this._pubHold = false;
        for (const c of this._pubQueue.splice(0)) this._send(c);
        if (this._again) this._negotiate(this._againRestart);
      }
    }
  }

  _onOffer(m, session) {
    this._subChain = this._subChain.then(async () => {
      const pc = this.sub;
      if (!pc || session !== this._session) return;
      await pc.setRemoteDescription({ type: 'offer', sdp: m.sdp });
      await this._flushRemote('subscriber', pc);
      await pc.setLocalDescription(await pc.createAnswer());
      if (pc !== this.sub) return;
      this._send({ type: 'answer', sdp: pc.localDescription.sdp });
      this._scanSubscriber();
    }).catch((err) => {
      this._emit('problem', { code: 'bad_offer', message: err.message || String(err) });
    });
  }

  _localCandidate(target, pc, c) {
    if (pc !== (target === 'publisher' ? this.pub : this.sub)) return;
    if (c && !c.candidate) return; // a per-generation end: the null one follows
    const msg = { type: 'candidate', target, candidate: c ? c.candidate : '' };
    if (c && c.sdpMid != null) msg.sdp_mid = c.sdpMid;
    if (c && c.sdpMLineIndex != null) msg.sdp_mline_index = c.sdpMLineIndex;
    if (target === 'publisher' && this._pubHold) this._pubQueue.push(msg);
    else this._send(msg);
  }

  _onCandidate(m) {
    const target = m.target === 'publisher' ? 'publisher' : 'subscriber';
    const pc = target === 'publisher' ? this.pub : this.sub;
    if (!pc) return;
    let init = null;
    if (m.candidate) {
      init = { candidate: m.candidate, sdpMid: m.sdp_mid ?? null, sdpMLineIndex: m.sdp_mline_index ?? null };
      if (init.sdpMid === null && init.sdpMLineIndex === null) init.sdpMLineIndex = 0;
    }
    // Before the first description, and while the publisher's offer
    // awaits its answer: a restart's candidates added before the answer
    // would go to the old ICE generation, which the answer then drops.
    if (!pc.remoteDescription || (target === 'publisher' && this._waitAnswer)) {
      this._remoteQueue[target].push(init);
      return;
    }
    this._addCandidate(pc, init);
  }

  async _flushRemote(target, pc) {
    for (const init of this._remoteQueue[target].splice(0)) await this._addCandidate(pc, init);
  }

  async _addCandidate(pc, init) {
    try {
      await pc.addIceCandidate(init || undefined);
    } catch (err) {
      if (init) console.warn('lookout-meet: a candidate the browser refused', err && err.message);
    }
  }

  _iceState(target, pc) {
    if (pc !== (target === 'publisher' ? this.pub : this.sub)) return;
    const st = pc.iceConnectionState;
    clearTimeout(this._graceTimer[target]);
    if (st === 'failed') this._restart(target, false);
    else if (st === 'disconnected') {
      this._graceTimer[target] = this._later(() => {
        if (pc.iceConnectionState === 'disconnected') this._restart(target, false);
      }, DISCONNECTED_GRACE_MS);
    }
  }

  // _restart restarts ICE of one connection: the publisher with a new offer,
  // the subscriber by asking the server for one.
  _restart(target, force) {
    const pc = target === 'publisher' ? this.pub : this.sub;
    if (!pc || !this._ws || this.state !== 'joined') return;
    const now = Date.now();
    if (!force && now - this._restartAt[target] < RESTART_SPACING_MS) {
      this._graceTimer[target] = this._later(() => this._iceState(target, pc), RESTART_SPACING_MS);
      return;
    }
    this._restartAt[target] = now;
    if (target === 'publisher') this._negotiate(true);
    else this._send({ type: 'restart' });
  }

  // --- remote tracks

  // _scanSubscriber finds the tracks the subscriber connection receives,
  // by the msid of each m-section of the server's offer, and binds them to
  // the participants' published tracks.
  _scanSubscriber() {
    const pc = this.sub;
    if (!pc || !pc.remoteDescription) return;
    const secs = sections(pc.remoteDescription.sdp);
    const recv = new Map();
    for (const t of pc.getTransceivers()) {
      if (!t.mid || !t.receiver || !t.receiver.track) continue;
      const s = secs.get(t.mid);
      if (!s || s.port0 || !s.trackId || (s.direction !== 'sendonly' && s.direction !== 'sendrecv')) continue;
      recv.set(s.trackId, { track: t.receiver.track, streamId: s.streamId, kind: t.receiver.track.kind });
    }
    this._recv = recv;
    this._unbind((b, id) => !recv.has(id) || recv.get(id).track !== b.track);
    this._bindAll();
  }

  _owner(id, r) {
    for (const p of this.participants.values()) {
      const info = p.tracks.get(id);
      if (info) return { identity: p.identity, info };
    }
    // A server whose SDP track ids differ from its announcements: the
    // stream id and kind still tell.
    for (const p of this.participants.values()) {
      for (const info of p.tracks.values()) {
        if (info.stream_id === r.streamId && info.kind === r.kind && !this._bound.has(info.id)) return { identity: p.identity, info };
      }
    }
    return null;
  }

  _bindAll() {
    for (const [id, r] of this._recv) {
      if (this._bound.has(id)) continue;
      const owner = this._owner(id, r);
      if (!owner) continue;
      const b = { identity: owner.identity, info: owner.info, track: r.track };
      this._bound.set(id, b);
      this._emit('remotetrack', b);
    }
  }

  _unbind(pred) {
    for (const [id, b] of [...this._bound]) {
      if (!pred(b, id)) continue;
      this._bound.delete(id);
      this._emit('remotetrackgone', b);
    }
  }
}
