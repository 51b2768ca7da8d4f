// Health: each AMI server (connected, login classes, last event), the bus, the database,
// Redis and the dropped-message counters.
import { getJson, type Health } from './api.ts';
import { time, useLive } from './live.ts';

function Ok({ ok, yes, no }: { ok: boolean; yes: string; no: string }) {
  return <span class={`badge ${ok ? 'ok' : 'bad'}`}>{ok ? yes : no}</span>;
}

export function useHealth() {
  return useLive<Health>(
    () => getJson('/api/health'),
    (e) => e.routing_key === 'switchboard.health',
    [],
    300,
    5000,
  );
}

export function HealthView() {
  const live = useHealth();
  const h = live.data;
  return (
    <section class="view health">
      <header class="bar">
        <h2>Health</h2>
        {h && (
          <span class="count">
            {h.instance.name} · v{h.instance.version}
          </span>
        )}
      </header>
      {live.error && <p class="error">{live.error}</p>}
      {h && (
        <div class="cards">
          {h.ami.map((a) => (
            <article key={a.server} class="card" data-ami={a.server}>
              <h3>
                AMI {a.server}{' '}
                <span data-testid={`ami-${a.server}`}>
                  <Ok ok={a.connected} yes="connected" no="disconnected" />
                </span>
              </h3>
              <p>
                {a.connected ? 'connected' : 'disconnected'} since {time(a.sinceMs)}
                {a.lastError !== '' && <small> ({a.lastError})</small>}
              </p>
              <p>last event: {time(a.lastEventMs)}</p>
              <p>
                {a.channels} channels, {a.bridges} bridges
              </p>
              <p>
                read: <code>{a.read.join(', ') || '—'}</code>
              </p>
              <p>
                write: <code>{a.write.join(', ') || '—'}</code>
              </p>
              {a.problems.map((p) => (
                <p key={p} class="error">
                  {p}
                </p>
              ))}
            </article>
          ))}
          <article class="card">
            <h3>
              Bus <Ok ok={h.bus.connected} yes="connected" no="disconnected" />
            </h3>
            <p>{h.bus.kind}</p>
            <p>
              published {h.bus.published}, buffered {h.bus.buffered}, dropped {h.bus.dropped}
            </p>
          </article>
          <article class="card">
            <h3>
              Database <Ok ok={h.database.ok} yes="ok" no="unreachable" />
            </h3>
            <p>{h.database.dialect}</p>
            {h.database.detail !== '' && <p class="error">{h.database.detail}</p>}
          </article>
          <article class="card">
            <h3>
              Redis{' '}
              {h.redis.configured ? (
                <Ok ok={h.redis.connected} yes="connected" no="disconnected" />
              ) : (
                <span class="badge setup">not configured</span>
              )}
            </h3>
          </article>
          <article class="card">
            <h3>Dropped</h3>
            {Object.keys(h.dropped).length === 0 ? (
              <p>nothing dropped</p>
            ) : (
              <ul>
                {Object.entries(h.dropped).map(([k, v]) => (
                  <li key={k}>
                    <code>{k}</code>: {v}
                  </li>
                ))}
              </ul>
            )}
          </article>
        </div>
      )}
    </section>
  );
}
