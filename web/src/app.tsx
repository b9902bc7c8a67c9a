import { useEffect, useState } from 'preact/hooks';
import { LocationProvider, Route, Router, useLocation } from 'preact-iso/router';
import { getToken, onTokenChange, setToken } from './api';
import { Signin, Signup } from './pages/auth';
import { ZapsList } from './pages/zaps';
import { ZapEditor } from './pages/editor';
import { RunPage, RunsList } from './pages/runs';
import { Account, Secrets, Tokens } from './pages/settings';
import { Page, useTitle } from './ui';

const PUBLIC = ['/signin', '/signup'];

function NotFound() {
  useTitle('Not found');
  return (
    <Page title="Not found">
      <p>
        There is nothing here. <a href="/zaps">Go to your zaps</a>.
      </p>
    </Page>
  );
}

function Nav({ signedIn }: { signedIn: boolean }) {
  const { path, route } = useLocation();
  const link = (href: string, label: string, also: string[] = []) => {
    const current = path === href || also.some((p) => path === p || path.startsWith(p + '/')) || path.startsWith(href + '/');
    return (
      <li>
        <a href={href} aria-current={current ? 'page' : undefined}>
          {label}
        </a>
      </li>
    );
  };
  return (
    <header class="topbar">
      <nav aria-label="Main">
        <a class="brand" href={signedIn ? '/zaps' : '/signin'}>
          <img src="/favicon.svg" alt="" width={22} height={22} />
          zapd
        </a>
        {signedIn ? (
          <ul>
            {link('/zaps', 'Zaps', ['/runs', '/zaps'])}
            {link('/secrets', 'Secrets')}
            {link('/tokens', 'API tokens')}
            {link('/account', 'Account')}
            <li>
              <button
                type="button"
                class="btn link"
                onClick={() => {
                  setToken(null);
                  route('/signin');
                }}
              >
                Sign out
              </button>
            </li>
          </ul>
        ) : (
          <ul>
            {link('/signin', 'Sign in')}
            {link('/signup', 'Sign up')}
          </ul>
        )}
      </nav>
    </header>
  );
}

// A new page starts at the top, and keyboard and screen-reader users start at its content.
function onRouteChange() {
  window.scrollTo(0, 0);
  document.getElementById('main')?.focus({ preventScroll: true });
}

function Shell() {
  const { path, url, route } = useLocation();
  const [token, setTok] = useState(getToken());
  useEffect(() => onTokenChange(setTok), []);
  const isPublic = PUBLIC.includes(path);
  const allowed = !!token || isPublic;

  // Unauthenticated (or a 401 dropped the token): go to /signin, which returns here afterwards.
  useEffect(() => {
    if (!allowed) route(path === '/' || path === '/zaps' ? '/signin' : `/signin?next=${encodeURIComponent(url)}`, true);
  }, [allowed, route]);

  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <Nav signedIn={!!token} />
      <main id="main" tabIndex={-1}>
        {allowed ? (
          <Router onRouteChange={onRouteChange}>
            <Route path="/signin" component={Signin} />
            <Route path="/signup" component={Signup} />
            <Route path="/" component={ZapsList} />
            <Route path="/zaps" component={ZapsList} />
            <Route path="/zaps/new" component={ZapEditor} />
            <Route path="/zaps/:id/runs" component={RunsList} />
            <Route path="/zaps/:id" component={ZapEditor} />
            <Route path="/runs/:id" component={RunPage} />
            <Route path="/secrets" component={Secrets} />
            <Route path="/tokens" component={Tokens} />
            <Route path="/account" component={Account} />
            <Route default component={NotFound} />
          </Router>
        ) : null}
      </main>
    </>
  );
}

export function App() {
  return (
    <LocationProvider>
      <Shell />
    </LocationProvider>
  );
}
