// The meetings in progress of the user's subtree and who is in them, for
// the wall: a participant is dragged onto a tile like a camera. Polled
// while a wall page shows the list (the events stream carries no meeting
// events).

import { reactive } from 'vue';
import { api } from '../api/client';
import type { ListResponse } from '../api/types';

export interface Participant {
  identity: string;
  name: string;
  role: string;
  video: boolean;
}

export interface LiveRoom {
  id: string;
  name: string;
  participants: Participant[];
}

export const liveRooms = reactive(new Map<string, LiveRoom>());

/** refreshMeetings reads the rooms and who is in each now; rooms nobody is in are left out. */
export async function refreshMeetings(): Promise<void> {
  const rooms = await api<ListResponse<{ id: string; name: string }>>('/rooms');
  const seen = new Set<string>();
  // A room deleted between the two calls fails alone.
  await Promise.allSettled(
    rooms.items.map(async (r) => {
      const full = await api<{ id: string; name: string; participants?: Participant[] }>(`/rooms/${encodeURIComponent(r.id)}`);
      const ps = full.participants ?? [];
      if (ps.length === 0) return;
      seen.add(r.id);
      liveRooms.set(r.id, { id: r.id, name: r.name, participants: ps });
    }),
  );
  for (const id of [...liveRooms.keys()]) if (!seen.has(id)) liveRooms.delete(id);
}

/** participantName is a participant's name for a tile, the identity when not known. */
export function participantName(room: string, identity: string): string {
  return liveRooms.get(room)?.participants.find((p) => p.identity === identity)?.name || identity;
}
