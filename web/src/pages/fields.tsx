// Form inputs generated from a trigger's or action's configSchema (the catalog is the single
// source of truth: no per-action forms here).
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, errorMessage, type Field } from '../api';

export type MapRows = [string, string][];
// One row of a `conditions` field (the filter step); `right` is left out for a unary op.
export interface Cond {
  left: string;
  op: string;
  right: string;
}
export type Value = string | boolean | MapRows | Cond[];
export type Values = Record<string, Value>;

export interface TemplTarget {
  el: HTMLInputElement | HTMLTextAreaElement;
  set: (v: string) => void;
  step: number; // 0 = trigger, N = step N
}

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

export function initValues(fields: Field[], meta: Record<string, unknown> | null): Values {
  const out: Values = {};
  for (const f of fields) {
    const has = !!meta && Object.prototype.hasOwnProperty.call(meta, f.name);
    const v = has ? meta![f.name] : undefined;
    switch (f.type) {
      case 'boolean':
        out[f.name] = has ? v === true || v === 'true' : f.default === true;
        break;
      case 'string_map': {
        const src = isObj(v) ? v : isObj(f.default) && !has ? f.default : {};
        out[f.name] = Object.entries(src).map(([k, x]) => [k, typeof x === 'string' ? x : JSON.stringify(x)] as [string, string]);
        break;
      }
      case 'conditions': {
        const str = (x: unknown) => (x == null ? '' : typeof x === 'string' ? x : JSON.stringify(x));
        // A new filter starts with one empty row to fill in.
        out[f.name] = Array.isArray(v)
          ? v.map((r) => (isObj(r) ? { left: str(r.left), op: str(r.op), right: str(r.right) } : { left: '', op: defaultOp(f), right: '' }))
          : has
            ? []
            : [{ left: '', op: defaultOp(f), right: '' }];
        break;
      }
      case 'string_list':
        out[f.name] = Array.isArray(v) ? v.join(', ') : typeof v === 'string' ? v : '';
        break;
      case 'choice':
        // An optional choice without a default starts at "—" (not sent); a required one at its first choice.
        out[f.name] = has && v != null ? String(v) : f.default != null ? String(f.default) : f.required ? (f.choices?.[0] ?? '') : '';
        break;
      default:
        out[f.name] = has && v != null ? (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : JSON.stringify(v)) : '';
    }
  }
  return out;
}

// Form values → the metadata object the API takes. Empty optional fields are left out so the
// server applies its defaults; keys the schema doesn't know (from a newer server) are kept.
export function toMetadata(fields: Field[], values: Values, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = { ...extra };
  for (const f of fields) {
    const v = values[f.name];
    delete out[f.name];
    switch (f.type) {
      case 'boolean':
        // A required boolean is always sent (the server wants it present, even at its default).
        if (f.required || v !== (f.default === true)) out[f.name] = v === true;
        break;
      case 'string_map': {
        const rows = (v as MapRows) || [];
        const obj: Record<string, string> = {};
        for (const [k, x] of rows) if (k.trim() !== '') obj[k.trim()] = x;
        if (Object.keys(obj).length) out[f.name] = obj;
        break;
      }
      case 'conditions': {
        // Every row is sent, blank ones too: the server's error paths (conditions[i].left) then
        // point at the rows shown. A unary op has no right side.
        const rows = (v as Cond[]) || [];
        if (rows.length) out[f.name] = rows.map((r) => (isUnary(f, r.op) ? { left: r.left, op: r.op } : { left: r.left, op: r.op, right: r.right }));
        break;
      }
      case 'string_list': {
        const list = String(v ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        if (list.length) out[f.name] = list;
        break;
      }
      case 'integer': {
        const s = String(v ?? '').trim();
        if (s !== '') out[f.name] = /^-?\d+$/.test(s) ? parseInt(s, 10) : s;
        break;
      }
      default:
        if (typeof v === 'string' && v !== '') out[f.name] = v;
    }
  }
  return out;
}

export function extraKeys(fields: Field[], meta: Record<string, unknown> | null): Record<string, unknown> {
  const known = new Set(fields.map((f) => f.name));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(meta ?? {})) if (!known.has(k)) out[k] = v;
  return out;
}

