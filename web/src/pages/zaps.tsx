import { useState } from 'preact/hooks';
import { api, errorMessage, type Zap } from '../api';
import { CopyField, ErrorBox, Icon, Loading, Page, Status, Time, useApi, useTitle } from '../ui';

function ZapRow({ zap, onChange, onDelete }: { zap: Zap; onChange: (z: Zap) => void; onDelete: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const toggle = async (enabled: boolean) => {
    setBusy(true);
    setError(null);
    onChange({ ...zap, enabled }); // optimistic: the switch follows the click at once
    try {
      const r = await api<{ zap?: Zap }>('PATCH', `/api/v1/zap/${zap.id}`, { enabled });
      onChange(r && r.zap ? { ...zap, ...r.zap, lastRun: r.zap.lastRun ?? zap.lastRun } : { ...zap, enabled });
    } catch (e) {
      onChange({ ...zap, enabled: !enabled });
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };

  const remove = async () => {
    if (!window.confirm(`Delete the zap “${zap.name}”? ${zap.webhookUrl ? 'Its webhook URL stops working.' : 'Its schedule stops.'}`)) return;
    setBusy(true);
    setError(null);
    try {
      await api('DELETE', `/api/v1/zap/${zap.id}`);
      onDelete();
    } catch (e) {
      setError(errorMessage(e));
      setBusy(false);
    }
  };

  return (
    <li class="card zap-row" data-zap-id={zap.id}>
      <div class="zap-main">
        <h2 class="zap-name">
          <a href={`/zaps/${zap.id}`}>{zap.name}</a>
        </h2>
        <span class="chain" aria-label={`Trigger ${zap.trigger?.type?.name ?? zap.trigger?.triggerId}, then ${zap.actions.map((a) => a.type?.name ?? a.actionId).join(', ')}`}>
          <Icon id={zap.trigger?.triggerId ?? 'webhook'} />
          {zap.actions.map((a) => (
            <>
              <span class="arrow" aria-hidden="true">
                →
              </span>
              <Icon id={a.actionId} />
            </>
          ))}
        </span>
        <label class="switch">
          <input type="checkbox" checked={zap.enabled} disabled={busy} onChange={(e) => toggle(e.currentTarget.checked)} aria-label={`Enabled: ${zap.name}`} />
          <span aria-hidden="true">{zap.enabled ? 'On' : 'Off'}</span>
        </label>
      </div>
      {zap.webhookUrl ? (
        <CopyField value={zap.webhookUrl} id={`hook-${zap.id}`} />
      ) : (
        // A schedule zap has no URL: say when it runs next instead.
        <p class="next-run">
          {zap.nextFireAt ? (
            <>
              Next run at <Time at={zap.nextFireAt} /> (<Time at={zap.nextFireAt} relative />)
            </>
          ) : (
            <span class="muted">{zap.enabled ? 'No next run scheduled' : 'Scheduled; off while disabled'}</span>
          )}
        </p>
      )}
      <div class="zap-meta">
        {zap.lastRun !== undefined && (
          <span>
            Last run:{' '}
            {zap.lastRun ? (
              <a href={`/runs/${zap.lastRun.id}`}>
                <Status status={zap.lastRun.status} /> <Time at={zap.lastRun.createdAt} relative />
              </a>
            ) : (
              <span class="muted">none yet</span>
            )}
          </span>
        )}
        <span>
          Created <Time at={zap.createdAt} />
        </span>
        <span class="row-actions">
          <a class="btn small" href={`/zaps/${zap.id}/runs`}>
            Runs
          </a>
          <button type="button" class="btn small danger" onClick={remove} disabled={busy}>
            Delete
          </button>
        </span>
      </div>
      <ErrorBox error={error} />
    </li>
  );
}

export function ZapsList() {
  useTitle('Zaps');
  const list = useApi<{ zaps: Zap[] }>('/api/v1/zap');
  const zaps = list.data?.zaps ?? null;
  const error = list.error;
  const setZaps = (f: (all: Zap[]) => Zap[]) => list.setData((prev) => ({ zaps: f(prev?.zaps ?? []) }));

  return (
    <Page
      title="Zaps"
      actions={
        <a class="btn primary" href="/zaps/new">
          New zap
        </a>
      }
    >
      <ErrorBox error={error} />
      {!zaps && !error && <Loading what="Loading zaps" />}
      {zaps && zaps.length === 0 && (
        <div class="empty card">
          <p>No zaps yet. A zap runs its actions for every request to its webhook URL, or on a schedule.</p>
          <a class="btn primary" href="/zaps/new">
            Create your first zap
          </a>
        </div>
      )}
      {zaps && zaps.length > 0 && (
        <ul class="zap-list">
          {zaps.map((z) => (
            <ZapRow
              key={z.id}
              zap={z}
              onChange={(nz) => setZaps((all) => all.map((x) => (x.id === nz.id ? nz : x)))}
              onDelete={() => setZaps((all) => all.filter((x) => x.id !== z.id))}
            />
          ))}
        </ul>
      )}
    </Page>
  );
}
