// Escalations: the Barista alert calls, newest first, paged, with a status filter; the
// detail shows each person's state and a timeline of their attempts, live.
import { useState } from 'preact/hooks';
import { type Escalation, getJson, type Page } from './api.ts';
import { time, useLive } from './live.ts';

const PAGE = 25;

function Status({ name }: { name: string }) {
  return <span class={`badge ${name}`}>{name.replace('_', ' ')}</span>;
}

export function EscalationsView({ selected }: { selected: string | undefined }) {
  const [status, setStatus] = useState('');
  const [offset, setOffset] = useState(0);
  const list = useLive<Page<Escalation>>(
    () =>
      getJson(
        `/api/escalations?limit=${PAGE}&offset=${offset}${status === '' ? '' : `&status=${status}`}`,
      ),
    (e) => e.routing_key.startsWith('callout.'),
    [status, offset],
    500,
  );
  if (selected !== undefined) return <EscalationDetail eventid={selected} />;
  const page = list.data;
  return (
    <section class="view escalations">
      <header class="bar">
        <h2>Escalations</h2>
        <select
          aria-label="status"
          value={status}
          onChange={(e) => {
            setStatus((e.target as HTMLSelectElement).value);
            setOffset(0);
          }}
        >
          <option value="">every status</option>
          <option value="waiting">waiting</option>
          <option value="running">running</option>
          <option value="finished">finished</option>
          <option value="error">error</option>
        </select>
        {page && (
          <span class="count">
            {page.total === 0 ? 0 : offset + 1}–{Math.min(offset + PAGE, page.total)} of {page.total}
          </span>
        )}
        <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
          ‹ newer
        </button>
        <button
          type="button"
          disabled={page === undefined || offset + PAGE >= page.total}
          onClick={() => setOffset(offset + PAGE)}
        >
          older ›
        </button>
      </header>
      {list.error && <p class="error">{list.error}</p>}
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>received</th>
              <th>status</th>
              <th>host / message</th>
              <th>people</th>
            </tr>
          </thead>
          <tbody>
            {page?.items.map((e) => (
              <tr key={e.eventid} data-eventid={e.eventid}>
                <td>
                  <a href={`#/escalations/${encodeURIComponent(e.eventid)}`}>{time(e.createdMs)}</a>
                </td>
                <td>
                  <Status name={e.statusName} />
                  {e.testflg === 1 && <small> test</small>}
                </td>
                <td>
                  <b>{e.hostname}</b> <span class="msg">{e.message}</span>
                </td>
                <td class="people">
                  {e.people.map((p) => (
                    <span key={p.order} class={`chip ${p.state}`} title={p.state}>
                      {p.name}
                    </span>
                  ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {page?.items.length === 0 && <p class="empty">No escalation.</p>}
      </div>
    </section>
  );
}

function EscalationDetail({ eventid }: { eventid: string }) {
  const live = useLive<Escalation>(
    () => getJson(`/api/escalations/${encodeURIComponent(eventid)}`),
    (e) =>
      e.routing_key.startsWith('callout.') &&
      (e.data as { eventid?: string } | null)?.eventid === eventid,
    [eventid],
    200,
    5000,
  );
  const e = live.data;
  return (
    <section class="view escalation">
      <header class="bar">
        <a href="#/escalations">‹ all escalations</a>
        <h2>Escalation</h2>
        {e && <Status name={e.statusName} />}
      </header>
      {live.error && <p class="error">{live.error}</p>}
      {e && (
        <>
          <dl class="facts">
            <dt>host</dt>
            <dd>{e.hostname}</dd>
            <dt>message</dt>
            <dd>{e.message}</dd>
            <dt>operator</dt>
            <dd>{e.operator}</dd>
            <dt>calls</dt>
            <dd>
              {e.calltype === 1 ? 'sequential' : 'parallel'}, up to {e.frequency} per person
              {e.testflg === 1 ? ' (test: nobody is dialled)' : ''}
            </dd>
            <dt>received</dt>
            <dd>{time(e.createdMs)}</dd>
            <dt>finished</dt>
            <dd>{time(e.finishedMs)}</dd>
            <dt>id</dt>
            <dd>
              <code>{e.eventid}</code>
            </dd>
          </dl>
          <ol class="persons">
            {e.people.map((p) => (
              <li key={p.order} data-person={p.order}>
                <div class="person">
                  <span class="order">{p.order}</span>
                  <b>{p.name}</b>
                  <small>
                    {p.userid} · {p.telno}
                  </small>
                  <span class={`badge ${p.state}`} data-testid={`person-${p.order}-state`}>
                    {p.state.replace('_', ' ')}
                  </span>
                  <small>{p.calls} call(s)</small>
                </div>
                <ol class="timeline">
                  {e.attempts
                    .filter((a) => a.order === p.order)
                    .map((a) => (
                      <li key={a.n} class={`attempt ${a.outcome ?? a.state}`}>
                        <span class="n">#{a.n}</span> {time(a.placedMs)}
                        {' → '}
                        {a.outcome ?? a.state}
                        {a.key !== null && (
                          <span class="key" title="key pressed">
                            {' '}
                            key {a.key}
                          </span>
                        )}
                        {a.endedMs !== null && <small> ({Math.round((a.endedMs - a.placedMs) / 1000)} s)</small>}
                      </li>
                    ))}
                </ol>
              </li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}
