// A petition's steps as the console offers them: the server's rule
// (console/petitions) mirrored, so that only steps it would take are shown.
// Also the petition's attachments: checks before an upload, the upload and
// the download.

import { ApiError, errorOf } from '../api/client';
import { session } from './session';

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

// Attachments (信访材料): photos of a house, a scanned agreement. The server
// decides a file's type by its content and refuses what it does not take;
// the checks here only spare an officer a long upload bound to be refused.

export interface PetitionAttachment {
  id: string;
  petition_id: string;
  /** The sanitised upload name, or 附件 <n> when masked (the role may not read names). */
  name: string;
  masked?: boolean;
  content_type: string;
  size: number;
  sha256: string;
  created_by: string;
  created_at: string;
}

/** attachmentTypes are the types the server accepts, for the file picker. */
export const attachmentTypes = ['image/jpeg', 'image/png', 'image/webp', 'application/pdf'];
export const maxAttachmentBytes = 10 * 1024 * 1024;

/**
 * checkAttachment says why the server would refuse file, as the ApiError
 * it would answer, or null. A browser that does not know a file's type
 * (an empty type) leaves the decision to the server.
 */
export function checkAttachment(file: { size: number; type: string }): ApiError | null {
  if (file.size > maxAttachmentBytes) {
    return new ApiError(422, 'attachment_too_large', `must be at most ${maxAttachmentBytes} bytes (10 MiB)`, 'file');
  }
  if (file.type && !attachmentTypes.includes(file.type)) {
    return new ApiError(422, 'unsupported_attachment_type', `the content is ${file.type}`, 'file');
  }
  return null;
}

/** attachmentKind names a type for the list: JPEG, PNG, WebP, PDF. */
export function attachmentKind(contentType: string): string {
  const kinds: Record<string, string> = { 'image/jpeg': 'JPEG', 'image/png': 'PNG', 'image/webp': 'WebP', 'application/pdf': 'PDF' };
  return kinds[contentType] ?? contentType;
}

/** formatSize says a file's size in B, KB or MB (1024-based, as the limits are). */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

function authHeaders(): Record<string, string> {
  const token = session.token();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// send is api() for bodies that are not JSON and answers that may not be:
// the same token, the same end of the session on a 401, the same errors.
async function send(path: string, init: RequestInit): Promise<Response> {
  const hadToken = session.token() !== '';
  const resp = await fetch(`/api/v1${path}`, { ...init, headers: { ...authHeaders(), ...(init.headers as Record<string, string>) } });
  if (resp.status === 401 && hadToken) session.end('expired');
  if (!resp.ok) throw await errorOf(resp);
  return resp;
}

function attachmentsPath(petitionId: string): string {
  return `/petitions/${encodeURIComponent(petitionId)}/attachments`;
}

/** uploadAttachment sends file as the petition's attachment (multipart, the part file). */
export async function uploadAttachment(petitionId: string, file: File): Promise<PetitionAttachment> {
  const body = new FormData();
  body.append('file', file, file.name);
  const resp = await send(attachmentsPath(petitionId), { method: 'POST', body, headers: { Accept: 'application/json' } });
  return (await resp.json()) as PetitionAttachment;
}

/**
 * downloadAttachment fetches an attachment (the bearer token rules out a
 * plain link) and hands it to the browser to save under its name; the
 * console never shows it inline, as the server does not.
 */
export async function downloadAttachment(att: PetitionAttachment): Promise<void> {
  const resp = await send(`${attachmentsPath(att.petition_id)}/${encodeURIComponent(att.id)}`, { method: 'GET' });
  const url = URL.createObjectURL(await resp.blob());
  try {
    const a = document.createElement('a');
    a.href = url;
    a.download = att.name;
    a.rel = 'noopener';
    document.body.appendChild(a);
    a.click();
    a.remove();
  } finally {
    // Not at once: some browsers read the blob after click() returns.
    // Then it goes, as it is personal data.
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
}
