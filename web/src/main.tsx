// The Switchboard console: a small Preact app over the documented APIs (docs/console.md).
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { AnnouncementsView } from './announcements.tsx';
import { authorization, login, logout, onAuthRequired } from './api.ts';
import { CallsView } from './calls.tsx';
import { EscalationsView } from './escalations.tsx';
import { onStreamStatus, startEvents, stopEvents } from './events.ts';
import { HealthView, useHealth } from './health.tsx';
import { browserZone, offsetText, serverTime, useNow } from './live.ts';
import './style.css';
import { WakeupsView } from './wakeups.tsx';

const VIEWS = [
  ['calls', 'Calls'],
  ['escalations', 'Escalations'],
  ['announcements', 'Announcements'],
  ['wakeups', 'Wake-ups'],
  ['health', 'Health'],
] as const;
type View = (typeof VIEWS)[number][0];

function route(): { view: View; id: string | undefined } {
  const [, view = 'calls', id] = location.hash.replace(/^#/, '').split('/');
  const known = VIEWS.some(([name]) => name === view) ? (view as View) : 'calls';
  return { view: known, id: id === undefined || id === '' ? undefined : decodeURIComponent(id) };
}

function Login({ status, onDone }: { status: number; onDone: () => void }) {
  const [mode, setMode] = useState<'token' | 'basic'>('token');
  const submit = (event: Event) => {
    event.preventDefault();
    const data = new FormData(event.target as HTMLFormElement);
    if (mode === 'token') login({ token: String(data.get('token') ?? '') });
    else login({ username: String(data.get('username') ?? ''), password: String(data.get('password') ?? '') });
    onDone();
  };
  return (
    <div class="login">
      <form onSubmit={submit}>
        <h2>Switchboard</h2>
        <p>
          {status === 403 && authorization() !== undefined
            ? 'This credential may not use the console.'
            : 'Log in with a token or a user of the auth section. It is kept for this tab only.'}
        </p>
        <label>
          <input type="radio" checked={mode === 'token'} onChange={() => setMode('token')} /> token
        </label>
        <label>
          <input type="radio" checked={mode === 'basic'} onChange={() => setMode('basic')} /> user
        </label>
        {mode === 'token' ? (
          <label>
            token <input name="token" type="password" autocomplete="off" required />
          </label>
        ) : (
          <>
            <label>
              user <input name="username" autocomplete="username" required />
            </label>
            <label>
              password <input name="password" type="password" autocomplete="current-password" required />
            </label>
          </>
        )}
        <button type="submit">Log in</button>
      </form>
    </div>
  );
}

function Clock() {
  const now = useNow();
  const health = useHealth().data;
  const browserOffset = -new Date(now).getTimezoneOffset();
  return (
    <span class="clock" title="times are shown in the browser's time zone">
      {new Date(now).toLocaleTimeString(undefined, { hour12: false })} {browserZone} ({offsetText(browserOffset)})
      {health && (health.timeZone !== browserZone || health.utcOffsetMin !== browserOffset) && (
        <>
          {' · server '}
          {serverTime(now, health.timeZone)} {health.timeZone} ({offsetText(health.utcOffsetMin)})
        </>
      )}
      {health && health.timeZone === browserZone && <> · server: same zone</>}
    </span>
  );
}

function App() {
  const [where, setWhere] = useState(route());
  const [auth, setAuth] = useState<number | undefined>(undefined);
  const [generation, setGeneration] = useState(0);
  const [streaming, setStreaming] = useState(false);
  useEffect(() => {
    const onHash = () => setWhere(route());
    addEventListener('hashchange', onHash);
    const offAuth = onAuthRequired((status) => setAuth(status));
    const offStatus = onStreamStatus(setStreaming);
    startEvents();
    return () => {
      removeEventListener('hashchange', onHash);
      offAuth();
      offStatus();
    };
  }, []);
  if (auth !== undefined) {
    return (
      <Login
        status={auth}
        onDone={() => {
          setAuth(undefined);
          stopEvents();
          startEvents();
          setGeneration(generation + 1);
        }}
      />
    );
  }
  return (
    <div class="app" key={generation}>
      <nav>
        <h1>Switchboard</h1>
        {VIEWS.map(([name, label]) => (
          <a key={name} href={`#/${name}`} class={where.view === name ? 'active' : ''}>
            {label}
          </a>
        ))}
        <span class={`live ${streaming ? 'ok' : 'bad'}`} title="live updates (/api/events)">
          {streaming ? '● live' : '○ reconnecting'}
        </span>
        <Clock />
        {authorization() !== undefined && (
          <button
            type="button"
            onClick={() => {
              logout();
              location.reload();
            }}
          >
            log out
          </button>
        )}
      </nav>
      <main>
        {where.view === 'calls' && <CallsView />}
        {where.view === 'escalations' && <EscalationsView selected={where.id} />}
        {where.view === 'announcements' && <AnnouncementsView />}
        {where.view === 'wakeups' && <WakeupsView />}
        {where.view === 'health' && <HealthView />}
      </main>
    </div>
  );
}

const root = document.getElementById('app');
if (root !== null) render(<App />, root);
