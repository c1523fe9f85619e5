import { describe, expect, it } from 'vitest';
import type { Hearing } from '../api/types';
import {
  chinaClock,
  chinaDay,
  cleanOthers,
  defaultStart,
  formatBytes,
  formatDuration,
  inputValue,
  keepIssuedLink,
  linkURL,
  lobbyCount,
  meetURL,
  pauseCount,
  playable,
  pollReads,
  shiftDay,
  shortHash,
  shortSignature,
  sortHearings,
  startsAt,
  stillChanging,
  takeIssuedLink,
  waitedSeconds,
  waitingResident,
} from './hearings';

function hearing(id: string, state: Hearing['state'], starts: string, lobby?: Hearing['lobby']): Hearing {
  return {
    id,
    petition_id: 'pet_1',
    org_id: 'qj',
    room_id: id,
    officer_id: 'li',
    others: [],
    starts_at: starts,
    link_expires_at: starts,
    state,
    link: { active: true, used: false, allow_other_device: false },
    signed: false,
    lobby,
  };
}

const resident = { identity: 'resident', name: '信访人 张**', role: 'resident', since: '2025-05-06T02:00:00Z' };

describe('sortHearings', () => {
  it('puts the hearing under way first, then those to come by start, then those over', () => {
    const hs = [
      hearing('a', 'ended', '2025-05-06T01:00:00Z'),
      hearing('b', 'scheduled', '2025-05-06T06:00:00Z'),
      hearing('c', 'cancelled', '2025-05-06T00:30:00Z'),
      hearing('d', 'scheduled', '2025-05-06T03:00:00Z'),
      hearing('e', 'in_progress', '2025-05-06T02:00:00Z'),
      hearing('f', 'scheduled', '2025-05-06T03:00:00Z'),
    ];
    expect(sortHearings(hs).map((h) => h.id)).toEqual(['e', 'd', 'f', 'b', 'c', 'a']);
    expect(hs[0].id).toBe('a'); // a copy, not the list sorted in place
  });
});

describe('the lobby', () => {
  it('counts who waits in an open hearing only', () => {
    expect(lobbyCount(hearing('a', 'scheduled', '2025-05-06T01:00:00Z', [resident]))).toBe(1);
    expect(lobbyCount(hearing('a', 'scheduled', '2025-05-06T01:00:00Z'))).toBe(0);
    expect(lobbyCount(hearing('a', 'ended', '2025-05-06T01:00:00Z', [resident]))).toBe(0);
  });

  it('finds the resident among those waiting', () => {
    const other = { identity: 'dept', name: '住建局', role: 'guest', since: '2025-05-06T02:00:00Z' };
    expect(waitingResident(hearing('a', 'in_progress', '2025-05-06T01:00:00Z', [other, resident]))).toEqual(resident);
    expect(waitingResident(hearing('a', 'in_progress', '2025-05-06T01:00:00Z', [other]))).toBeNull();
    expect(waitingResident(hearing('a', 'cancelled', '2025-05-06T01:00:00Z', [resident]))).toBeNull();
  });

  it('says how long someone has waited', () => {
    expect(waitedSeconds('2025-05-06T02:00:00Z', Date.parse('2025-05-06T02:01:30Z'))).toBe(90);
    expect(waitedSeconds('2025-05-06T02:00:00Z', Date.parse('2025-05-06T01:59:00Z'))).toBe(0); // clocks apart
    expect(waitedSeconds('not a time', 0)).toBe(0);
  });
});

describe('formats', () => {
  it.each([
    [0, '0:00'],
    [999, '0:01'],
    [61_000, '1:01'],
    [3_599_000, '59:59'],
    [3_600_000, '1:00:00'],
    [3_723_000, '1:02:03'],
    [-5, '0:00'],
  ])('duration %d ms is %s', (ms, want) => {
    expect(formatDuration(ms)).toBe(want);
  });

  it.each([
    [0, '0 B'],
    [512, '512 B'],
    [2048, '2 KB'],
    [5 * 1024 * 1024 + 300_000, '5.3 MB'],
    [3 * 1024 ** 3, '3.00 GB'],
  ])('size %d is %s', (n, want) => {
    expect(formatBytes(n)).toBe(want);
  });

  it('shortens checksums and signatures', () => {
    const sha = 'a'.repeat(12) + 'b'.repeat(52);
    expect(shortHash(sha)).toBe('aaaaaaaaaaaa…');
    expect(shortHash(undefined)).toBe('—');
    expect(shortHash('abc')).toBe('abc');
    expect(shortSignature('ABCDEFGH' + 'x'.repeat(72) + '12345678')).toBe('ABCDEFGH…12345678');
  });
});

