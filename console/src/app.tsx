import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Console } from './context';
import { createI18n, I18nContext, initialLang, loadCatalogue, loadedCatalogue, rememberLang, useI18n, type Catalogue, type Lang, type MessageKey } from './i18n';
import { request, GatewayError } from './graphql/client';
import { ConsoleSessionDocument } from './graphql/generated';
import { can, forgetToken, keepToken, OPERATOR_SCOPES, storedToken, takeTokenFromAddress, type OperatorSession, type Scope } from './session';
import { hrefOf, navigate, useRoute, type Route } from './router';
import { SignIn } from './views/sign-in';
import { Overview } from './views/overview';
import { AppDetail } from './views/app-detail';
import { ReconciliationView } from './views/reconciliation';
import { Exchanges } from './views/exchanges';
import { Audit } from './views/audit';
import { LangSwitch } from './ui/lang-switch';
import { ErrorState, Loading } from './ui/states';

/** Which scope each page needs: a page the token does not allow is neither linked nor shown. */
const NEEDS: Record<Route['name'], Scope> = {
  overview: 'quota:read',
  app: 'quota:read',
  reconciliation: 'quota:read',
  exchanges: 'quota:read',
  audit: 'audit:read',
  unknown: 'quota:read',
};
const NAV: { route: Route; label: MessageKey }[] = [
  { route: { name: 'overview' }, label: 'nav.overview' },
  { route: { name: 'reconciliation', appid: null }, label: 'nav.reconciliation' },
  { route: { name: 'exchanges' }, label: 'nav.exchanges' },
  { route: { name: 'audit' }, label: 'nav.audit' },
];

export function App() {
  const [{ lang, messages }, setCatalogue] = useState<{ lang: Lang; messages: Catalogue | undefined }>(() => {
    const lang = initialLang();
    return { lang, messages: loadedCatalogue(lang) };
  });
  const setLang = useCallback((l: Lang) => {
    rememberLang(l);
    void loadCatalogue(l).then((m) => setCatalogue({ lang: l, messages: m }));
  }, []);
  useEffect(() => {
    if (!messages) setLang(lang);
  }, [messages, lang, setLang]);
  const i18n = useMemo(() => messages && createI18n(lang, messages), [lang, messages]);
  useEffect(() => {
    if (!i18n) return;
    document.documentElement.lang = lang;
    document.title = i18n.t('app.title');
  }, [lang, i18n]);
  if (!i18n) return null;
  return (
    <I18nContext.Provider value={{ i18n, setLang }}>
      <SessionGate />
    </I18nContext.Provider>
  );
}

type Gate =
  | { state: 'signed-out'; problem: MessageKey | null }
  | { state: 'checking' }
  | { state: 'unreachable'; token: string; error: GatewayError }
  | { state: 'signed-in'; session: OperatorSession };

/** Checks a token with the gateway (the `session` query) before anything else is shown. */
function SessionGate() {
  const [gate, setGate] = useState<Gate>(() => ({ state: 'signed-out', problem: null }));
  const started = useRef(false);

  const signOut = useCallback((problem: MessageKey | null = null) => {
    forgetToken();
    setGate({ state: 'signed-out', problem });
  }, []);

  const check = useCallback(
    async (token: string) => {
      setGate({ state: 'checking' });
      try {
        const { session } = await request(ConsoleSessionDocument, {}, token);
        const scopes = new Set(session.scopes);
        if (!OPERATOR_SCOPES.some((s) => scopes.has(s))) return signOut('signin.noOperatorScope');
        keepToken(token);
        setGate({ state: 'signed-in', session: { token, subject: session.subject, scopes, expiresAt: Date.parse(session.expiresAt) } });
      } catch (e) {
        if (e instanceof GatewayError && e.code === 'UNAUTHENTICATED') return signOut('signin.refused');
        // The gateway did not answer: the token may be fine, so it is kept and checked again on retry.
        setGate({ state: 'unreachable', token, error: e instanceof GatewayError ? e : new GatewayError(String(e), 0, undefined) });
      }
    },
    [signOut],
  );

  useEffect(() => {
    if (started.current) return;
    started.current = true;
    const token = takeTokenFromAddress() ?? storedToken();
    if (token) void check(token);
  }, [check]);

  // Signed out when the token expires, not at the next failing request.
  useEffect(() => {
    if (gate.state !== 'signed-in') return;
    const ms = gate.session.expiresAt - Date.now();
    const timer = setTimeout(() => signOut('signin.expired'), Math.min(Math.max(0, ms), 2 ** 31 - 1));
    return () => clearTimeout(timer);
  }, [gate, signOut]);

  if (gate.state === 'checking') return <Loading />;
  if (gate.state === 'unreachable') {
    return (
      <main id="main" class="sign-in">
        <div class="sign-in-card">
          <ErrorState error={gate.error} retry={() => void check(gate.token)} />
          <button type="button" onClick={() => signOut(null)} data-action="sign-out">
            <SignOutLabel />
          </button>
        </div>
      </main>
    );
  }
  if (gate.state === 'signed-out') return <SignIn onToken={check} busy={false} problem={gate.problem} />;
  return (
    <Console.Provider value={{ session: gate.session, signOut: () => signOut(null), expire: () => signOut('signin.expired') }}>
      <Shell session={gate.session} onSignOut={() => signOut(null)} />
    </Console.Provider>
  );
}

function Shell({ session, onSignOut }: { session: OperatorSession; onSignOut: () => void }) {
  const { t } = useI18n();
  const route = useRoute();
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);
  const allowed = (r: Route) => can(session, NEEDS[r.name]);
  const landing = NAV.find((n) => allowed(n.route))?.route;

  useEffect(() => {
    if (!allowed(route) && landing) navigate(landing);
    // Keyboard and screen-reader users start at the new page's content.
    if (!first.current) main.current?.focus();
    first.current = false;
  }, [route.name, route.name === 'app' ? route.appid : '']);

  const page = !allowed(route) ? null : route.name === 'app' ? (
    <AppDetail key={route.appid} appid={route.appid} />
  ) : route.name === 'reconciliation' ? (
    <ReconciliationView appid={route.appid} />
  ) : route.name === 'exchanges' ? (
    <Exchanges />
  ) : route.name === 'audit' ? (
    <Audit />
  ) : (
    <Overview />
  );
  const current = route.name === 'app' ? 'overview' : route.name;
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), main.current?.focus())}>
        {t('nav.skip')}
      </a>
      <header class="top">
        <a class="brand" href={landing ? hrefOf(landing) : '#/'}>
          {t('app.title')}
        </a>
        <nav aria-label={t('nav.main')}>
          <ul>
            {NAV.filter((n) => allowed(n.route)).map((n) => (
              <li key={n.route.name}>
                <a href={hrefOf(n.route)} aria-current={current === n.route.name ? 'page' : undefined}>
                  {t(n.label)}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span class="muted small" title={[...session.scopes].join(' ')}>
            {session.subject} · {[...session.scopes].filter((s) => (OPERATOR_SCOPES as readonly string[]).includes(s)).join(' ')}
          </span>
          <LangSwitch />
          <button type="button" onClick={onSignOut} data-action="sign-out">
            {t('signin.out')}
          </button>
        </div>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        {page}
      </main>
      <footer class="muted small">{t('footer.note')}</footer>
    </>
  );
}

function SignOutLabel() {
  return <>{useI18n().t('signin.out')}</>;
}
