// Wake-ups: push devices per platform and app (counts only), the recent wake-ups with their
// ACK/NAK reason and round trip, and a small histogram of the round trips.
import { getJson, type PushOverview } from './api.ts';
import { time, useLive } from './live.ts';

export function WakeupsView() {
  const live = useLive<PushOverview>(
    () => getJson('/api/push'),
    (e) => e.routing_key.startsWith('push.'),
    [],
    500,
    15_000,
  );
  const data = live.data;
  const max = Math.max(1, ...(data?.histogram.counts ?? [1]));
  const bounds = data?.histogram.boundsMs ?? [];
  return (
    <section class="view wakeups">
      <header class="bar">
        <h2>Wake-ups</h2>
        {data && !data.enabled && <span class="count">push is not enabled (push.enabled)</span>}
      </header>
      {live.error && <p class="error">{live.error}</p>}
      <div class="cols">
        <div>
          <h3>Devices</h3>
          <table>
            <thead>
              <tr>
                <th>platform</th>
                <th>app</th>
                <th>devices</th>
              </tr>
            </thead>
            <tbody>
              {data?.devices.map((d) => (
                <tr key={`${d.platform}/${d.app}`}>
                  <td>{d.platform}</td>
                  <td>{d.app}</td>
                  <td>{d.count}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {data?.devices.length === 0 && <p class="empty">No device registered.</p>}
        </div>
        <div>
          <h3>Round trip</h3>
          <div class="histogram" aria-label="round-trip histogram">
            {data?.histogram.counts.map((count, i) => (
              <div
                key={String(bounds[i] ?? 'more')}
                class="bucket"
                data-bucket={i < bounds.length ? `le-${bounds[i]}` : 'more'}
              >
                <span class="n">{count}</span>
                <div class="fill" style={{ height: `${(count / max) * 100}%` }} />
                <small>{i < bounds.length ? `≤${bounds[i]} ms` : `>${bounds[bounds.length - 1]} ms`}</small>
              </div>
            ))}
          </div>
        </div>
      </div>
      <h3>Recent</h3>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>time</th>
              <th>account</th>
              <th>answer</th>
              <th>platform</th>
              <th>devices</th>
              <th>round trip</th>
              <th>held</th>
            </tr>
          </thead>
          <tbody>
            {data?.wakeups.map((w, i) => (
              <tr key={`${w.atMs}-${i}`}>
                <td>{time(w.atMs)}</td>
                <td>{w.sipUserId}</td>
                <td>
                  <span class={`badge ${w.status === 'ACK' ? 'positive' : 'negative'}`}>{w.status}</span>{' '}
                  {w.reason}
                </td>
                <td>{w.platform ?? ''}</td>
                <td>{w.devices}</td>
                <td>{w.roundTripMs === undefined ? '—' : `${Math.round(w.roundTripMs)} ms`}</td>
                <td>{Math.round(w.heldMs)} ms</td>
              </tr>
            ))}
          </tbody>
        </table>
        {data?.wakeups.length === 0 && <p class="empty">No wake-up yet.</p>}
      </div>
    </section>
  );
}
