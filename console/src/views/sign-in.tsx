import { useState } from 'preact/hooks';
import { useI18n, type MessageKey } from '../i18n';
import { LangSwitch } from '../ui/lang-switch';

/** Paste a token, or come back through a console link (which signs in by itself). */
export function SignIn({ onToken, busy, problem }: { onToken: (token: string) => void; busy: boolean; problem: MessageKey | null }) {
  const { t } = useI18n();
  const [token, setToken] = useState('');
  const submit = (e: Event) => {
    e.preventDefault();
    const v = token.trim().replace(/^Bearer\s+/i, '');
    if (v) onToken(v);
  };
  return (
    <main id="main" class="sign-in">
      <div class="sign-in-card">
        <div class="sign-in-head">
          <h1>{t('app.title')}</h1>
          <LangSwitch />
        </div>
        <p>{t('signin.intro')}</p>
        {problem && (
          <div class="notice notice-warn" role="alert" data-problem={problem}>
            {t(problem)}
          </div>
        )}
        <form onSubmit={submit} autocomplete="off">
          <label for="token">{t('signin.token')}</label>
          <textarea id="token" rows={4} value={token} spellcheck={false} autocomplete="off" placeholder="eyJhbGciOi…" onInput={(e) => setToken((e.currentTarget as HTMLTextAreaElement).value)} />
          <button type="submit" class="primary" disabled={busy || !token.trim()}>
            {busy ? t('signin.checking') : t('signin.submit')}
          </button>
        </form>
        <p class="muted small">{t('signin.link')}</p>
        <pre class="cmd">npx wxphone console-link --sub NAME --scope "quota:read billing:admin audit:read"</pre>
        <p class="muted small">{t('signin.storage')}</p>
      </div>
    </main>
  );
}