describe('links', () => {
  it('makes the resident link of the path the server answers', () => {
    expect(linkURL('https://lookout.example.gov.cn', '/h/eyJhbGciOi.eyJzdWIi.sig-_x')).toBe('https://lookout.example.gov.cn/h/eyJhbGciOi.eyJzdWIi.sig-_x');
    expect(linkURL('http://127.0.0.1:8080/', '/h/abc')).toBe('http://127.0.0.1:8080/h/abc');
  });

  it('refuses any other path', () => {
    for (const p of ['', '/h/', '//evil.example/h/abc', 'https://evil.example/h/abc', '/h/abc/../x', '/meet/#x', '/h/a b']) expect(linkURL('https://x', p)).toBe('');
  });

  it('puts the meeting page token in the fragment', () => {
    expect(meetURL('hrg_1', 'a.b+c')).toBe('/meet/#room=hrg_1&token=a.b%2Bc');
  });
});

describe('days and times', () => {
  it('takes the day in China time, as the server does', () => {
    expect(chinaDay(new Date('2025-05-06T15:59:59Z'))).toBe('2025-05-06');
    expect(chinaDay(new Date('2025-05-06T16:00:00Z'))).toBe('2025-05-07');
    expect(chinaClock('2025-05-06T16:05:00Z')).toBe('00:05');
    expect(chinaClock('2025-05-06T07:00:00.000Z')).toBe('15:00');
    expect(chinaClock('soon')).toBe('');
    expect(shiftDay('2025-02-28', 1)).toBe('2025-03-01');
    expect(shiftDay('2025-01-01', -1)).toBe('2024-12-31');
  });

  it('starts the form at the next quarter hour ten minutes ahead', () => {
    const now = new Date(2025, 4, 6, 9, 52, 10);
    expect(defaultStart(now).getTime()).toBe(new Date(2025, 4, 6, 10, 15).getTime());
    expect(inputValue(new Date(2025, 4, 6, 9, 5))).toBe('2025-05-06T09:05');
  });

  it('sends the input time as RFC 3339', () => {
    expect(startsAt('2025-05-06T09:05')).toBe(new Date(2025, 4, 6, 9, 5).toISOString());
    expect(startsAt('')).toBe('');
    expect(startsAt('tomorrow')).toBe('');
  });
});

describe('the schedule form and the recordings', () => {
  it('keeps only the further participants filled in', () => {
    expect(cleanOthers([{ name: ' 王工 ', role: '住建局' }, { name: '', role: ' ' }])).toEqual([{ name: '王工', role: '住建局' }]);
  });

  it('plays finished and interrupted files only', () => {
    expect(['recording', 'complete', 'interrupted', 'failed', 'deleted'].filter((s) => playable({ state: s as never }))).toEqual(['complete', 'interrupted']);
    expect(pauseCount({ pauses: null })).toBe(0);
    expect(pauseCount({ pauses: [{ from: 'a', to: 'b' }] })).toBe(1);
  });

  it('hands an issued link to the hearing page once', () => {
    keepIssuedLink('hrg_1', { path: '/h/x', expires_at: '2025-05-06T06:00:00Z' });
    expect(takeIssuedLink('hrg_1')?.path).toBe('/h/x');
    expect(takeIssuedLink('hrg_1')).toBeNull();
  });
});

describe('stillChanging', () => {
  it('is read again while open, and once ended until its record is signed', () => {
    const cases: [Hearing['state'], boolean, boolean][] = [
      ['scheduled', false, true],
      ['in_progress', false, true],
      ['ended', false, true],
      ['ended', true, false],
      ['cancelled', false, false],
    ];
    for (const [state, signed, want] of cases) {
      expect(stillChanging({ state, signed }), `${state} signed=${signed}`).toBe(want);
    }
  });
});

describe('pollReads', () => {
  it('reads a changing hearing, but not while the page is ending it', () => {
    const cases: [Hearing['state'], boolean, boolean, boolean][] = [
      ['in_progress', false, false, true],
      ['in_progress', false, true, false],
      ['scheduled', false, true, false],
      ['ended', false, false, true],
      ['ended', false, true, false],
      ['ended', true, false, false],
    ];
    for (const [state, signed, ending, want] of cases) {
      expect(pollReads({ state, signed }, ending), `${state} signed=${signed} ending=${ending}`).toBe(want);
    }
  });
});
