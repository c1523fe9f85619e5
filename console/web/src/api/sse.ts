// Server-sent events over fetch. EventSource cannot send the bearer token
// in a header, and the token must not travel in a URL (it would be kept in
// server and proxy logs), so the console reads GET /api/v1/events as a
// stream and parses it here, following the HTML standard's rules for
// text/event-stream: lines end in CRLF, LF or CR; "data" lines join with
// LF; "id" sets the id buffer (unless it contains NUL), which becomes the
// last event id when its message is dispatched (a connection lost in the
// middle of a message resumes before it); "retry" sets the reconnection
// delay; a line starting with ":" is a comment; an empty line dispatches.

export interface SSEMessage {
  event: string; // "message" when the stream named none
  data: string;
  id: string; // the last event id after this message
}

/**
 * SSEParser turns chunks of text into messages. It keeps what it has not
 * yet seen the end of, so chunks may split lines and messages anywhere.
 */
export class SSEParser {
  /** lastEventId is the id of the last message dispatched (resume sets it). */
  lastEventId = '';
  retryMs: number | undefined;

  private idBuf = '';

  private buf = '';
  private data: string[] = [];
  private event = '';
  private sawCR = false;
  private onMessage: (m: SSEMessage) => void;

  constructor(onMessage: (m: SSEMessage) => void) {
    this.onMessage = onMessage;
  }

  /** resume starts from the id a reconnection sent as Last-Event-ID. */
  resume(id: string) {
    this.lastEventId = id;
    this.idBuf = id;
  }

  /** push feeds a chunk of the stream. */
  push(chunk: string) {
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (c === 10 && this.sawCR) {
        // The LF of a CRLF whose CR ended the previous line.
        this.sawCR = false;
        start = i + 1;
        continue;
      }
      this.sawCR = false;
      if (c === 10 || c === 13) {
        this.line(this.buf + chunk.slice(start, i));
        this.buf = '';
        start = i + 1;
        this.sawCR = c === 13;
      }
    }
    this.buf += chunk.slice(start);
  }

  private line(line: string) {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    let field = line;
    let value = '';
    if (colon >= 0) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
    }
    switch (field) {
      case 'event':
        this.event = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.idBuf = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        // Unknown fields are ignored.
    }
  }

  private dispatch() {
    this.lastEventId = this.idBuf;
    const hadData = this.data.length > 0;
    const data = this.data.join('\n');
    const event = this.event || 'message';
    this.data = [];
    this.event = '';
    // A message without data lines only moves the last event id.
    if (!hadData) return;
    try {
      this.onMessage({ event, data, id: this.lastEventId });
    } catch (err) {
      // One message the handler cannot take is skipped; the stream, and
      // the messages after it, go on (a throw here would reconnect and
      // replay it for ever).
      console.error('event not handled', event, err);
    }
  }
}

export interface FollowOptions {
  url: string;
  token: () => string;
  onMessage: (m: SSEMessage) => void;
  /** onState reports the connection: connecting, open, or closed with the reason. */
  onState?: (state: 'connecting' | 'open' | 'closed', detail?: string) => void;
  /** onUnauthorized is called on a 401; following stops. */
  onUnauthorized?: () => void;
}

/**
 * follow reads an event stream and reconnects when it ends or fails, with
 * the last event id, so nothing is missed (the server replays, or sends a
 * "gap" event when it cannot). It returns a function that stops it.
 */
export function follow(opts: FollowOptions): () => void {
  const ctrl = new AbortController();
  let lastId = '';
  let retryMs = 2000;
  let stopped = false;

  const run = async () => {
    while (!stopped) {
      opts.onState?.('connecting');
      let detail = '';
      try {
        const headers: Record<string, string> = {
          Accept: 'text/event-stream',
          Authorization: `Bearer ${opts.token()}`,
        };
        if (lastId) headers['Last-Event-ID'] = lastId;
        const resp = await fetch(opts.url, { headers, signal: ctrl.signal, cache: 'no-store' });
        if (resp.status === 401) {
          opts.onState?.('closed', 'unauthorized');
          opts.onUnauthorized?.();
          return;
        }
        if (resp.status === 403) {
          // The role may read none of the event types: nothing to follow.
          opts.onState?.('closed', 'forbidden');
          return;
        }
        if (!resp.ok || !resp.body) throw new Error(`HTTP ${resp.status}`);
        opts.onState?.('open');
        const parser = new SSEParser(opts.onMessage);
        parser.resume(lastId);
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.push(value);
          lastId = parser.lastEventId;
          if (parser.retryMs !== undefined) retryMs = Math.min(Math.max(parser.retryMs, 500), 30000);
        }
        detail = 'ended';
      } catch (err) {
        if (stopped) return;
        detail = err instanceof Error ? err.message : String(err);
      }
      opts.onState?.('closed', detail);
      await new Promise((r) => setTimeout(r, retryMs));
    }
  };
  void run();
  return () => {
    stopped = true;
    ctrl.abort();
  };
}
