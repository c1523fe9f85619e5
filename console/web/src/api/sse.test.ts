import { describe, expect, it } from 'vitest';
import { SSEParser, type SSEMessage } from './sse';

function parse(chunks: string[]): { msgs: SSEMessage[]; p: SSEParser } {
  const msgs: SSEMessage[] = [];
  const p = new SSEParser((m) => msgs.push(m));
  for (const c of chunks) p.push(c);
  return { msgs, p };
}

describe('SSEParser', () => {
  const stream = 'retry: 2000\n\nid: 1-1\n\n: ping\n\nid: 1-2\nevent: alert\ndata: {"a":1}\n\nevent: gap\ndata: {"reason":"x"}\n\n';

  it('parses Lookout\'s stream: retry, id-only messages, comments, events', () => {
    const { msgs, p } = parse([stream]);
    expect(msgs).toEqual([
      { event: 'alert', data: '{"a":1}', id: '1-2' },
      { event: 'gap', data: '{"reason":"x"}', id: '1-2' },
    ]);
    expect(p.retryMs).toBe(2000);
    expect(p.lastEventId).toBe('1-2');
  });

  it('gives the same messages however the stream is cut', () => {
    const whole = parse([stream]).msgs;
    for (let size = 1; size < 9; size++) {
      const chunks: string[] = [];
      for (let i = 0; i < stream.length; i += size) chunks.push(stream.slice(i, i + size));
      expect(parse(chunks).msgs).toEqual(whole);
    }
  });

  it.each([
    ['CRLF', 'data: a\r\ndata: b\r\n\r\n'],
    ['CR', 'data: a\rdata: b\r\r'],
    ['LF', 'data: a\ndata: b\n\n'],
  ])('takes %s line ends and joins data lines', (_, s) => {
    expect(parse([s]).msgs).toEqual([{ event: 'message', data: 'a\nb', id: '' }]);
  });

  it('keeps a CRLF split between chunks as one line end', () => {
    expect(parse(['data: a\r', '\n\r', '\n']).msgs).toEqual([{ event: 'message', data: 'a', id: '' }]);
  });

  it('moves the last event id only when its message is dispatched', () => {
    const { p } = parse(['id: 1-1\n\nid: 1-2\nevent: alert\ndata: {}\n']);
    expect(p.lastEventId).toBe('1-1'); // the connection ended inside 1-2: resume before it
  });

  it('skips a message its handler throws on, and goes on', () => {
    const seen: string[] = [];
    const p = new SSEParser((m) => {
      if (m.data === 'bad') throw new Error('cannot take it');
      seen.push(m.data);
    });
    p.push('id: 1\ndata: bad\n\nid: 2\ndata: good\n\n');
    expect(seen).toEqual(['good']);
    expect(p.lastEventId).toBe('2');
  });

  it('ignores unknown fields, a bad retry, an id with NUL, and an unfinished message', () => {
    const { msgs, p } = parse(['id: 7\nretry: soon\nfoo: bar\nid: x\0y\ndata\n\ndata: never dispatched']);
    expect(msgs).toEqual([{ event: 'message', data: '', id: '7' }]);
    expect(p.retryMs).toBeUndefined();
  });
});
