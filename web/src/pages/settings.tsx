import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso/router';
import { api, ApiError, errorMessage, setToken } from '../api';
import { CopyField, ErrorBox, Fact, Loading, Page, Time, useApi, useTitle } from '../ui';

interface SecretMeta {
  name: string;
  createdAt?: string;
  updatedAt?: string;
}
interface TokenMeta {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
}
interface User {
  id: string;
  name: string;
  email: string;
  plan: string;
  createdAt: string;
}

// The secrets and tokens pages list their items the same way: loading, empty, or a table whose
// last column holds the row's buttons.
function ListTable<T>({ items, loading, loadingWhat, empty, columns, row }: { items: T[] | undefined; loading: boolean; loadingWhat: string; empty: string; columns: string[]; row: (item: T) => ComponentChildren }) {
  if (loading) return <Loading what={loadingWhat} />;
  if (!items) return null;
  if (items.length === 0) return <p class="empty card">{empty}</p>;
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            {columns.map((c) => (
              <th scope="col">{c}</th>
            ))}
            <th scope="col">
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>{items.map(row)}</tbody>
      </table>
    </div>
  );
}

function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async (fn: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await fn();
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run, setError };
}

export function Secrets() {
  useTitle('Secrets');
  const list = useApi<{ secrets: SecretMeta[] }>('/api/v1/secrets');
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  const [done, setDone] = useState('');
  const add = useAction();
  const del = useAction();

  const submit = (e: Event) => {
    e.preventDefault();
    setDone('');
    add.run(async () => {
      await api('POST', '/api/v1/secrets', { name, value });
      setDone(`Saved secret ${name}. Use it as {{secrets.${name}}}.`);
      setName('');
      setValue('');
      await list.reload(true);
    });
  };
  const remove = (n: string) => {
    if (!window.confirm(`Delete the secret ${n}? Zaps that use it will fail.`)) return;
    del.run(async () => {
      await api('DELETE', `/api/v1/secrets/${encodeURIComponent(n)}`);
      await list.reload(true);
    });
  };

  return (
    <Page title="Secrets">
      <p class="lead">
        Secrets keep API keys and passwords out of zap configs. Reference one as <code>{'{{secrets.NAME}}'}</code>; values are write-only and shown as ******** in runs.
      </p>
      <form class="card inline-form" onSubmit={submit} noValidate>
        <h2>Add or replace a secret</h2>
        <ErrorBox error={add.error} />
        <div class="field">
          <label for="secret-name">Name</label>
          <input id="secret-name" type="text" value={name} spellcheck={false} autocomplete="off" placeholder="API_KEY" onInput={(e) => setName(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="secret-value">Value</label>
          <input id="secret-value" type="password" value={value} autocomplete="new-password" onInput={(e) => setValue(e.currentTarget.value)} />
        </div>
        <button type="submit" class="btn primary" disabled={add.busy}>
          Add secret
        </button>
        <p role="status" class="ok">
          {done}
        </p>
      </form>
      <ErrorBox error={list.error || del.error} />
      <ListTable
        items={list.data?.secrets}
        loading={list.loading}
        loadingWhat="Loading secrets"
        empty="No secrets yet."
        columns={['Name', 'Updated']}
        row={(s) => (
          <tr key={s.name} data-secret={s.name}>
            <td>
              <code>{s.name}</code>
            </td>
            <td>
              <Time at={s.updatedAt ?? s.createdAt} relative />
            </td>
            <td class="right">
              <button type="button" class="btn small danger" disabled={del.busy} onClick={() => remove(s.name)}>
                Delete
              </button>
            </td>
          </tr>
        )}
      />
    </Page>
  );
}

export function Tokens() {
  useTitle('API tokens');
  const list = useApi<{ tokens: TokenMeta[] }>('/api/v1/tokens');
  const [name, setName] = useState('');
  const [created, setCreated] = useState<{ name: string; token: string } | null>(null);
  const add = useAction();
  const del = useAction();

  const submit = (e: Event) => {
    e.preventDefault();
    add.run(async () => {
      const r = await api<TokenMeta & { token: string }>('POST', '/api/v1/tokens', { name });
      setCreated({ name: r.name, token: r.token });
      setName('');
      await list.reload(true);
    });
  };
  const revoke = (t: TokenMeta) => {
    if (!window.confirm(`Revoke the token ${t.name}? Programs using it stop working.`)) return;
    del.run(async () => {
      await api('DELETE', `/api/v1/tokens/${encodeURIComponent(t.id)}`);
      await list.reload(true);
    });
  };

  return (
    <Page title="API tokens">
      <p class="lead">
        API tokens let scripts call the zapd API: send <code>Authorization: Bearer TOKEN</code>.
      </p>
      <form class="card inline-form" onSubmit={submit} noValidate>
        <h2>Create a token</h2>
        <ErrorBox error={add.error} />
        <div class="field">
          <label for="token-name">Token name</label>
          <input id="token-name" type="text" value={name} autocomplete="off" placeholder="deploy script" onInput={(e) => setName(e.currentTarget.value)} />
        </div>
        <button type="submit" class="btn primary" disabled={add.busy}>
          Create token
        </button>
      </form>
      {created && (
        <div class="card new-token" role="status">
          <h2>New token “{created.name}”</h2>
          <CopyField value={created.token} id="new-token" />
          <p class="warn">Copy it now: you won't see it again.</p>
          <button type="button" class="btn small" onClick={() => setCreated(null)}>
            Done
          </button>
        </div>
      )}
      <ErrorBox error={list.error || del.error} />
      <ListTable
        items={list.data?.tokens}
        loading={list.loading}
        loadingWhat="Loading tokens"
        empty="No API tokens."
        columns={['Name', 'Created', 'Last used']}
        row={(t) => (
          <tr key={t.id} data-token={t.id}>
            <td>{t.name}</td>
            <td>
              <Time at={t.createdAt} relative />
            </td>
            <td>{t.lastUsedAt ? <Time at={t.lastUsedAt} relative /> : <span class="muted">never</span>}</td>
            <td class="right">
              <button type="button" class="btn small danger" disabled={del.busy} onClick={() => revoke(t)}>
                Revoke
              </button>
            </td>
          </tr>
        )}
      />
    </Page>
  );
}

export function Account() {
  useTitle('Account');
  const { route } = useLocation();
  const me = useApi<{ user: User }>('/api/v1/user');
  const [name, setName] = useState('');
  const [nameNote, setNameNote] = useState('');
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [pwNote, setPwNote] = useState('');
  const rename = useAction();
  const pw = useAction();
  const everywhere = useAction();
  useEffect(() => {
    if (me.data) setName(me.data.user.name);
  }, [me.data]);

  const saveName = (e: Event) => {
    e.preventDefault();
    setNameNote('');
    rename.run(async () => {
      const r = await api<{ user: User }>('PATCH', '/api/v1/user', { name });
      if (r?.user) me.setData({ user: r.user });
      setNameNote('Name saved.');
    });
  };
  const changePassword = (e: Event) => {
    e.preventDefault();
    setPwNote('');
    pw.run(async () => {
      try {
        const r = await api<{ message: string; token: string }>('POST', '/api/v1/user/password', { currentPassword: current, newPassword: next });
        if (r.token) setToken(r.token);
        setCurrent('');
        setNext('');
        setPwNote('Password changed. Your other sessions were signed out.');
      } catch (err) {
        if (err instanceof ApiError && err.status === 403) throw new Error(`Current password: ${err.message}`);
        throw err;
      }
    });
  };
  const signOutEverywhere = () => {
    if (!window.confirm('Sign out of every session, on every device?')) return;
    everywhere.run(async () => {
      await api('POST', '/api/v1/user/signout');
      setToken(null);
      route('/signin');
    });
  };

  if (me.loading) return <Loading what="Loading account" />;
  const u = me.data?.user;
  return (
    <Page title="Account">
      <ErrorBox error={me.error} />
      {u && (
        <>
          <form class="card" onSubmit={saveName} noValidate>
            <h2>Profile</h2>
            <ErrorBox error={rename.error} />
            <div class="field">
              <label for="account-name">Name</label>
              <input id="account-name" type="text" autocomplete="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
            </div>
            <dl class="facts">
              <Fact label="Email">{u.email}</Fact>
              <Fact label="Plan">{u.plan}</Fact>
              <Fact label="Member since">
                <Time at={u.createdAt} />
              </Fact>
            </dl>
            <button type="submit" class="btn primary" disabled={rename.busy}>
              Save
            </button>
            <span role="status" class="ok">
              {' '}
              {nameNote}
            </span>
          </form>
          <form class="card" onSubmit={changePassword} noValidate>
            <h2>Change password</h2>
            <ErrorBox error={pw.error} />
            <input type="text" autocomplete="username" value={u.email} hidden readOnly aria-hidden="true" tabIndex={-1} />
            <div class="field">
              <label for="pw-current">Current password</label>
              <input id="pw-current" type="password" autocomplete="current-password" value={current} onInput={(e) => setCurrent(e.currentTarget.value)} />
            </div>
            <div class="field">
              <label for="pw-new">New password</label>
              <input id="pw-new" type="password" autocomplete="new-password" value={next} onInput={(e) => setNext(e.currentTarget.value)} />
            </div>
            <button type="submit" class="btn" disabled={pw.busy}>
              Change password
            </button>
            <p role="status" class="ok">
              {pwNote}
            </p>
          </form>
          <section class="card">
            <h2>Sessions</h2>
            <p>Signs out every browser and device signed in to this account, including this one.</p>
            <ErrorBox error={everywhere.error} />
            <button type="button" class="btn danger" disabled={everywhere.busy} onClick={signOutEverywhere}>
              Sign out everywhere
            </button>
          </section>
        </>
      )}
    </Page>
  );
}
