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

// --- Shapes of the console APIs: derived from their TypeBox schemas (src/console/schemas.ts),
// never written twice (type-only imports: nothing of the server reaches the bundle). -------

import type { Static } from 'typebox';
import type {
  AnnouncementSchema,
  AttemptSchema,
  CallChannelSchema,
  CallerId as CallerIdSchema,
  CallSchema,
  CallsResponse as CallsResponseSchema,
  EscalationSchema,
  HealthResponse,
  PersonSchema,
  PushResponse,
  WakeupSchema,
} from '../../src/console/schemas.ts';

export type CallerId = Static<typeof CallerIdSchema>;
export type CallChannel = Static<typeof CallChannelSchema>;
export type Call = Static<typeof CallSchema>;
export type CallsResponse = Static<typeof CallsResponseSchema>;
export type Person = Static<typeof PersonSchema>;
export type Attempt = Static<typeof AttemptSchema>;
export type Escalation = Static<typeof EscalationSchema>;
export interface Page<T> {
  total: number;
  limit: number;
  offset: number;
  items: T[];
}
export type Announcement = Static<typeof AnnouncementSchema>;
export type Wakeup = Static<typeof WakeupSchema>;
export type PushOverview = Static<typeof PushResponse>;
export type Health = Static<typeof HealthResponse>;
export type AmiHealth = Health['ami'][number];
