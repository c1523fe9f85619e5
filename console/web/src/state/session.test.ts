import { describe, expect, it } from 'vitest';
import { parseStored } from './session';

describe('parseStored', () => {
  const now = 1_000_000;
  it.each([
    ['a valid session', JSON.stringify({ token: 't', expiresAt: now + 1, userId: 'u' }), true],
    ['an expired one', JSON.stringify({ token: 't', expiresAt: now, userId: 'u' }), false],
    ['an empty token', JSON.stringify({ token: '', expiresAt: now + 1, userId: 'u' }), false],
    ['a wrong type', JSON.stringify({ token: 't', expiresAt: String(now + 1), userId: 'u' }), false],
    ['not JSON', '{', false],
    ['nothing', null, false],
  ])('%s', (_, raw, ok) => {
    expect(parseStored(raw, now) !== null).toBe(ok);
  });
});
