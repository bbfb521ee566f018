/** The dashboard's entry: the session, the page frame and the route's page. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { loadSession, type Session, signOut } from './api';
import { ErrorNote, Link } from './components/link';
import { GroupPage } from './pages/group';
import { HealthPage } from './pages/health';
import { JobPage } from './pages/job';
import { JobsPage } from './pages/jobs';
import { BASE, useRoute } from './router';
import './style.css';

function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [error, setError] = useState<unknown>(null);
  const route = useRoute();
  useEffect(() => {
    loadSession().then(setSession, setError);
  }, []);
  useEffect(() => {
    document.title =
      route.page === 'job'
        ? `Job ${route.id} · Draftsman`
        : route.page === 'group'
          ? `Group ${route.id} · Draftsman`
          : route.page === 'health'
            ? 'Health · Draftsman'
            : 'Jobs · Draftsman';
  }, [route]);

  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <nav aria-label="Main">
          <Link href={`${BASE}/`} class="brand">
            Draftsman
          </Link>
          <Link href={`${BASE}/`}>Jobs</Link>
          <Link href={`${BASE}/health`}>Health</Link>
        </nav>
        {session ? (
          <div class="who">
            <span>{session.principal}</span>
            <button type="button" class="secondary" onClick={() => void signOut().catch(setError)}>
              Sign out
            </button>
          </div>
        ) : null}
      </header>
      <main id="main" tabIndex={-1}>
        <ErrorNote error={error} />
        {!session ? (
          <p class="loading">Loading…</p>
        ) : route.page === 'jobs' ? (
          <JobsPage search={route.search} />
        ) : route.page === 'job' ? (
          <JobPage key={route.id} id={route.id} session={session} />
        ) : route.page === 'group' ? (
          <GroupPage key={route.id} id={route.id} />
        ) : route.page === 'health' ? (
          <HealthPage />
        ) : (
          <p role="alert">Nothing at {route.path}.</p>
        )}
      </main>
    </>
  );
}

const root = document.getElementById('app')!;
// The shell's placeholder goes: render adds to what the element holds.
root.replaceChildren();
render(<App />, root);
