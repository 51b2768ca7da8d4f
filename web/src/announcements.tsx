// Announcements: the queue as a timeline (effective start and duration), the history, and a
// form to schedule a spoken message or an uploaded audio file (Gong's API).
import { useState } from 'preact/hooks';
import { type Announcement, getJson, type Page, postForm } from './api.ts';
import { duration, time, useLive, useNow } from './live.ts';

const PAGE = 25;

function Timeline({ items, now }: { items: Announcement[]; now: number }) {
  if (items.length === 0) return <p class="empty">Nothing scheduled.</p>;
  const start = Math.min(now, ...items.map((m) => m.startMs));
  const end = Math.max(now + 60_000, ...items.map((m) => m.endMs));
  const span = end - start;
  const pct = (ms: number) => `${((ms - start) / span) * 100}%`;
  return (
    <div class="timeline-bar" aria-label="queue timeline">
      <div class="now" style={{ left: pct(now) }} title="now" />
      {items.map((m) => (
        <div
          key={m.id}
          class={`slot ${m.status}`}
          style={{ left: pct(m.startMs), width: `max(4px, ${((m.endMs - m.startMs) / span) * 100}%)` }}
          title={`${time(m.startMs)} ${m.description || m.text}`}
        />
      ))}
      <span class="from">{time(start)}</span>
      <span class="to">{time(end)}</span>
    </div>
  );
}

function ScheduleForm({ onDone }: { onDone: () => void }) {
  const [kind, setKind] = useState<'tts' | 'audio'>('tts');
  const [message, setMessage] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const form = event.target as HTMLFormElement;
    const data = new FormData(form);
    const startLocal = String(data.get('start') ?? '');
    data.delete('start');
    if (startLocal !== '') data.set('start', new Date(startLocal).toISOString());
    for (const key of ['extension', 'description', 'language']) {
      if (data.get(key) === '') data.delete(key);
    }
    setBusy(true);
    try {
      let result: { id?: string };
      if (kind === 'tts') {
        data.delete('audio');
        const fields: Record<string, string> = {};
        for (const [k, v] of data.entries()) if (typeof v === 'string') fields[k] = v;
        result = await postForm('/messages/tts/add', fields);
      } else {
        data.delete('text');
        data.delete('language');
        result = await postForm('/messages/add', data);
      }
      setMessage(`scheduled ${result.id ?? ''}`);
      form.reset();
      onDone();
    } catch (e) {
      setMessage((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="schedule" onSubmit={submit}>
      <fieldset>
        <legend>Schedule</legend>
        <label>
          <input type="radio" name="kind" checked={kind === 'tts'} onChange={() => setKind('tts')} /> speech
        </label>
        <label>
          <input type="radio" name="kind" checked={kind === 'audio'} onChange={() => setKind('audio')} /> audio file
        </label>
      </fieldset>
      {kind === 'tts' ? (
        <>
          <label>
            text <textarea name="text" required maxLength={5000} rows={2} placeholder="本日の会議は15時からです" />
          </label>
          <label>
            language
            <select name="language">
              <option value="">default</option>
              <option value="ja">ja</option>
              <option value="en">en</option>
            </select>
          </label>
        </>
      ) : (
        <label>
          audio <input type="file" name="audio" required accept="audio/*" />
        </label>
      )}
      <label>
        extension <input name="extension" maxLength={80} placeholder="default" />
      </label>
      <label>
        start <input type="datetime-local" name="start" step={1} />
      </label>
      <label>
        description <input name="description" maxLength={200} />
      </label>
      <button type="submit" disabled={busy}>
        Schedule
      </button>
      {message && <output>{message}</output>}
    </form>
  );
}

function Row({ m, history }: { m: Announcement; history: boolean }) {
  return (
    <tr data-announcement={m.id}>
      <td>{time(history ? (m.finishedMs ?? m.startMs) : m.startMs)}</td>
      <td>
        <span class={`badge ${m.status}`}>{m.status}</span>
        {history && m.outcome !== '' && <small> {m.outcome}</small>}
      </td>
      <td>{duration(m.durationMs)}</td>
      <td>{m.extension}</td>
      <td class="msg">{m.description || m.text || (m.kind === 'audio' ? '(audio)' : '')}</td>
    </tr>
  );
}

export function AnnouncementsView() {
  const now = useNow();
  const [offset, setOffset] = useState(0);
  const isAnnounce = (e: { routing_key: string }) => e.routing_key.startsWith('announce.');
  const schedule = useLive<{ nowMs: number; items: Announcement[] }>(
    () => getJson('/api/announcements/schedule'),
    isAnnounce,
    [],
    300,
    5000,
  );
  const history = useLive<Page<Announcement>>(
    () => getJson(`/api/announcements/history?limit=${PAGE}&offset=${offset}`),
    isAnnounce,
    [offset],
    300,
  );
  const queue = schedule.data?.items ?? [];
  return (
    <section class="view announcements">
      <header class="bar">
        <h2>Announcements</h2>
      </header>
      {schedule.error && <p class="error">{schedule.error}</p>}
      <h3>Queue</h3>
      <Timeline items={queue} now={now} />
      <div class="table-wrap">
        <table data-testid="queue">
          <tbody>
            {queue.map((m) => (
              <Row key={m.id} m={m} history={false} />
            ))}
          </tbody>
        </table>
      </div>
      <ScheduleForm
        onDone={() => {
          schedule.reload();
          history.reload();
        }}
      />
      <h3>
        History
        {history.data && <small> ({history.data.total})</small>}
        <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
          ‹ newer
        </button>
        <button
          type="button"
          disabled={history.data === undefined || offset + PAGE >= history.data.total}
          onClick={() => setOffset(offset + PAGE)}
        >
          older ›
        </button>
      </h3>
      <div class="table-wrap">
        <table data-testid="history">
          <tbody>
            {history.data?.items.map((m) => (
              <Row key={m.id} m={m} history={true} />
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
