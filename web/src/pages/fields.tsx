// Form inputs generated from a trigger's or action's configSchema (the catalog is the single
// source of truth: no per-action forms here).
import type { Field } from '../api';

export type MapRows = [string, string][];
export type Value = string | boolean | MapRows;
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
    default: {
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
