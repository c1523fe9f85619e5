import { describe, expect, it } from 'vitest';
import type { Command, CommandState } from '../api/types';
import { badge, newer } from './commands';

const cmd = (state: CommandState, id = 'c'): Command => ({ id, device_id: 'd', name: 'set_brightness', state, created_at: '' });

describe('newer', () => {
  it.each([
    [undefined, 'pending', true],
    ['pending', 'sent', true],
    ['sent', 'acked', true],
    ['pending', 'acked', true],
    ['sent', 'pending', false], // a late poll does not undo a step
    ['acked', 'timeout', false], // an ended command stays ended
    ['timeout', 'acked', false],
  ] as const)('%s then %s: %s', (held, next, want) => {
    expect(newer(held ? cmd(held) : undefined, cmd(next))).toBe(want);
  });

  it('takes any state of another command', () => {
    expect(newer(cmd('acked', 'a'), cmd('pending', 'b'))).toBe(true);
  });
});

describe('badge', () => {
  it('colours the states', () => {
    expect(['pending', 'sent', 'acked', 'failed', 'timeout', 'expired'].map((s) => badge(s as CommandState))).toEqual(['pending', 'pending', 'ok', 'bad', 'bad', 'bad']);
  });
});
