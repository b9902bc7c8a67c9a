import { useEffect, useRef, useState } from 'preact/hooks';
import { useLocation, useRoute } from 'preact-iso/router';
import { api, type CatalogItem, errorMessage, type FilterOutput, isActive, loadCatalog, type Run, RUN_STATUSES, type Step, type Zap } from '../api';
import { ErrorBox, Fact, fmtDuration, Icon, Json, Loading, Page, Status, Time, useApi, useInterval, useTitle } from '../ui';

const PAGE = 25;

export function RunsList() {
  const { params } = useRoute();
  const zapId = params.id;
  const zap = useApi<{ zap: Zap }>(`/api/v1/zap/${zapId}`);
  const [status, setStatus] = useState('');
  const [runs, setRuns] = useState<Run[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [more, setMore] = useState(false);
  useTitle(zap.data ? `Runs of ${zap.data.zap.name}` : 'Runs');

  const query = (limit: number, cur?: string | null) => {
    const q = new URLSearchParams({ zapId, limit: String(limit) });
    if (status) q.set('status', status);
    if (cur) q.set('cursor', cur);
    return `/api/v1/runs?${q}`;
  };

  // Answers can come back out of order: a slow "All" request or an auto-refresh tick may finish
  // after the user picked another status or zap. Every request is numbered; an answer is shown
  // only if nothing newer has been shown, and a filter change drops (and aborts) all in flight.
  const seq = useRef(0);
  const applied = useRef(0);
  const inflight = useRef(new Set<AbortController>());
  const request = async (q: string, apply: (r: { runs: Run[]; nextCursor: string | null }) => void, base?: number) => {
    const mine = ++seq.current;
    const ctl = new AbortController();
    inflight.current.add(ctl);
    try {
      const r = await api<{ runs: Run[]; nextCursor: string | null }>('GET', q, undefined, { signal: ctl.signal });
      // `base`: Load more appends to the rows shown when it was clicked, so any answer shown since voids it.
      if (mine <= applied.current || (base !== undefined && applied.current !== base)) return;
      applied.current = mine;
      apply(r);
      setError(null);
    } catch (e) {
      if (mine <= applied.current) return;
      applied.current = mine;
      setError(errorMessage(e));
    } finally {
      inflight.current.delete(ctl);
    }
  };

  // (Re)load the first page; with `keep` it reloads as many rows as are shown (auto-refresh).
  const load = (keep = 0) =>
    request(query(Math.min(200, Math.max(PAGE, keep))), (r) => {
      setRuns(r.runs);
      setCursor(r.nextCursor);
    });
  useEffect(() => {
    setRuns(null);
    setCursor(null);
    setError(null);
    load();
    return () => {
      applied.current = seq.current; // answers for the old filter are stale
      inflight.current.forEach((c) => c.abort());
      inflight.current.clear();
    };
  }, [zapId, status]);

  const loadMore = async () => {
    setMore(true);
    try {
      await request(
        query(PAGE, cursor),
        (r) => {
          setRuns((rs) => [...(rs ?? []), ...r.runs]);
          setCursor(r.nextCursor);
        },
        applied.current,
      );
    } finally {
      setMore(false);
    }
  };

  const active = !!runs?.some((r) => isActive(r.status));
  // A schedule zap (no webhook URL) starts runs by itself: keep looking for new ones, more slowly.
  const scheduled = zap.data?.zap.webhookUrl === null && zap.data.zap.enabled;
  // A tick while a request is still out waits for the next one, so a slow server is not piled on.
  useInterval(() => inflight.current.size === 0 && load(runs?.length ?? 0), active ? 2000 : 5000, active || !!scheduled);

  return (
    <Page
      title={
        <>
          Runs{' '}
          {zap.data && (
            <>
              of <a href={`/zaps/${zapId}`}>{zap.data.zap.name}</a>
            </>
          )}
        </>
      }
      actions={
        <a class="btn" href={`/zaps/${zapId}`}>
          Edit zap
        </a>
      }
    >
      <div class="toolbar">
        <div class="field inline">
          <label for="run-status">Status</label>
          <select id="run-status" value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
            <option value="">All</option>
            {RUN_STATUSES.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </div>
        {(active || scheduled) && (
          <span class="muted small" role="status">
            {active ? 'Refreshing while runs are in progress…' : 'Refreshing: this zap runs on a schedule.'}
          </span>
        )}
      </div>
      <ErrorBox error={error || zap.error} />
      {!runs && !error && <Loading what="Loading runs" />}
      {runs && runs.length === 0 && <p class="empty card">{status ? `No ${status} runs.` : zap.data?.zap.webhookUrl === null ? 'No runs yet. The schedule starts one at its next slot.' : 'No runs yet. Send a request to the webhook URL to start one.'}</p>}
      {runs && runs.length > 0 && (
        <div class="table-wrap">
          <table class="runs">
            <thead>
              <tr>
                <th scope="col">Status</th>
                <th scope="col">Created</th>
                <th scope="col">Duration</th>
                <th scope="col">Run</th>
              </tr>
            </thead>
            <tbody>
              {runs.map((r) => (
                <tr key={r.id} data-run-id={r.id}>
                  <td>
                    <Status status={r.status} />
                    {r.status === 'waiting' && r.resumeAt && (
                      <span class="small muted status-note">
                        {' '}
                        until <Time at={r.resumeAt} />
                      </span>
                    )}
                  </td>
                  <td>
                    <Time at={r.createdAt} />
                  </td>
                  <td>{fmtDuration(r.durationMs)}</td>
                  <td>
                    <a href={`/runs/${r.id}`} aria-label={`Run ${r.id}`}>
                      {/* ids are UUIDv7: the head is the timestamp, shared by every run of a minute */}
                      <code>…{r.id.slice(-12)}</code>
                    </a>
                    {r.replayOf && <span class="tag">replay</span>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {cursor && (
        <button type="button" class="btn" onClick={loadMore} disabled={more}>
          Load more
        </button>
      )}
    </Page>
  );
}

export function RunPage() {
  const { params } = useRoute();
  const { route } = useLocation();
  const run = useApi<{ run: Run }>(`/api/v1/runs/${params.id}`);
  const r = run.data?.run;
  const zap = useApi<{ zap: Zap }>(r ? `/api/v1/zap/${r.zapId}` : null);
  const [catalog, setCatalog] = useState<CatalogItem[]>([]);
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);
  const [note, setNote] = useState('');
  useTitle(r ? `Run ${r.status}` : 'Run');
  useEffect(() => {
    loadCatalog()
      .then((c) => setCatalog(c.actions))
      .catch(() => {});
  }, []);
  useInterval(() => run.reload(true), 1500, !!r && isActive(r.status));

  const act = async (what: 'replay' | 'retry' | 'cancel') => {
    setBusy(true);
    setActionError(null);
    setNote('');
    try {
      const res = await api<{ runId?: string }>('POST', `/api/v1/runs/${r!.id}/${what}`);
      if (what === 'replay' && res?.runId) {
        route(`/runs/${res.runId}`);
      } else {
        setNote(what === 'retry' ? 'Retrying from the failed step…' : 'Cancel requested.');
        await run.reload(true);
      }
    } catch (e) {
      setActionError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };

  if (run.error && !r)
    return (
      <Page title="Run">
        <ErrorBox error={run.error} />
      </Page>
    );
  if (!r) return <Loading what="Loading run" />;
  const actionName = (id: string) => catalog.find((a) => a.id === id)?.name ?? id;

  return (
    <Page
      title={
        <>
          Run <Status status={r.status} />
        </>
      }
      actions={
        <>
          <button type="button" class="btn" disabled={busy} onClick={() => act('replay')}>
            Replay
          </button>
          {r.status === 'failed' && (
            <button type="button" class="btn primary" disabled={busy} onClick={() => act('retry')}>
              Retry
            </button>
          )}
          {isActive(r.status) && (
            <button type="button" class="btn danger" disabled={busy} onClick={() => act('cancel')}>
              Cancel run
            </button>
          )}
        </>
      }
    >
      <ErrorBox error={actionError || run.error} />
      <p role="status" class="muted">
        {note}
      </p>
      <dl class="card facts">
        <Fact label="Zap">
          <a href={`/zaps/${r.zapId}`}>{zap.data?.zap.name ?? r.zapId}</a> (version {r.zapVersion}) · <a href={`/zaps/${r.zapId}/runs`}>all runs</a>
        </Fact>
        <Fact label="Run ID">
          <code>{r.id}</code>
        </Fact>
        {r.replayOf && (
          <Fact label="Replay of">
            <a href={`/runs/${r.replayOf}`}>
              <code>{r.replayOf}</code>
            </a>
          </Fact>
        )}
        {r.trigger?.scheduledFor && (
          <Fact label="Scheduled for">
            <Time at={r.trigger.scheduledFor} />
          </Fact>
        )}
        {r.status === 'waiting' && (
          <Fact label="Resumes at">
            <Time at={r.resumeAt} />
          </Fact>
        )}
        <Fact label="Created">
          <Time at={r.createdAt} />
        </Fact>
        <Fact label="Started">
          <Time at={r.startedAt} />
        </Fact>
        <Fact label="Finished">
          <Time at={r.finishedAt} />
        </Fact>
        <Fact label="Duration">{fmtDuration(r.durationMs)}</Fact>
      </dl>
      {r.status === 'waiting' && (
        <div class="info-box run-waiting" role="status">
          <strong>Waiting</strong> until <Time at={r.resumeAt} />
          {r.resumeAt && (
            <>
              {' '}
              (<Time at={r.resumeAt} relative />)
            </>
          )}
          : a delay step holds the run; the next step starts then. Cancel run stops it.
        </div>
      )}
      {r.status === 'filtered' && <FilteredNote run={r} />}
      {r.error && (
        <div class="error-box run-error">
          <strong>Error:</strong> {r.error}
        </div>
      )}

      <details class="card trigger">
        <summary>
          Trigger payload{r.trigger?.method ? ` (${r.trigger.method}${r.trigger.contentType ? `, ${r.trigger.contentType}` : ''})` : ''}
        </summary>
        <h3>Body</h3>
        <Json value={r.trigger?.body} label="Trigger body" />
        {r.trigger?.query && Object.keys(r.trigger.query).length > 0 && (
          <>
            <h3>Query</h3>
            <Json value={r.trigger.query} label="Trigger query" />
          </>
        )}
        {r.trigger?.headers && (
          <>
            <h3>Headers</h3>
            <Json value={r.trigger.headers} label="Trigger headers" />
          </>
        )}
        <p class="muted small">
          Received <Time at={r.trigger?.receivedAt} />
        </p>
      </details>

      <h2>Steps</h2>
      {(r.steps ?? []).length === 0 && <p class="muted">No step has started yet.</p>}
      <ol class="timeline">
        {(r.steps ?? []).map((s) => (
          <li class={`card step-result step-${s.status}`} data-step={s.index}>
            <header class="step-head">
              <h3>
                <Icon id={s.actionId} /> Step {s.index}: {actionName(s.actionId)}
              </h3>
              <Status status={s.status} />
            </header>
            <dl class="facts inline">
              <Fact label="Attempts">{s.attempts}</Fact>
              <Fact label="Duration">{fmtDuration(s.durationMs)}</Fact>
              <Fact label="Started">
                <Time at={s.startedAt} />
              </Fact>
              {s.nextAttemptAt && (
                <Fact label="Next attempt">
                  <Time at={s.nextAttemptAt} />
                </Fact>
              )}
            </dl>
            {s.error && (
              <div class="error-box step-error">
                <strong>Error:</strong> {s.error}
              </div>
            )}
            {s.warnings && s.warnings.length > 0 && (
              <div class="warn-box">
                <strong>Warnings</strong>
                <ul>
                  {s.warnings.map((w) => (
                    <li>{typeof w === 'string' ? w : JSON.stringify(w)}</li>
                  ))}
                </ul>
              </div>
            )}
            {isFilterOutput(s.output) && <ConditionsTable step={s} out={s.output} />}
            <div class="io">
              <div>
                <h4>Input</h4>
                <Json value={s.input} label={`Step ${s.index} input`} />
              </div>
              <div>
                <h4>Output</h4>
                {s.output == null ? <p class="muted">—</p> : <Json value={s.output} label={`Step ${s.index} output`} />}
              </div>
            </div>
          </li>
        ))}
      </ol>
    </Page>
  );
}

const isFilterOutput = (o: unknown): o is FilterOutput => !!o && typeof o === 'object' && Array.isArray((o as FilterOutput).conditions) && typeof (o as FilterOutput).passed === 'boolean';

const show = (v: unknown) => (v === undefined ? '' : v === null ? 'null' : typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v));

// A filtered run is final and not a failure: say which filter step stopped it and why.
function FilteredNote({ run }: { run: Run }) {
  const step = (run.steps ?? []).find((s) => s.status === 'filtered');
  const out = step && isFilterOutput(step.output) ? step.output : null;
  const failed = out ? out.conditions.filter((c) => !c.result) : [];
  return (
    <div class="info-box run-filtered" role="status">
      <strong>Filtered</strong>: {step ? `step ${step.index}` : 'a filter step'} stopped the run (not a failure; the later steps did not run).
      {out?.stoppedBy && <> Stopped by: {out.stoppedBy}.</>}
      {failed.length > 0 && (
        <ul class="stopped-by">
          {failed.map((c) => (
            <li>
              Condition {c.index}: <code>{show(c.left)}</code> {c.op}
              {c.right !== undefined && (
                <>
                  {' '}
                  <code>{show(c.right)}</code>
                </>
              )}{' '}
              was false{c.note ? ` (${c.note})` : ''}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

// A filter step's verdict per condition, with the values it compared (after templates).
function ConditionsTable({ step, out }: { step: Step; out: FilterOutput }) {
  return (
    <div class="table-wrap">
      <table class="conditions-result" aria-label={`Step ${step.index} conditions`}>
        <caption>
          Conditions (match {out.match}): {out.passed ? 'passed' : 'did not pass'}
        </caption>
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Value</th>
            <th scope="col">Operator</th>
            <th scope="col">Compared with</th>
            <th scope="col">Result</th>
          </tr>
        </thead>
        <tbody>
          {out.conditions.map((c) => (
            <tr class={c.result ? 'cond-true' : 'cond-false'} data-condition={c.index}>
              <td>{c.index}</td>
              <td>
                <code>{show(c.left)}</code>
              </td>
              <td>{c.op}</td>
              <td>{c.right === undefined ? <span class="muted">—</span> : <code>{show(c.right)}</code>}</td>
              <td>
                {c.result ? 'true' : 'false'}
                {c.note && <span class="muted small"> ({c.note})</span>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
