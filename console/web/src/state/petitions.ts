// A petition's steps as the console offers them: the server's rule
// (console/petitions) mirrored, so that only steps it would take are shown.

export type PetitionState = 'received' | 'scheduled' | 'heard' | 'resolved' | 'closed' | 'withdrawn';
export type PetitionStep = Exclude<PetitionState, 'received'>;

const from: Record<PetitionStep, PetitionState[]> = {
  scheduled: ['received', 'heard'],
  heard: ['scheduled'],
  resolved: ['heard'],
  closed: ['resolved', 'withdrawn'],
  withdrawn: ['received', 'scheduled', 'heard'],
};

/** petitionSteps lists the steps a petition in state may take, in the order a hearing goes. */
export function petitionSteps(state: PetitionState): PetitionStep[] {
  return (Object.keys(from) as PetitionStep[]).filter((s) => from[s].includes(state));
}

export interface Petitioner {
  name: string;
  phone: string;
  id_number: string;
  masked?: boolean;
}

export interface Petition {
  id: string;
  org_id: string;
  site_id?: string;
  petitioner: Petitioner;
  subject: string;
  description: string;
  state: PetitionState;
  created_by: string;
  created_at: string;
  updated_at: string;
  steps?: { step: string; actor: string; note?: string; at: string }[];
}

/** idNumberLooksValid checks an ID number's form and check character (GB 11643) before it is sent. */
export function idNumberLooksValid(id: string): boolean {
  const v = id.trim().toUpperCase();
  if (!/^[0-9]{17}[0-9X]$/.test(v)) return false;
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(v[i]) * weights[i];
  return v[17] === '10X98765432'[sum % 11];
}
