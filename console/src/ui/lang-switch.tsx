import { LANGS, useI18n, useSetLang } from '../i18n';

const NAMES = { 'zh-CN': '中文', en: 'English' } as const;

/** Switches between the two catalogues; each button names its language in that language. */
export function LangSwitch() {
  const { lang, t } = useI18n();
  const setLang = useSetLang();
  return (
    <div class="lang" role="group" aria-label={t('lang.label')}>
      {LANGS.map((l) => (
        <button key={l} type="button" lang={l} aria-pressed={l === lang} class={l === lang ? 'on' : undefined} onClick={() => setLang(l)}>
          {NAMES[l]}
        </button>
      ))}
    </div>
  );
}
