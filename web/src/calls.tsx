// Calls: the calls in progress, per server, live. Only the rows in view are rendered (a fixed
// row height), so a thousand calls cost what twenty do; the list reloads at most every
// 500 ms however many call events arrive.
import { useEffect, useRef, useState } from 'preact/hooks';
import { type Call, type CallsResponse, getJson } from './api.ts';
import { duration, time, useLive, useNow } from './live.ts';

const ROW_PX = 52;
const STATE_LABEL: Record<Call['state'], string> = {
  ringing: 'ringing',
  up: 'up',
  transferred: 'transferred',
  setup: 'setup',
};

function party(call: Call): { from: string; to: string } {
  const first = call.channels[0];
  if (first === undefined) return { from: '', to: '' };
  const label = (name: string, num: string) => [name, num].filter((x) => x !== '').join(' ') || '?';
  const from = label(first.callerId.name, first.callerId.num);
  const others = call.channels.filter((c) => c !== first && !c.name.startsWith('Local/'));
  const other = others[0];
  const to =
    other !== undefined
      ? label(other.callerId.name, other.callerId.num)
      : first.connectedLine.num !== ''
        ? label(first.connectedLine.name, first.connectedLine.num)
        : first.exten;
  return { from, to };
}

function CallRow({ call, now, top }: { call: Call; now: number; top: number }) {
  const { from, to } = party(call);
  const since = call.answeredMs ?? call.startedMs;
  return (
    <div class="row call" style={{ top: `${top}px`, height: `${ROW_PX}px` }} data-call={call.id}>
      <span class={`badge ${call.state}`}>{STATE_LABEL[call.state]}</span>
      <span class="who">
        <span class="line">
          <b>{from}</b> → <b>{to}</b>
        </span>
        <small>
          {call.server} · {call.channels.map((c) => c.name).join(', ')}
        </small>
      </span>
      <span class="when" title={`since ${time(since)}`}>
        {duration(now - since)}
      </span>
    </div>
  );
}

export function CallsView() {
  const live = useLive<CallsResponse>(
    () => getJson('/api/calls'),
    (e) => e.routing_key.startsWith('call.') || e.routing_key === 'switchboard.health',
    [],
    500,
    10_000,
  );
  const now = useNow();
  const [server, setServer] = useState('');
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (el === null) return;
    const observer = new ResizeObserver(() => setHeight(el.clientHeight));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  const servers = live.data?.servers ?? [];
  const calls = servers.filter((s) => server === '' || s.server === server).flatMap((s) => s.calls);
  const first = Math.max(0, Math.floor(scrollTop / ROW_PX) - 5);
  const last = Math.min(calls.length, Math.ceil((scrollTop + height) / ROW_PX) + 5);
  return (
    <section class="view calls">
      <header class="bar">
        <h2>Calls</h2>
        <span class="count" data-testid="calls-total">
          {calls.length} in progress
        </span>
        {servers.map((s) => (
          <span key={s.server} class={`server ${s.connected ? 'ok' : 'bad'}`}>
            {s.server}: {s.calls.length}
          </span>
        ))}
        <select
          value={server}
          onChange={(e) => setServer((e.target as HTMLSelectElement).value)}
          aria-label="server"
        >
          <option value="">all servers</option>
          {servers.map((s) => (
            <option key={s.server} value={s.server}>
              {s.server}
            </option>
          ))}
        </select>
      </header>
      {live.error && <p class="error">{live.error}</p>}
      <div
        class="scroll"
        ref={box}
        onScroll={(e) => setScrollTop((e.target as HTMLDivElement).scrollTop)}
      >
        <div class="rows" style={{ height: `${calls.length * ROW_PX}px` }}>
          {calls.slice(first, last).map((call, i) => (
            <CallRow key={`${call.server}/${call.id}`} call={call} now={now} top={(first + i) * ROW_PX} />
          ))}
        </div>
        {live.data !== undefined && calls.length === 0 && <p class="empty">No call in progress.</p>}
      </div>
    </section>
  );
}
