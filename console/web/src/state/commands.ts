// A device command's life as the console shows it: sent, then pending until
// the device acknowledges, fails or the timeout passes. The console polls
// the command and also takes command events; whichever comes first wins,
// and an ended state is never replaced by an earlier one.

import type { Command, CommandState } from '../api/types';

export function isFinal(s: CommandState): boolean {
  return s === 'acked' || s === 'failed' || s === 'timeout' || s === 'expired';
}

const order: Record<CommandState, number> = { pending: 0, sent: 1, acked: 2, failed: 2, timeout: 2, expired: 2 };

/** newer says whether next may replace held: a later step, never an earlier one. */
export function newer(held: Command | undefined, next: Command): boolean {
  if (!held) return true;
  if (held.id !== next.id) return true;
  if (isFinal(held.state)) return false;
  return order[next.state] >= order[held.state];
}

/** badge is the colour class of a state in the console. */
export function badge(s: CommandState): 'pending' | 'ok' | 'bad' {
  if (s === 'acked') return 'ok';
  if (s === 'failed' || s === 'timeout' || s === 'expired') return 'bad';
  return 'pending';
}