const defaultOp = (f: Field) => (f.ops?.includes('equals') ? 'equals' : (f.ops?.[0] ?? 'equals'));
const isUnary = (f: Field, op: string) => (f.unaryOps ?? []).includes(op);

// Words for the filter's operators (the value sent is the op's name).
const OP_LABELS: Record<string, string> = {
  exists: 'exists',
  notExists: 'does not exist',
  equals: 'equals',
  notEquals: 'does not equal',
  contains: 'contains',
  notContains: 'does not contain',
  startsWith: 'starts with',
  endsWith: 'ends with',
  gt: '> (greater than)',
  gte: '≥ (at least)',
  lt: '< (less than)',
  lte: '≤ (at most)',
  matches: 'matches regex (RE2)',
  isTrue: 'is true',
  isFalse: 'is false',
  isEmpty: 'is empty',
};

// A duration as the delay step takes it (90s, 5m, 2h, 1d, 1w, ISO 8601 PT1H30M) → milliseconds,
// or null. The server has the last word; this only shows the user how it reads.
export function parseDuration(text: string): number | null {
  const t = text.trim();
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
  let m = t.match(/^(\d{1,12})(ms|s|m|h|d|w)$/i);
  if (m) return parseInt(m[1], 10) * units[m[2].toLowerCase()];
  m = t.match(/^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/i);
  if (m && t.length > 1 && !/T$/i.test(t) && m.slice(1).some((x) => x !== undefined)) {
    const n = (i: number) => (m![i] ? parseInt(m![i], 10) : 0);
    return n(1) * units.w + n(2) * units.d + n(3) * units.h + n(4) * units.m + n(5) * units.s;
  }
  return null;
}

