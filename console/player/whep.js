// A WHEP client (RFC 9725) that receives one video over WebRTC: one offer
// with every ICE candidate in it (Lookout answers with all of its own and
// takes no trickle ICE), then DELETE on the session's Location to leave.

/** An answer other than 201: the HTTP status and Lookout's error code. */
export class WHEPError extends Error {
  constructor(message, status, code) {
    super(message);
    this.name = 'WHEPError';
    this.status = status;
    this.code = code;
  }
}

// gathered resolves once ICE gathering is complete, or after timeoutMs
// with what was gathered by then: without STUN or TURN servers only host
// candidates are gathered, which takes milliseconds.
function gathered(pc, timeoutMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => { if (pc.iceGatheringState === 'complete') done(); };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

// errorOf makes a WHEPError of an answer that is not 201, from Lookout's
// JSON error body ({"error": {"code", "message"}}) when there is one.
async function errorOf(resp) {
  let code = '';
  let message = `HTTP ${resp.status}`;
  try {
    const body = await resp.json();
    if (body && body.error) {
      code = body.error.code || '';
      message = `${body.error.message || message} (${code || resp.status})`;
    }
  } catch {
    // Not JSON: the status says enough.
  }
  return new WHEPError(message, resp.status, code);
}

/**
 * play offers to receive video from a WHEP endpoint and shows it in video.
 * It resolves once the answer is applied (media follows when ICE and DTLS
 * connect); it rejects with a WHEPError when the endpoint refuses.
 *
 * @param {string} endpoint the WHEP endpoint, e.g. /api/v1/whep/cameras/cam-1
 * @param {string} token a bearer token
 * @param {HTMLVideoElement} video where the stream is shown
 * @param {{gatherTimeoutMs?: number, onConnectionState?: (state: string) => void}} [opts]
 * @returns {Promise<{pc: RTCPeerConnection, location: string, close: () => void}>}
 *   close leaves the session (DELETE, kept alive past the page's unload),
 *   then closes the peer connection; calling it again does nothing.
 */
export async function play(endpoint, token, video, opts = {}) {
  const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: 'max-bundle' });
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addEventListener('track', (ev) => {
    video.srcObject = ev.streams[0] || new MediaStream([ev.track]);
  });
  if (opts.onConnectionState) {
    pc.addEventListener('connectionstatechange', () => opts.onConnectionState(pc.connectionState));
  }
  const auth = { Authorization: `Bearer ${token}` };
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, opts.gatherTimeoutMs ?? 3000);
    const resp = await fetch(endpoint, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/sdp' },
      body: pc.localDescription.sdp,
    });
    if (resp.status !== 201) throw await errorOf(resp);
    const loc = resp.headers.get('Location');
    if (!loc) throw new WHEPError('the answer has no Location', resp.status, '');
    const location = new URL(loc, resp.url).href;
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      // DELETE before closing: a closed peer connection ends the session
      // on the server too, and the DELETE would then find none.
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
