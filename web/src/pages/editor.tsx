import { useEffect, useRef, useState } from 'preact/hooks';
import { useLocation, useRoute } from 'preact-iso/router';
import { api, ApiError, type CatalogItem, errorMessage, isActive, loadCatalog, type Run, type Zap } from '../api';
import { CopyField, ErrorBox, Icon, Loading, Page, Status, Time, useTitle } from '../ui';
import { extraKeys, FieldInput, initValues, SchedulePreview, type TemplTarget, toMetadata, type Values } from './fields';

interface ActionState {
  key: number;
  actionId: string;
  values: Values;
  extra: Record<string, unknown>;
}

const SAMPLE = JSON.stringify({ comment: { email: 'ada@example.com', text: 'Hello' } }, null, 2);
let nextKey = 1;
let flash = ''; // survives the /zaps/new → /zaps/{id} navigation after the first save

// Paths a template can read from a value: {a:{b:1}, items:[{id:2}]} → a.b, items.0.id
export function flatten(v: unknown, prefix: string, out: string[], depth = 0) {
  if (out.length >= 150 || depth > 8) return;
  if (Array.isArray(v)) {
    if (!v.length && prefix) out.push(prefix);
    v.slice(0, 3).forEach((x, i) => flatten(x, prefix ? `${prefix}.${i}` : String(i), out, depth + 1));
  } else if (v && typeof v === 'object') {
    const entries = Object.entries(v);
    if (!entries.length && prefix) out.push(prefix);
    for (const [k, x] of entries) {
      if (!/^[A-Za-z0-9_-]+$/.test(k)) continue;
      flatten(x, prefix ? `${prefix}.${k}` : k, out, depth + 1);
    }
  } else if (prefix) {
    out.push(prefix);
  }
}

function Hints({ run, secrets, step, onPick, note, scheduled }: { run: Run | null; secrets: string[]; step: number | null; onPick: (p: string) => void; note: string; scheduled: boolean }) {
  const groups: { title: string; paths: string[] }[] = [];
  // A schedule run's trigger body is always {scheduledFor, firedAt}: offer them before the first run.
  if (!run && scheduled) groups.push({ title: 'Schedule', paths: ['scheduledFor', 'firedAt'] });
  if (run) {
    const body: string[] = [];
    flatten(run.trigger?.body, '', body);
    groups.push({ title: 'Trigger body', paths: body });
    const query: string[] = [];
    if (run.trigger?.query && Object.keys(run.trigger.query).length) flatten(run.trigger.query, 'trigger.query', query);
    if (query.length) groups.push({ title: 'Query string', paths: query });
    for (const s of run.steps ?? []) {
      // A step can only read the output of the steps before it.
      if (step !== null && s.index >= step) continue;
      const out: string[] = [];
      flatten(s.output, `steps.${s.index}`, out);
      if (out.length) groups.push({ title: `Step ${s.index} output`, paths: out.filter((p) => !p.startsWith(`steps.${s.index}.headers.`) || out.length < 40) });
    }
  }
  groups.push({ title: 'Run', paths: ['run.id'] });
  if (secrets.length) groups.push({ title: 'Secrets', paths: secrets.map((n) => `secrets.${n}`) });
  return (
    <section class="card hints" aria-labelledby="hints-h">
      <h2 id="hints-h">Field hints</h2>
      <p class="help">
        Click a path to insert it as <code>{'{{path}}'}</code> into the field you were last editing.
        {!run && !scheduled && ' Send a test event to see the fields of your trigger.'}
      </p>
      <p class="copy-note" role="status">
        {note}
      </p>
      {groups.map((g) => (
        <div class="hint-group">
          <h3>{g.title}</h3>
          {g.paths.length === 0 ? (
            <p class="muted small">(empty)</p>
          ) : (
            <ul>
              {g.paths.map((p) => (
                <li>
                  <button type="button" class="hint" title={`Insert {{${p}}}`} onMouseDown={(e) => e.preventDefault()} onClick={() => onPick(p)}>
                    {p}
                  </button>
                </li>
              ))}
            </ul>
          )}
        </div>
      ))}
    </section>
  );
}

