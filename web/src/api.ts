// HTTP access to Switchboard's documented APIs (docs/console.md), with the credential the
// login form stored in sessionStorage (only there: gone when the tab closes).
const KEY = 'switchboard.console.authorization';

/** The `Authorization` header value, if the user logged in during this session. */
export function authorization(): string | undefined {
  try {
    return sessionStorage.getItem(KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

/** Stores a Bearer token or Basic user/password for this session only. */
export function login(
  credential: { token: string } | { username: string; password: string },
): void {
  const value =
    'token' in credential
      ? `Bearer ${credential.token.trim()}`
      : `Basic ${btoa(String.fromCharCode(...new TextEncoder().encode(`${credential.username}:${credential.password}`)))}`;
  sessionStorage.setItem(KEY, value);
}

export function logout(): void {
  sessionStorage.removeItem(KEY);
}

/** Raised when the API answers 401/403: the page shows the login form. */
export class AuthRequired extends Error {
  constructor(readonly status: number) {
    super(status === 401 ? 'login required' : 'not allowed');
  }
}

/** Listeners told when a request needs a login. */
const authListeners = new Set<(status: number) => void>();
export function onAuthRequired(listener: (status: number) => void): () => void {
  authListeners.add(listener);
  return () => authListeners.delete(listener);
}

export function headers(extra: Record<string, string> = {}): Record<string, string> {
  const auth = authorization();
  return auth === undefined ? extra : { ...extra, authorization: auth };
}

async function check(response: Response): Promise<Response> {
  if (response.status === 401 || response.status === 403) {
    for (const listener of authListeners) listener(response.status);
    throw new AuthRequired(response.status);
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = (await response.json()) as { message?: string; error?: string };
      message = body.message ?? body.error ?? message;
    } catch {
      // Not JSON: the status line is the message.
    }
    throw new Error(message);
  }
  return response;
}

export async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(path, { headers: headers({ accept: 'application/json' }) });
  return (await check(response)).json() as Promise<T>;
}

export async function postForm<T>(
  path: string,
  body: FormData | Record<string, string>,
): Promise<T> {
  const init: RequestInit =
    body instanceof FormData
      ? { method: 'POST', body, headers: headers() }
      : {
          method: 'POST',
          body: JSON.stringify(body),
          headers: headers({ 'content-type': 'application/json' }),
        };
  const response = await fetch(path, init);
  return (await check(response)).json() as Promise<T>;
}

// --- Shapes of the console APIs (src/console/routes.ts) --------------------------------------

export interface CallerId {
  name: string;
  num: string;
}
export interface CallChannel {
  name: string;
  uniqueid: string;
  linkedid: string;
  state: number;
  stateName: string;
  callerId: CallerId;
  connectedLine: CallerId;
  exten: string;
  bridge: string | null;
  dialing: string[];
  dialedBy: string | null;
  createdMs: number;
  answeredMs: number | null;
}
export interface Call {
  id: string;
  server: string;
  state: 'ringing' | 'up' | 'transferred' | 'setup';
  startedMs: number;
  answeredMs: number | null;
  channels: CallChannel[];
}
export interface CallsResponse {
  nowMs: number;
  total: number;
  servers: Array<{ server: string; connected: boolean; calls: Call[] }>;
}
export interface Person {
  order: number;
  userid: string;
  name: string;
  telno: string;
  calls: number;
  latestMs: number | null;
  status: number | null;
  state: string;
}
export interface Attempt {
  order: number;
  n: number;
  state: string;
  outcome: string | null;
  key: string | null;
  placedMs: number;
  endedMs: number | null;
}
export interface Escalation {
  eventid: string;
  status: number;
  statusName: string;
  testflg: number;
  provider: string;
  hostname: string;
  operator: string;
  calltype: number;
  frequency: number;
  language: string;
  message: string;
  createdMs: number;
  startedMs: number | null;
  finishedMs: number | null;
  people: Person[];
  attempts: Attempt[];
}
export interface Page<T> {
  total: number;
  limit: number;
  offset: number;
  items: T[];
}
export interface Announcement {
  id: string;
  description: string;
  extension: string;
  kind: string;
  text: string;
  language: string;
  status: string;
  outcome: string;
  attempts: number;
  requestedMs: number;
  startMs: number;
  durationMs: number;
  endMs: number;
  finishedMs: number | null;
}
export interface Wakeup {
  atMs: number;
  status: string;
  reason: string;
  sipUserId: string;
  platform?: string;
  devices: number;
  heldMs: number;
  roundTripMs?: number;
}
export interface PushOverview {
  enabled: boolean;
  devices: Array<{ platform: string; app: string; count: number }>;
  wakeups: Wakeup[];
  histogram: { boundsMs: number[]; counts: number[] };
}
export interface AmiHealth {
  server: string;
  connected: boolean;
  sinceMs: number;
  lastEventMs: number | null;
  lastError: string;
  read: string[];
  write: string[];
  problems: string[];
  channels: number;
  bridges: number;
}
export interface Health {
  nowMs: number;
  timeZone: string;
  utcOffsetMin: number;
  instance: { name: string; uuid: string; version: string };
  ami: AmiHealth[];
  bus: { kind: string; connected: boolean; buffered: number; published: number; dropped: number };
  database: { dialect: string; ok: boolean; detail: string };
  redis: { configured: boolean; connected: boolean };
  dropped: Record<string, number>;
}
