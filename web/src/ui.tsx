import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, errorMessage } from './api';

export function useTitle(title: string) {
  useEffect(() => {
    document.title = title ? `${title} · zapd` : 'zapd';
  }, [title]);
}

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  reload: (silent?: boolean) => Promise<void>;
  setData: (d: T | null | ((prev: T | null) => T | null)) => void;
}

// GET a path; `null` skips the request. reload(true) refreshes without showing the loading state.
// Responses can arrive out of order (an auto-refresh tick beside a reload after an action, or a
// path change while a request is in flight): a response is applied only if it is for the current
// path and newer than the last one applied.
export function useApi<T>(path: string | null): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(path !== null);
  const seq = useRef(0); // numbers each request
  const applied = useRef(0); // the newest request whose answer is shown; older answers are stale

  const reload = useCallback(
    async (silent = false) => {
      if (path === null) return;
      const mine = ++seq.current;
      if (!silent) setLoading(true);
      let d: T | undefined;
      let err: string | null = null;
      try {
        d = await api<T>('GET', path);
      } catch (e) {
        err = errorMessage(e);
      }
      if (mine <= applied.current) return;
      applied.current = mine;
      if (err === null) setData(d as T);
      setError(err);
      setLoading(false);
    },
    [path],
  );

  useEffect(() => {
    applied.current = seq.current; // whatever is in flight is for the previous path
    setData(null);
    setError(null);
    reload();
    return () => {
      applied.current = Infinity; // unmounted or path changed: drop every late answer
    };
  }, [reload]);

  return { data, error, loading, reload, setData };
}

// Calls fn every `ms` while `active` is true.
export function useInterval(fn: () => void, ms: number, active: boolean) {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => saved.current(), ms);
    return () => clearInterval(t);
  }, [ms, active]);
}

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <p class="loading" role="status">
      {what}…
    </p>
  );
}

export function ErrorBox({ error }: { error: string | null | undefined }) {
  if (!error) return null;
  return (
    <div class="error-box" role="alert">
      {error}
    </div>
  );
}

export function Status({ status }: { status: string }) {
  return <span class={`status status-${status}`}>{status}</span>;
}

export function Icon({ id }: { id: string }) {
  return <img class="icon" src={`/static/icons/${encodeURIComponent(id)}.svg`} alt="" width={20} height={20} />;
}

/** One labelled fact of a `<dl class="facts">`: `<div><dt>label</dt><dd>children</dd></div>`. */
export function Fact({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

export function fmtTime(s: string | null | undefined): string {
  if (!s) return '—';
  const d = new Date(s);
  if (isNaN(d.getTime())) return s;
  return d.toLocaleString();
}

const rtf = typeof Intl !== 'undefined' && 'RelativeTimeFormat' in Intl ? new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' }) : null;

export function relTime(s: string): string {
  const d = new Date(s).getTime();
  if (isNaN(d)) return s;
  const sec = Math.round((d - Date.now()) / 1000);
  const abs = Math.abs(sec);
  if (!rtf) return fmtTime(s);
  if (abs < 45) return rtf.format(sec, 'second');
  if (abs < 45 * 60) return rtf.format(Math.round(sec / 60), 'minute');
  if (abs < 22 * 3600) return rtf.format(Math.round(sec / 3600), 'hour');
  return rtf.format(Math.round(sec / 86400), 'day');
}

export function Time({ at, relative = false }: { at: string | null | undefined; relative?: boolean }) {
  if (!at) return <span>—</span>;
  return (
    <time dateTime={at} title={fmtTime(at)}>
      {relative ? relTime(at) : fmtTime(at)}
    </time>
  );
}

export function fmtDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60000);
  return `${m} min ${Math.round((ms % 60000) / 1000)} s`;
}

export function Json({ value, label }: { value: unknown; label?: string }) {
  const text = value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value, null, 2);
  return (
    <pre class="json" tabIndex={0} aria-label={label}>
      {text}
    </pre>
  );
}

// "Copy" writes to the clipboard; where the Clipboard API is missing or refused it selects the
// text of `target` so the user can press Ctrl+C.
export function CopyButton({ text, target }: { text: string; target?: () => HTMLElement | null }) {
  const [note, setNote] = useState('');
  const timer = useRef<number>();
  const show = (n: string) => {
    setNote(n);
    clearTimeout(timer.current);
    timer.current = window.setTimeout(() => setNote(''), 2500);
  };
  const select = () => {
    const el = target?.();
    if (!el) return false;
    if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement) {
      el.focus();
      el.select();
    } else {
      const range = document.createRange();
      range.selectNodeContents(el);
      const sel = window.getSelection();
      sel?.removeAllRanges();
      sel?.addRange(range);
    }
    return true;
  };
  const copy = async () => {
    try {
      if (!navigator.clipboard) throw new Error('no clipboard');
      await navigator.clipboard.writeText(text);
      show('Copied');
    } catch {
      show(select() ? 'Selected: press Ctrl+C to copy' : 'Copy failed');
    }
  };
  return (
    <span class="copy">
      <button type="button" class="btn small" onClick={copy}>
        Copy
      </button>
      <span class="copy-note" role="status">
        {note}
      </span>
    </span>
  );
}

export function CopyField({ value, id }: { value: string; id: string }) {
  const ref = useRef<HTMLElement>(null);
  return (
    <div class="copy-field">
      <code id={id} ref={ref}>
        {value}
      </code>
      <CopyButton text={value} target={() => ref.current} />
    </div>
  );
}

export function Page({ title, actions, children }: { title: ComponentChildren; actions?: ComponentChildren; children: ComponentChildren }) {
  return (
    <section class="page">
      <header class="page-head">
        <h1>{title}</h1>
        {actions && <div class="page-actions">{actions}</div>}
      </header>
      {children}
    </section>
  );
}