function TestEvent({ zap, onSent }: { zap: Zap; onSent: (runId: string) => void }) {
  const [body, setBody] = useState(SAMPLE);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ runId?: string; error?: string } | null>(null);
  const send = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setResult(null);
    try {
      // Post to the path on this origin: the configured public URL may name another host.
      const path = new URL(zap.webhookUrl ?? '', location.href).pathname;
      const res = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
      const data = await res.json().catch(() => null);
      if (!res.ok) throw new Error(data?.error?.message || `${res.status} ${res.statusText}`);
      setResult({ runId: data?.runId });
      if (data?.runId) onSent(data.runId);
    } catch (err) {
      setResult({ error: errorMessage(err) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card" onSubmit={send} aria-labelledby="test-h">
      <h2 id="test-h">Test event</h2>
      <div class="field">
        <label for="test-body">Test event body</label>
        <textarea id="test-body" rows={6} spellcheck={false} value={body} onInput={(e) => setBody(e.currentTarget.value)} />
      </div>
      <button type="submit" class="btn" disabled={busy}>
        Send test event
      </button>
      <div role="status" class="test-result">
        {result?.runId && (
          <p>
            Run started: <a href={`/runs/${result.runId}`}>{result.runId}</a>
          </p>
        )}
      </div>
      <ErrorBox error={result?.error} />
    </form>
  );
}

export function ZapEditor() {
  const { params } = useRoute();
  const { route } = useLocation();
  const id: string | undefined = params.id;
  const [catalog, setCatalog] = useState<{ triggers: CatalogItem[]; actions: CatalogItem[] } | null>(null);
  const [zap, setZap] = useState<Zap | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [name, setName] = useState('');
  const [triggerId, setTriggerId] = useState('webhook');
  const [triggerValues, setTriggerValues] = useState<Values>({});
  const [triggerExtra, setTriggerExtra] = useState<Record<string, unknown>>({});
  const [actions, setActions] = useState<ActionState[]>([]);
  const [newType, setNewType] = useState('http');
  const [retryAttempts, setRetryAttempts] = useState('');
  const [retryBase, setRetryBase] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [general, setGeneral] = useState<string[]>([]);
  const [saving, setSaving] = useState(false);
  const [saved, setSaved] = useState('');
  const [hintRun, setHintRun] = useState<Run | null>(null);
  const [secrets, setSecrets] = useState<string[]>([]);
  const [focusStep, setFocusStep] = useState<number | null>(null);
  const [hintNote, setHintNote] = useState('');
  const target = useRef<TemplTarget | null>(null);
  const [ready, setReady] = useState(false);
  useTitle(id ? (zap ? `Edit ${zap.name}` : 'Edit zap') : 'New zap');

  const actionSpec = (aid: string) => catalog?.actions.find((a) => a.id === aid);
  const triggerSpec = catalog?.triggers.find((t) => t.id === triggerId);

  // Load the catalog and (for an existing zap) the zap, then fill the form.
  useEffect(() => {
    let live = true;
    setReady(false);
    setLoadError(null);
    (async () => {
      try {
        const cat = await loadCatalog();
        const z = id ? (await api<{ zap: Zap }>('GET', `/api/v1/zap/${id}`)).zap : null;
        if (!live) return;
        setCatalog(cat);
        setZap(z);
        const tid = z?.trigger?.triggerId ?? cat.triggers[0]?.id ?? 'webhook';
        const tspec = cat.triggers.find((t) => t.id === tid);
        setName(z?.name ?? '');
        setTriggerId(tid);
        setTriggerValues(initValues(tspec?.configSchema.fields ?? [], z?.trigger?.metadata ?? null));
        setTriggerExtra(extraKeys(tspec?.configSchema.fields ?? [], z?.trigger?.metadata ?? null));
        setActions(
          (z?.actions ?? [])
            .slice()
            .sort((a, b) => a.sortingOrder - b.sortingOrder)
            .map((a) => {
              const fields = cat.actions.find((c) => c.id === a.actionId)?.configSchema.fields ?? [];
              return { key: nextKey++, actionId: a.actionId, values: initValues(fields, a.metadata), extra: extraKeys(fields, a.metadata) };
            }),
        );
        setRetryAttempts(z?.retry?.attempts != null ? String(z.retry.attempts) : '');
        setRetryBase(z?.retry?.baseDelayMs != null ? String(z.retry.baseDelayMs) : '');
        setNewType(cat.actions[0]?.id ?? 'http');
        setErrors({});
        setGeneral([]);
        setSaved(flash);
        flash = '';
        setReady(true);
      } catch (e) {
        if (live) setLoadError(errorMessage(e));
      }
    })();
    api<{ secrets: { name: string }[] }>('GET', '/api/v1/secrets')
      .then((r) => live && setSecrets(r.secrets.map((s) => s.name)))
      .catch(() => {});
    return () => {
      live = false;
    };
  }, [id]);

  // Field hints come from the zap's latest run (its trigger body and step outputs).
  // preact-iso keeps this component mounted across /zaps/:id, so every hint request and the
  // polling after a test event belong to a "hint session" that ends when the id changes or the
  // editor unmounts; answers from an ended session are dropped.
  const hintSession = useRef(0);
  const shownId = useRef(id);
  shownId.current = id;
  const current = (zapId: string, session: number) => session === hintSession.current && zapId === shownId.current;
  const loadHints = async (zapId: string, session: number) => {
    try {
      const list = await api<{ runs: Run[] }>('GET', `/api/v1/runs?zapId=${encodeURIComponent(zapId)}&limit=1`);
      const latest = list.runs[0];
      if (!latest || !current(zapId, session)) return null;
      const full = (await api<{ run: Run }>('GET', `/api/v1/runs/${latest.id}`)).run;
      if (!current(zapId, session) || full.zapId !== zapId) return null;
      setHintRun(full);
      return full;
    } catch {
      return null;
    }
  };
  useEffect(() => {
    const session = ++hintSession.current;
    setHintRun(null);
    if (id) loadHints(id, session);
    return () => {
      hintSession.current++;
    };
  }, [id]);

  const afterTestEvent = async (runId: string) => {
    // Refresh now (trigger body) and again as steps finish (their outputs). The event may have
    // been sent from another zap's editor before a navigation: then there is nothing to do.
    const session = hintSession.current;
    const zapId = zap!.id;
    for (let i = 0; i < 15 && current(zapId, session); i++) {
      const r = await loadHints(zapId, session);
      if (r && r.id === runId && !isActive(r.status)) break;
      await new Promise((res) => setTimeout(res, 1000));
    }
  };

  const pick = (path: string) => {
    const t = target.current;
    if (!t || !t.el.isConnected) {
      setHintNote('Click into a field that accepts templates first.');
      return;
    }
    const el = t.el;
    const token = `{{${path}}}`;
    const start = el.selectionStart ?? el.value.length;
    const end = el.selectionEnd ?? start;
    const v = el.value.slice(0, start) + token + el.value.slice(end);
    el.value = v;
    t.set(v);
    el.focus();
    el.setSelectionRange(start + token.length, start + token.length);
    setHintNote(`Inserted ${token}`);
  };
  const onTarget = (t: TemplTarget) => {
    target.current = t;
    setFocusStep(t.step);
  };

  // After a rejected save, take keyboard and screen-reader users to the first field at fault.
  useEffect(() => {
    if (!Object.keys(errors).length) return;
    const el = document.querySelector<HTMLElement>('.editor-main [aria-invalid="true"], .editor-main .step-level-error');
    el?.focus();
    el?.scrollIntoView({ block: 'center' });
  }, [errors]);

  const updateAction = (key: number, f: (a: ActionState) => ActionState) => setActions((all) => all.map((a) => (a.key === key ? f(a) : a)));
  const move = (i: number, d: number) =>
    setActions((all) => {
      const j = i + d;
      if (j < 0 || j >= all.length) return all;
      const copy = all.slice();
      [copy[i], copy[j]] = [copy[j], copy[i]];
      return copy;
    });
  const addAction = () => {
    const spec = actionSpec(newType);
    if (!spec) return;
    setActions((all) => [...all, { key: nextKey++, actionId: spec.id, values: initValues(spec.configSchema.fields, null), extra: {} }]);
  };

  const save = async (e: Event) => {
    e.preventDefault();
    setSaving(true);
    setSaved('');
    setErrors({});
    setGeneral([]);
    const retry: Record<string, unknown> = {};
    for (const [k, v] of [
      ['attempts', retryAttempts],
      ['baseDelayMs', retryBase],
    ] as const)
      if (v.trim() !== '') retry[k] = /^\d+$/.test(v.trim()) ? parseInt(v.trim(), 10) : v;
    const body = {
      // A blank name is left out: the server names the zap "Untitled zap" (an empty one is a 400).
      ...(name.trim() ? { name: name.trim() } : {}),
      availableTriggerId: triggerId,
      triggerMetadata: toMetadata(triggerSpec?.configSchema.fields ?? [], triggerValues, triggerExtra),
      actions: actions.map((a) => ({
        availableActionId: a.actionId,
        actionMetadata: toMetadata(actionSpec(a.actionId)?.configSchema.fields ?? [], a.values, a.extra),
      })),
      retry: Object.keys(retry).length ? retry : null,
    };
    try {
      const r = await api<{ zapId?: string; zap?: Zap }>(zap ? 'PUT' : 'POST', zap ? `/api/v1/zap/${zap.id}` : '/api/v1/zap', body);
      if (!zap) {
        flash = triggerId === 'schedule' ? 'Zap created. It runs on its schedule while enabled.' : 'Zap created. Its webhook URL is ready.';
        route(`/zaps/${r.zapId ?? r.zap?.id}`, true);
      } else {
        // PUT answers without lastRun: keep the one we have.
        if (r.zap) setZap((prev) => ({ ...r.zap!, lastRun: r.zap!.lastRun ?? prev?.lastRun ?? null }));
        if (r.zap && !body.name) setName(r.zap.name);
        setSaved(`Saved (version ${r.zap?.version ?? zap.version + 1}).`);
      }
    } catch (err) {
      if (err instanceof ApiError && err.details.length) {
        const fe: Record<string, string> = {};
        const rest: string[] = [];
        // A field's error goes under that field; anything else about a step (an unknown secret
        // is reported at actions[i].actionMetadata, an unknown key at ….key) under the step's
        // legend, and only what belongs to no step into the banner.
        const add = (key: string, msg: string) => (fe[key] = fe[key] ? `${fe[key]} ${msg}` : msg);
        const sub = (p: string, msg: string) => (p ? `${p.replace(/^\./, '')}: ${msg}` : msg);
        for (const d of err.details) {
          let m: RegExpMatchArray | null;
          if (d.path === 'name' || d.path === 'retry.attempts' || d.path === 'retry.baseDelayMs') {
            if (!fe[d.path]) fe[d.path] = d.message;
          } else if ((m = d.path.match(/^actions\[(\d+)\](?:\.actionMetadata(?:\.([^.[]+))?)?(.*)$/)) && actions[+m[1]]) {
            const a = actions[+m[1]];
            const field = m[2];
            const spec = actionSpec(a.actionId)?.configSchema.fields.find((f) => f.name === field);
            // A conditions field shows every row's error at its row: one "[i].left: message" per line.
            if (spec?.type === 'conditions') fe[`a${a.key}.${field}`] = (fe[`a${a.key}.${field}`] ? `${fe[`a${a.key}.${field}`]}\n` : '') + sub(m[3], d.message);
            else if (spec) fe[`a${a.key}.${field}`] ??= sub(m[3], d.message);
            else add(`a${a.key}`, field ? sub(field + m[3], d.message) : d.message);
          } else if ((m = d.path.match(/^triggerMetadata(?:\.([^.[]+))?(.*)$/)) || d.path === 'availableTriggerId') {
            const field = m?.[1];
            if (field && triggerSpec?.configSchema.fields.some((f) => f.name === field)) fe[`t.${field}`] ??= sub(m![2], d.message);
            else add('t', field ? sub(field + m![2], d.message) : d.message);
          } else {
            rest.push(`${d.path}: ${d.message}`);
          }
        }
        setErrors(fe);
        setGeneral(rest.length ? rest : ['Some fields need attention; see the messages below them.']);
      } else {
        setGeneral([errorMessage(err)]);
      }
    } finally {
      setSaving(false);
    }
  };

  if (loadError)
    return (
      <Page title="Zap">
        <ErrorBox error={loadError} />
      </Page>
    );
  if (!ready || !catalog) return <Loading what="Loading editor" />;

  const err = (key: string) => errors[key];
  // An error about a whole step (e.g. an unknown secret in it), shown under its legend.
  const stepError = (key: string) =>
    err(key) && (
      <p class="field-error step-level-error" id={`f-${key}-error`} tabIndex={-1}>
        {err(key)}
      </p>
    );
  const retryField = (key: 'retry.attempts' | 'retry.baseDelayMs', label: string, value: string, set: (v: string) => void, help: string) => (
    <div class="field">
      <label for={`f-${key}`}>{label}</label>
      <input
        id={`f-${key}`}
        type="text"
        inputMode="numeric"
        value={value}
        onInput={(e) => set(e.currentTarget.value)}
        aria-invalid={err(key) ? 'true' : undefined}
        aria-describedby={`f-${key}-help${err(key) ? ` f-${key}-error` : ''}`}
      />
      <p class="help" id={`f-${key}-help`}>
        {help}
      </p>
      {err(key) && (
        <p class="field-error" id={`f-${key}-error`}>
          {err(key)}
        </p>
      )}
    </div>
  );

  const lastRun = zap?.lastRun && (
    <p>
      Last run: <Status status={zap.lastRun.status} /> <a href={`/runs/${zap.lastRun.id}`}>view</a>
    </p>
  );

  return (
    <Page
      title={zap ? zap.name : 'New zap'}
      actions={
        zap && (
          <a class="btn" href={`/zaps/${zap.id}/runs`}>
            Runs
          </a>
        )
      }
    >
      <div class="editor">
        <form class="editor-main" onSubmit={save} noValidate>
          {general.length > 0 && (
            <div class="error-box" role="alert">
              {general.length === 1 ? (
                general[0]
              ) : (
                <ul>
                  {general.map((g) => (
                    <li>{g}</li>
                  ))}
                </ul>
              )}
            </div>
          )}
          <div class="card">
            <div class="field">
              <label for="f-name">Zap name</label>
              <input
                id="f-name"
                type="text"
                placeholder="Untitled zap"
                value={name}
                onInput={(e) => setName(e.currentTarget.value)}
                aria-invalid={err('name') ? 'true' : undefined}
                aria-describedby={err('name') ? 'f-name-error' : undefined}
              />
              {err('name') && (
                <p class="field-error" id="f-name-error">
                  {err('name')}
                </p>
              )}
            </div>
          </div>

          <fieldset class="card step" aria-describedby={err('t') ? 'f-t-error' : undefined}>
            <legend>
              <Icon id={triggerId} /> Trigger: {triggerSpec?.name ?? triggerId}
            </legend>
            {stepError('t')}
            {catalog.triggers.length > 1 && (
              <div class="field">
                <label for="f-trigger">Trigger type</label>
                <select
                  id="f-trigger"
                  value={triggerId}
                  onChange={(e) => {
                    const t = catalog.triggers.find((x) => x.id === e.currentTarget.value);
                    setTriggerId(e.currentTarget.value);
                    setTriggerValues(initValues(t?.configSchema.fields ?? [], null));
                  }}
                >
                  {catalog.triggers.map((t) => (
                    <option value={t.id}>{t.name}</option>
                  ))}
                </select>
              </div>
            )}
            {triggerSpec?.description && <p class="help">{triggerSpec.description}</p>}
            {(() => {
              // Required trigger settings show; optional ones (signature checks, de-duplication)
              // fold away unless set or in error, so the common case stays short.
              const fields = triggerSpec?.configSchema.fields ?? [];
              const render = (f: (typeof fields)[number]) => (
                <>
                  <FieldInput
                    field={f}
                    idBase="t"
                    step={0}
                    value={triggerValues[f.name]}
                    error={err(`t.${f.name}`)}
                    onChange={(v) => setTriggerValues((tv) => ({ ...tv, [f.name]: typeof v === 'function' ? v(tv[f.name]) : v }))}
                    onTarget={onTarget}
                  />
                  {triggerId === 'schedule' && f.name === 'cron' && (
                    <SchedulePreview cron={String(triggerValues.cron ?? '')} intervalSeconds={String(triggerValues.intervalSeconds ?? '')} timezone={String(triggerValues.timezone ?? '')} />
                  )}
                </>
              );
              // A schedule has no required field (cron or intervalSeconds), but those and its zone are what it is.
              const shown = (f: (typeof fields)[number]) => f.required || (triggerId === 'schedule' && ['cron', 'intervalSeconds', 'timezone'].includes(f.name));
              const optional = fields.filter((f) => !shown(f));
              const changed = optional.some((f) => {
                const v = triggerValues[f.name];
                const d = f.default == null ? '' : f.default;
                return err(`t.${f.name}`) || (Array.isArray(v) ? v.length > 0 : typeof v === 'boolean' ? v !== (d === true) : v !== '' && v !== String(d));
              });
              return (
                <>
                  {fields.filter(shown).map(render)}
                  {optional.length > 0 && (
                    <details class="options" open={!!changed}>
                      <summary>Options ({optional.map((f) => f.name).join(', ')})</summary>
                      {optional.map(render)}
                    </details>
                  )}
                </>
              );
            })()}
          </fieldset>

          {actions.length === 0 && (
            <p class="muted">No actions yet: add one below. {triggerId === 'schedule' ? 'Each time the schedule fires' : 'Each webhook request'} runs the actions in order.</p>
          )}
          <ol class="steps">
            {actions.map((a, i) => {
              const spec = actionSpec(a.actionId);
              return (
                <li key={a.key}>
                  <fieldset class="card step" aria-describedby={err(`a${a.key}`) ? `f-a${a.key}-error` : undefined}>
                    <legend>
                      <Icon id={a.actionId} /> Step {i + 1}: {spec?.name ?? a.actionId}
                    </legend>
                    <div class="step-tools">
                      <button type="button" class="btn small" disabled={i === 0} onClick={() => move(i, -1)} aria-label={`Move step ${i + 1} up`}>
                        ↑ Up
                      </button>
                      <button type="button" class="btn small" disabled={i === actions.length - 1} onClick={() => move(i, 1)} aria-label={`Move step ${i + 1} down`}>
                        ↓ Down
                      </button>
                      <button type="button" class="btn small danger" onClick={() => setActions((all) => all.filter((x) => x.key !== a.key))} aria-label={`Remove step ${i + 1}`}>
                        Remove
                      </button>
                    </div>
                    {stepError(`a${a.key}`)}
                    {!spec && <p class="error-box">Unknown action type “{a.actionId}”: this server no longer offers it.</p>}
                    {spec?.description && <p class="help">{spec.description}</p>}
                    {(spec?.configSchema.fields ?? []).map((f) => (
                      <FieldInput
                        field={f}
                        idBase={`a${a.key}`}
                        step={i + 1}
                        value={a.values[f.name]}
                        error={err(`a${a.key}.${f.name}`)}
                        onChange={(v) => updateAction(a.key, (x) => ({ ...x, values: { ...x.values, [f.name]: typeof v === 'function' ? v(x.values[f.name]) : v } }))}
                        onTarget={onTarget}
                      />
                    ))}
                  </fieldset>
                </li>
              );
            })}
          </ol>

          <div class="card add-action">
            <div class="field">
              <label for="f-new-action">Action type</label>
              <select id="f-new-action" value={newType} onChange={(e) => setNewType(e.currentTarget.value)}>
                {catalog.actions.map((a) => (
                  <option value={a.id}>{a.name}</option>
                ))}
              </select>
            </div>
            <button type="button" class="btn" onClick={addAction}>
              Add action
            </button>
          </div>

          <details class="card" open={!!(retryAttempts || retryBase || err('retry.attempts') || err('retry.baseDelayMs'))}>
            <summary>Retry policy (optional)</summary>
            {retryField('retry.attempts', 'Retry attempts', retryAttempts, setRetryAttempts, 'Attempts per step, 1 to 20. Empty: the server default.')}
            {retryField('retry.baseDelayMs', 'Retry base delay (ms)', retryBase, setRetryBase, 'First retry delay; it doubles after each attempt. 100 to 3600000.')}
          </details>

          <div class="save-bar">
            <button type="submit" class="btn primary" disabled={saving}>
              Save
            </button>
            <span role="status" class="saved">
              {saving ? 'Saving…' : saved}
            </span>
          </div>
        </form>

        <aside class="editor-side">
          {zap && zap.webhookUrl ? (
            <>
              <section class="card" aria-labelledby="hook-h">
                <h2 id="hook-h">Webhook URL</h2>
                <CopyField value={zap.webhookUrl} id="webhook-url" />
                <p class="help">
                  Any request to this URL starts a run. {zap.enabled ? '' : 'This zap is disabled: requests are refused.'}
                </p>
                {lastRun}
              </section>
              <TestEvent zap={zap} onSent={afterTestEvent} />
            </>
          ) : zap ? (
            // A schedule zap (webhookUrl null): nothing to call or test by hand; when it runs next.
            <section class="card" aria-labelledby="sched-h">
              <h2 id="sched-h">Schedule</h2>
              <p class="next-run">
                {zap.nextFireAt ? (
                  <>
                    Next run at <Time at={zap.nextFireAt} /> (<Time at={zap.nextFireAt} relative />)
                  </>
                ) : zap.enabled ? (
                  'No next run scheduled.'
                ) : (
                  'This zap is disabled: it does not run until enabled.'
                )}
              </p>
              {lastRun}
            </section>
          ) : (
            <section class="card">
              <h2>{triggerId === 'schedule' ? 'Schedule' : 'Webhook URL'}</h2>
              <p class="muted">{triggerId === 'schedule' ? 'Save the zap to start its schedule.' : 'Save the zap to get its webhook URL and send test events.'}</p>
            </section>
          )}
          <Hints run={hintRun} secrets={secrets} step={focusStep} onPick={pick} note={hintNote} scheduled={triggerId === 'schedule'} />
        </aside>
      </div>
    </Page>
  );
}