export function describeDuration(ms: number): string {
  if (ms === 0) return 'no wait';
  const parts: string[] = [];
  let rest = ms;
  for (const [u, size] of [
    ['day', 86_400_000],
    ['hour', 3_600_000],
    ['minute', 60_000],
    ['second', 1000],
    ['millisecond', 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n) parts.push(`${n} ${u}${n === 1 ? '' : 's'}`);
    rest -= n * size;
  }
  return parts.join(' ');
}

// A schedule's zone for display: Intl knows the IANA names; an unknown one falls back to local time.
function fmtInZone(at: string, tz: string): string {
  const d = new Date(at);
  if (isNaN(d.getTime())) return at;
  const opts: Intl.DateTimeFormatOptions = { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short' };
  try {
    return d.toLocaleString(undefined, { ...opts, timeZone: tz || 'UTC' });
  } catch {
    return d.toLocaleString(undefined, opts);
  }
}

// The next five fire times of a schedule trigger, computed by the server
// (POST /api/v1/schedule/preview) a moment after the user stops typing; a 400 names the bad
// expression and is shown as it is.
export function SchedulePreview({ cron, intervalSeconds, timezone }: { cron: string; intervalSeconds: string; timezone: string }) {
  const [state, setState] = useState<{ next?: string[]; error?: string; busy?: boolean }>({});
  const c = cron.trim();
  const iv = intervalSeconds.trim();
  const tz = timezone.trim();
  useEffect(() => {
    if (!c && !iv) {
      setState({});
      return;
    }
    const body: Record<string, unknown> = {};
    if (c) body.cron = c;
    if (iv) body.intervalSeconds = /^\d+$/.test(iv) ? parseInt(iv, 10) : iv;
    if (tz) body.timezone = tz;
    const ctl = new AbortController();
    setState((s) => ({ ...s, busy: true }));
    const t = setTimeout(() => {
      api<{ next: string[] }>('POST', '/api/v1/schedule/preview', body, { signal: ctl.signal })
        .then((r) => setState({ next: r.next ?? [] }))
        .catch((e) => {
          if (ctl.signal.aborted) return;
          const d = e instanceof ApiError && e.details.length ? e.details.map((x) => x.message).filter((m) => !e.message.includes(m)) : [];
          setState({ error: [errorMessage(e), ...d].join(' ') });
        });
    }, 400);
    return () => {
      clearTimeout(t);
      ctl.abort();
    };
  }, [c, iv, tz]);
  return (
    <div class="schedule-preview" aria-live="polite" aria-busy={state.busy ? 'true' : undefined}>
      <h3>Next runs</h3>
      {!c && !iv && <p class="muted small">Give a cron expression or intervalSeconds to see when it runs.</p>}
      {state.error && <p class="field-error preview-error">{state.error}</p>}
      {state.next && state.next.length === 0 && <p class="muted small">This schedule never fires.</p>}
      {state.next && state.next.length > 0 && (
        <ol class="fire-times">
          {state.next.map((at) => (
            <li>
              <time dateTime={at} title={at}>
                {fmtInZone(at, tz || 'UTC')}
              </time>
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}

interface FieldProps {
  field: Field;
  idBase: string;
  value: Value;
  error?: string;
  step: number;
  // A function is applied to the value current when the update runs (see string_map below).
  onChange: (v: Value | ((prev: Value) => Value)) => void;
  onTarget: (t: TemplTarget) => void;
}

export function FieldInput({ field: f, idBase, value, error, step, onChange, onTarget }: FieldProps) {
  const id = `${idBase}-${f.name}`;
  const helpId = `${id}-help`;
  const errId = `${id}-error`;
  const describedBy = [error ? errId : '', f.help ? helpId : ''].filter(Boolean).join(' ') || undefined;
  const invalid = error ? ('true' as const) : undefined;
  const placeholder = f.default != null && typeof f.default !== 'object' && f.type !== 'boolean' ? String(f.default) : undefined;
  const templ = (set: (v: string) => void) =>
    f.templates
      ? {
          onFocus: (e: FocusEvent) => onTarget({ el: e.currentTarget as HTMLInputElement, set, step }),
        }
      : {};
  const common = { id, 'aria-invalid': invalid, 'aria-describedby': describedBy, 'aria-required': f.required ? ('true' as const) : undefined };

  let control;
  switch (f.type) {
    case 'boolean':
      control = <input type="checkbox" {...common} checked={value === true} onChange={(e) => onChange(e.currentTarget.checked)} />;
      break;
    case 'choice':
      control = (
        <select {...common} value={String(value)} onChange={(e) => onChange(e.currentTarget.value)}>
          {/* "—" (not set) stays pickable on an optional choice without a default */}
          {((!f.required && f.default == null) || !f.choices?.includes(String(value))) && <option value="">—</option>}
          {(f.choices ?? []).map((c) => (
            <option value={c}>{c}</option>
          ))}
        </select>
      );
      break;
    case 'text':
      control = (
        <textarea {...common} rows={4} spellcheck={false} value={String(value)} onInput={(e) => onChange(e.currentTarget.value)} {...templ((v) => onChange(v))} />
      );
      break;
    case 'integer':
      control = (
        <input type="text" inputMode="numeric" {...common} placeholder={placeholder} value={String(value)} onInput={(e) => onChange(e.currentTarget.value)} />
      );
      break;
    case 'string_map': {
      const rows = (value as MapRows) || [];
      // Row edits go through functional updates: a hint click calls the `set` captured when the
      // value input got focus, and must not write back a copy of the rows from that moment
      // (undoing a name typed or an entry added since).
      const update = (f: (rs: MapRows) => MapRows) => onChange((prev) => f((prev as MapRows) || []));
      const setRow = (i: number, col: 0 | 1, v: string) => update((rs) => rs.map((r, j) => (j === i ? (col === 0 ? [v, r[1]] : [r[0], v]) : r)) as MapRows);
      return (
        <fieldset class="field map" aria-describedby={describedBy}>
          <legend>
            {f.name}
            {f.required && <span class="req"> (required)</span>}
          </legend>
          {f.help && (
            <p class="help" id={helpId}>
              {f.help}
            </p>
          )}
          {f.type === 'string_map' && step > 0 && f.templates && (
            <p class="help">
              Later steps read each entry as <code>{`{{steps.${step}.name}}`}</code> (name: the entry's name).
            </p>
          )}
          {rows.length === 0 && <p class="muted small">No entries.</p>}
          {rows.map((r, i) => (
            <div class="map-row">
              <input type="text" aria-label={`${f.name} name ${i + 1}`} placeholder="Name" value={r[0]} aria-invalid={invalid} onInput={(e) => setRow(i, 0, e.currentTarget.value)} />
              <input
                type="text"
                aria-label={`${f.name} value ${i + 1}`}
                placeholder="Value"
                value={r[1]}
                aria-invalid={invalid}
                onInput={(e) => setRow(i, 1, e.currentTarget.value)}
                {...templ((v) => setRow(i, 1, v))}
              />
              <button type="button" class="btn small" aria-label={`Remove ${f.name} entry ${i + 1}`} onClick={() => update((rs) => rs.filter((_, j) => j !== i))}>
                Remove
              </button>
            </div>
          ))}
          <button type="button" class="btn small" onClick={() => update((rs) => [...rs, ['', '']])}>
            Add entry
          </button>
          {error && (
            <p class="field-error" id={errId}>
              {error}
            </p>
          )}
        </fieldset>
      );
    }
    case 'conditions':
      return <ConditionsInput field={f} id={id} helpId={helpId} errId={errId} value={value} error={error} onChange={onChange} templ={templ} />;
    default: {
      if (f.format === 'duration') {
        const t = String(value ?? '').trim();
        const ms = t ? parseDuration(t) : null;
        const readId = `${id}-reading`;
        control = (
          <>
            <input
              type="text"
              {...common}
              aria-describedby={[describedBy, readId].filter(Boolean).join(' ')}
              class="duration"
              spellcheck={false}
              placeholder="5m"
              value={String(value)}
              onInput={(e) => onChange(e.currentTarget.value)}
            />
            <p class="help duration-reading" id={readId} aria-live="polite">
              {!t ? 'A number and a unit: 90s, 5m, 2h, 1d, 1w, or ISO 8601 like PT1H30M.' : ms !== null ? `Waits ${describeDuration(ms)}.` : 'Not a duration yet: write 90s, 5m, 2h, 1d or PT1H30M.'}
            </p>
          </>
        );
        break;
      }
      // string and string_list (comma-separated). Templates may appear anywhere, so no type=url/email.
      const mode = f.format === 'email' ? 'email' : f.format === 'url' ? 'url' : undefined;
      control = (
        <input
          type="text"
          inputMode={mode}
          {...common}
          spellcheck={false}
          placeholder={f.type === 'string_list' ? 'a@example.com, b@example.com' : placeholder}
          value={String(value)}
          onInput={(e) => onChange(e.currentTarget.value)}
          {...templ((v) => onChange(v))}
        />
      );
    }
  }
  return (
    <div class={`field${f.type === 'boolean' ? ' check' : ''}`}>
      <div class="field-head">
        <label for={id}>{f.name}</label>
        {f.required && <span class="req">required</span>}
        {f.templates && <span class="tag" title="Accepts {{templates}}">templates</span>}
      </div>
      {control}
      {f.help && (
        <p class="help" id={helpId}>
          {f.help}
        </p>
      )}
      {error && (
        <p class="field-error" id={errId}>
          {error}
        </p>
      )}
    </div>
  );
}

// The filter's condition rows: a left value (a template), an operator, a right value (hidden for
// operators that take none); rows can be added up to maxItems and removed. The server's errors
// for a row arrive as "[i].left: message" lines (see the editor) and are shown at that row.
function ConditionsInput({
  field: f,
  id,
  helpId,
  errId,
  value,
  error,
  onChange,
  templ,
}: {
  field: Field;
  id: string;
  helpId: string;
  errId: string;
  value: Value;
  error?: string;
  onChange: FieldProps['onChange'];
  templ: (set: (v: string) => void) => Record<string, unknown>;
}) {
  const rows = (Array.isArray(value) ? value : []) as Cond[];
  const update = (fn: (rs: Cond[]) => Cond[]) => onChange((prev) => fn((Array.isArray(prev) ? prev : []) as Cond[]));
  const setRow = (i: number, patch: Partial<Cond>) => update((rs) => rs.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  const rowErrors: Record<string, string> = {};
  const general: string[] = [];
  for (const line of (error ?? '').split('\n').filter(Boolean)) {
    const m = line.match(/^\[(\d+)\](?:\.(left|op|right))?: (.*)$/);
    if (m) rowErrors[`${m[1]}.${m[2] ?? ''}`] = (rowErrors[`${m[1]}.${m[2] ?? ''}`] ? rowErrors[`${m[1]}.${m[2] ?? ''}`] + ' ' : '') + m[3];
    else general.push(line);
  }
  const max = f.maxItems ?? 50;
  const ops = f.ops ?? Object.keys(OP_LABELS);
  return (
    <fieldset class="field conditions" id={id} aria-describedby={[general.length ? errId : '', f.help ? helpId : ''].filter(Boolean).join(' ') || undefined}>
      <legend>
        {f.name}
        {f.required && <span class="req"> (required)</span>}
      </legend>
      {f.help && (
        <p class="help" id={helpId}>
          {f.help}
        </p>
      )}
      {rows.length === 0 && <p class="muted small">No conditions.</p>}
      {rows.map((r, i) => {
        const n = i + 1;
        const unary = isUnary(f, r.op);
        const errs = ['', 'left', 'op', 'right'].map((k) => rowErrors[`${i}.${k}`]).filter(Boolean);
        const rowErrId = `${id}-row${n}-error`;
        const inv = (k: string) => (rowErrors[`${i}.${k}`] ? ('true' as const) : undefined);
        const desc = errs.length ? rowErrId : undefined;
        return (
          <div class="cond-row" data-row={n}>
            <span class="cond-n" aria-hidden="true">
              {n}
            </span>
            <input
              type="text"
              class="cond-left"
              spellcheck={false}
              aria-label={`Condition ${n} value`}
              placeholder="{{body.status}}"
              value={r.left}
              aria-invalid={inv('left')}
              aria-describedby={desc}
              onInput={(e) => setRow(i, { left: e.currentTarget.value })}
              {...templ((v) => setRow(i, { left: v }))}
            />
            <select class="cond-op" aria-label={`Condition ${n} operator`} value={r.op} aria-invalid={inv('op')} aria-describedby={desc} onChange={(e) => setRow(i, { op: e.currentTarget.value })}>
              {!ops.includes(r.op) && <option value={r.op}>{r.op || '—'}</option>}
              {ops.map((o) => (
                <option value={o}>{OP_LABELS[o] ?? o}</option>
              ))}
            </select>
            {unary ? (
              <span class="cond-right muted small">(no value)</span>
            ) : (
              <input
                type="text"
                class="cond-right"
                spellcheck={false}
                aria-label={`Condition ${n} compared with`}
                placeholder={r.op === 'matches' ? '^[a-z]+$' : 'value or {{template}}'}
                value={r.right}
                aria-invalid={inv('right')}
                aria-describedby={desc}
                onInput={(e) => setRow(i, { right: e.currentTarget.value })}
                {...templ((v) => setRow(i, { right: v }))}
              />
            )}
            <button type="button" class="btn small" aria-label={`Remove condition ${n}`} onClick={() => update((rs) => rs.filter((_, j) => j !== i))}>
              Remove
            </button>
            {errs.length > 0 && (
              <p class="field-error cond-error" id={rowErrId}>
                {errs.join(' ')}
              </p>
            )}
          </div>
        );
      })}
      <button type="button" class="btn small" disabled={rows.length >= max} onClick={() => update((rs) => [...rs, { left: '', op: defaultOp(f), right: '' }])}>
        Add condition
      </button>
      {rows.length >= max && <span class="muted small"> At most {max} conditions.</span>}
      {general.length > 0 && (
        <p class="field-error" id={errId}>
          {general.join(' ')}
        </p>
      )}
    </fieldset>
  );
}
