import { useState } from 'preact/hooks';
import { useLocation } from 'preact-iso/router';
import { api, ApiError, errorMessage, getToken, safeNext, setToken } from '../api';
import { ErrorBox, useTitle } from '../ui';

function AuthForm({ mode }: { mode: 'signin' | 'signup' }) {
  const { route, query } = useLocation();
  // Where a 401 or a deep link sent the user from; only same-origin paths are honoured.
  const next = safeNext(query.next);
  const keepNext = next ? `?next=${encodeURIComponent(next)}` : '';
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const signup = mode === 'signup';
  useTitle(signup ? 'Sign up' : 'Sign in');

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setFieldErrors({});
    try {
      if (signup) await api('POST', '/api/v1/user/signup', { username: email, password, name });
      const r = await api<{ token: string }>('POST', '/api/v1/user/signin', { username: email, password });
      setToken(r.token);
      route(next ?? '/zaps');
    } catch (err) {
      setError(errorMessage(err));
      if (err instanceof ApiError) {
        const fe: Record<string, string> = {};
        for (const d of err.details) fe[d.path === 'username' ? 'email' : d.path] = d.message;
        setFieldErrors(fe);
      }
    } finally {
      setBusy(false);
    }
  };

  const field = (id: string, label: string, type: string, value: string, set: (v: string) => void, autocomplete: string) => (
    <div class="field">
      <label for={`auth-${id}`}>{label}</label>
      <input
        id={`auth-${id}`}
        type={type}
        value={value}
        autocomplete={autocomplete}
        onInput={(e) => set(e.currentTarget.value)}
        aria-invalid={fieldErrors[id] ? 'true' : undefined}
        aria-describedby={fieldErrors[id] ? `auth-${id}-error` : undefined}
      />
      {fieldErrors[id] && (
        <p class="field-error" id={`auth-${id}-error`}>
          {fieldErrors[id]}
        </p>
      )}
    </div>
  );

  return (
    <section class="page auth">
      <h1>{signup ? 'Create your account' : 'Sign in to zapd'}</h1>
      {getToken() && (
        <p class="muted">
          You are already signed in. <a href="/zaps">Go to your zaps</a>.
        </p>
      )}
      <form class="card" onSubmit={submit} noValidate>
        <ErrorBox error={error} />
        {signup && field('name', 'Name', 'text', name, setName, 'name')}
        {field('email', 'Email', 'email', email, setEmail, 'email')}
        {field('password', 'Password', 'password', password, setPassword, signup ? 'new-password' : 'current-password')}
        <button type="submit" class="btn primary" disabled={busy}>
          {signup ? 'Sign up' : 'Sign in'}
        </button>
      </form>
      <p>
        {signup ? (
          <>
            Already have an account? <a href={`/signin${keepNext}`}>Sign in</a>
          </>
        ) : (
          <>
            New here? <a href={`/signup${keepNext}`}>Create an account</a>
          </>
        )}
      </p>
    </section>
  );
}

export const Signin = () => <AuthForm mode="signin" />;
export const Signup = () => <AuthForm mode="signup" />;
