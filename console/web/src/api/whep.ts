// A WHEP client (RFC 9725) receiving one camera over WebRTC: one offer with
// every ICE candidate in it (Lookout answers with all of its own and takes
// no trickle ICE), then DELETE on the session's Location to leave. The same
// protocol as console/player/whep.js, typed for the console.

import { errorOf } from './client';

/** gathered resolves once ICE gathering is complete, or after timeoutMs. */
function gathered(pc: RTCPeerConnection, timeoutMs: number): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === 'complete') done();
    };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

export interface WHEPSession {
  pc: RTCPeerConnection;
  location: string;
  close: () => void;
}

export interface PlayOptions {
  gatherTimeoutMs?: number;
  /** isCurrent, when given, says whether the caller still wants this session's picture: a superseded one never takes the video element. */
  isCurrent?: () => boolean;
  onConnectionState?: (state: RTCPeerConnectionState) => void;
  signal?: AbortSignal;
}

/**
 * play offers to receive video from a WHEP endpoint and shows it in video.
 * It resolves once the answer is applied; it rejects with an ApiError when
 * the endpoint refuses.
 */
export async function play(endpoint: string, token: string, video: HTMLVideoElement, opts: PlayOptions = {}): Promise<WHEPSession> {
  const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: 'max-bundle' });
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addEventListener('track', (ev) => {
    if (opts.isCurrent && !opts.isCurrent()) return;
    video.srcObject = ev.streams[0] || new MediaStream([ev.track]);
  });
  if (opts.onConnectionState) {
    const cb = opts.onConnectionState;
    pc.addEventListener('connectionstatechange', () => cb(pc.connectionState));
  }
  const auth = { Authorization: `Bearer ${token}` };
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, opts.gatherTimeoutMs ?? 3000);
    const resp = await fetch(endpoint, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/sdp' },
      body: pc.localDescription?.sdp ?? '',
      signal: opts.signal,
    });
    if (resp.status !== 201) throw await errorOf(resp);
    const loc = resp.headers.get('Location');
    if (!loc) throw new Error('the WHEP answer has no Location');
    const location = new URL(loc, resp.url).href;
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      // DELETE before closing: a closed peer connection ends the session on
      // the server too, and the DELETE would then find none.
      fetch(location, { method: 'DELETE', headers: auth, keepalive: true })
        .catch(() => {})
        .finally(() => pc.close());
    };
    try {
      await pc.setRemoteDescription({ type: 'answer', sdp: await resp.text() });
    } catch (err) {
      close();
      throw err;
    }
    return { pc, location, close };
  } catch (err) {
    pc.close();
    throw err;
  }
}

async function postJSON<T>(url: string, token: string, body: unknown): Promise<T> {
  const resp = await fetch(url, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!resp.ok) throw await errorOf(resp);
  return (await resp.json()) as T;
}

/**
 * switchCamera moves a session to another camera without a new offer
 * (Lookout's POST {session}/camera): the picture changes as soon as the
 * camera's cached keyframe arrives. already says the server had switched
 * it (the session's wall tile changed). It rejects with an ApiError, e.g.
 * 409 codec_mismatch, when a new offer is needed instead.
 */
export function switchCamera(location: string, token: string, camera: string, stream: 'main' | 'sub'): Promise<{ already?: boolean }> {
  return postJSON(`${location}/camera`, token, { camera, stream });
}

/** switchLayer moves a session to the camera's main or sub stream (the WHEP layer extension). */
export function switchLayer(location: string, token: string, stream: 'main' | 'sub'): Promise<{ stream?: string }> {
  return postJSON(`${location}/layer`, token, { encodingId: stream });
}

/** What a session's video receiver has counted so far. */
export interface InboundVideo {
  bytes: number;
  frames: number; // decoded
  received: number; // frames received (assembled)
  dropped: number;
  jitterDelay: number; // seconds, summed over emitted frames
  emitted: number;
  at: number; // ms
}

/**
 * inboundVideo reads the received bytes and frames of a session's video,
 * for the tile's bitrate, for telling a frozen picture from a live one,
 * and for seeing frames pile up (the jitter buffer's delay growing).
 */
export async function inboundVideo(pc: RTCPeerConnection): Promise<InboundVideo | null> {
  const stats = await pc.getStats();
  let found: InboundVideo | null = null;
  stats.forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') {
      found = {
        bytes: r.bytesReceived ?? 0,
        frames: r.framesDecoded ?? 0,
        received: r.framesReceived ?? 0,
        dropped: r.framesDropped ?? 0,
        jitterDelay: r.jitterBufferDelay ?? 0,
        emitted: r.jitterBufferEmittedCount ?? 0,
        at: r.timestamp,
      };
    }
  });
  return found;
}
