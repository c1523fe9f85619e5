// The shapes of Lookout's HTTP API that the console reads (docs/openapi.yaml
// is the reference; only the fields the console uses are named here).

export type Severity = 'blue' | 'yellow' | 'orange' | 'red';
export type AlertState = 'active' | 'acknowledged' | 'dispatched' | 'resolved' | 'closed';

export interface Org {
  id: string;
  parent_id?: string;
  name: string;
  kind: string;
}

export interface User {
  id: string;
  display_name: string;
  org_id: string;
  role: string;
}

export interface Me {
  user: User;
  org: Org;
  permissions: string[];
}

export interface LoginResponse {
  token: string;
  expires_at: string;
  user: User;
}

export interface Site {
  id: string;
  name: string;
  kind: string;
  org_id: string;
  lat: number;
  lon: number;
}

export interface Device {
  id: string;
  kind: string;
  name: string;
  site_id: string;
  org_id: string;
  lat: number;
  lon: number;
  meta?: Record<string, string>;
  disabled?: boolean;
  online?: boolean;
  state?: 'online' | 'offline' | 'unknown';
  last_seen?: string | null;
  latest?: Record<string, LatestValue>;
  desired?: Record<string, Desired>;
}

export interface LatestValue {
  ts: number; // Unix ms
  value?: number;
  text?: string;
}

/** Desired is what operators set a metric to next to what the device reports. */
export interface Desired {
  value: number;
  reported: number | null;
  reported_ts: number | null;
  in_sync: boolean;
  command: Command;
}

export type CameraState = 'idle' | 'connecting' | 'live' | 'offline';

export interface StreamStatus {
  state: CameraState;
  reason?: string;
  codec?: string;
  fps?: number;
  bitrate_kbps?: number;
  next_retry?: string;
}

export interface Camera {
  id: string;
  name: string;
  site_id: string;
  org_id: string;
  lat?: number;
  lon?: number;
  sub_url?: string;
  state?: CameraState | 'unknown';
  stream?: StreamStatus;
}

export interface Feed {
  camera_id: string;
  site_id?: string;
  distance_m?: number;
}

export interface StepRecord {
  step: string;
  actor: string;
  note?: string;
  severity?: Severity;
  at: string;
}

export interface Alert {
  id: string;
  rule_id: string;
  rule_name?: string;
  kind: string;
  device_id: string;
  device_name?: string;
  site_id: string;
  org_id: string;
  metric?: string;
  severity: Severity;
  state: AlertState;
  started_at: string;
  updated_at: string;
  cleared_at?: string | null;
  value: number;
  peak?: number;
  bound?: number;
  position?: [number, number];
  feeds?: Feed[];
  steps?: StepRecord[];
}

export type CommandState = 'pending' | 'sent' | 'acked' | 'failed' | 'timeout' | 'expired';

export interface Command {
  id: string;
  device_id: string;
  name: string;
  params?: Record<string, unknown>;
  state: CommandState;
  error?: string;
  created_at: string;
  done_at?: string;
}

export interface Point {
  ts: number;
  value: number;
}

export type SourceKind = 'camera' | 'participant';

export interface Source {
  kind: SourceKind;
  id: string;
  room_id?: string;
}

export interface Patrol {
  camera_ids: string[];
  dwell_s: number;
  started_at?: string;
}

export interface Tile {
  source?: Source | null;
  patrol?: Patrol | null;
  alert_id?: string;
  before?: Source | null;
}

export type Layout = '1' | '4' | '9' | '16' | '1+5';

export interface Wall {
  id: string;
  org_id: string;
  name: string;
  layout: Layout;
  tiles: Tile[];
  patrol?: Patrol | null;
  alert_area?: number[];
  version: number;
  updated_at?: string;
  updated_by?: string;
}

export interface ListResponse<T> {
  items: T[];
  item_count?: number;
}

/** One message's data on GET /api/v1/events. */
export interface LiveEvent<T = unknown> {
  id: string;
  type: 'alert' | 'device' | 'command' | 'camera' | 'wall';
  org_id: string;
  at: string;
  data: T;
}

// Remote hearings of petitions (信访远程听证): GET /api/v1/hearings and
// what hangs off one hearing (console/hearings).

export type HearingState = 'scheduled' | 'in_progress' | 'ended' | 'cancelled';
export type HearingOutcome = 'resolved' | 'follow_up' | 'referred';

/** HearingOther is a further participant the officer invites (a department's representative). */
export interface HearingOther {
  name: string;
  role: string;
}

/** HearingLinkState is the state of the resident's link, never the link itself. */
export interface HearingLinkState {
  active: boolean;
  /** A device has opened it. */
  used: boolean;
  /** The officer lets one other device open it once. */
  allow_other_device: boolean;
}

export interface HearingNote {
  author: string;
  text: string;
  at: string;
}

export type RecordingState = 'recording' | 'complete' | 'interrupted' | 'failed' | 'deleted';

export interface HearingRecording {
  id: string;
  identity: string;
  name: string;
  role: string;
  source: 'camera' | 'microphone' | string;
  kind: 'video' | 'audio' | string;
  codec: string;
  state: RecordingState;
  bytes: number;
  sha256?: string;
  duration_ms: number;
  pauses: { from: string; to: string }[] | null;
  started_at: string;
  ended_at?: string;
  deleted_by?: string;
  deleted_at?: string;
}

/** LobbyEntry is one participant waiting in the hearing room's lobby. */
export interface LobbyEntry {
  identity: string;
  name: string;
  role: string;
  since: string;
}

export interface Hearing {
  id: string;
  petition_id: string;
  org_id: string;
  room_id: string;
  officer_id: string;
  others: HearingOther[] | null;
  starts_at: string;
  link_expires_at: string;
  state: HearingState;
  link: HearingLinkState;
  consent_at?: string;
  admitted_at?: string;
  ended_at?: string;
  outcome?: HearingOutcome;
  outcome_note?: string;
  signed: boolean;
  created_by?: string;
  created_at?: string;
  /** Only on GET /hearings/{id}. */
  notes?: HearingNote[];
  recordings?: HearingRecording[];
  /** Who waits now; absent when nobody does, and once the hearing is over. */
  lobby?: LobbyEntry[];
}

/** HearingLink is the resident's link as the server answers it, once: a path to make a URL of. */
export interface HearingLink {
  path: string;
  expires_at: string;
}

export interface ScheduledHearing {
  hearing: Hearing;
  link: HearingLink;
}

export interface HostToken {
  room_id: string;
  token: string;
  expires_at: string;
  identity: string;
}

/** SignedHearingRecord is GET /hearings/{id}/record: the record (JSON as signed), its Ed25519 signature and key. */
export interface SignedHearingRecord {
  record: {
    hearing: string;
    petition: string;
    subject: string;
    outcome: string;
    signed_at: string;
    [k: string]: unknown;
  };
  signature: string;
  public_key: string;
  valid: boolean;
}
