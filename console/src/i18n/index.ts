import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import { zhCN, type MessageKey } from './zh-CN';

export type { MessageKey } from './zh-CN';
export type Lang = 'zh-CN' | 'en';
export const LANGS: readonly Lang[] = ['zh-CN', 'en'];

export type Catalogue = Record<MessageKey, string>;
// zh-CN is in the main bundle; English is a chunk of its own, fetched (from the gateway) when chosen.
const catalogues: Partial<Record<Lang, Catalogue>> = { 'zh-CN': zhCN };

export function loadedCatalogue(lang: Lang): Catalogue | undefined {
  return catalogues[lang];
}

export async function loadCatalogue(lang: Lang): Promise<Catalogue> {
  catalogues[lang] ??= lang === 'en' ? (await import('./en')).en : zhCN;
  return catalogues[lang]!;
}
const LANG_KEY = 'wxphone.console.lang';
// Billing days, pack dates and WeChat's own console are all in China Standard Time.
const TIME_ZONE = 'Asia/Shanghai';

/** zh-CN unless the operator switched; the choice (a language, nothing personal) is remembered. */
export function initialLang(): Lang {
  try {
    const v = localStorage.getItem(LANG_KEY);
    if (v === 'en' || v === 'zh-CN') return v;
  } catch {
    // no storage: the default
  }
  return 'zh-CN';
}

export function rememberLang(lang: Lang): void {
  try {
    localStorage.setItem(LANG_KEY, lang);
  } catch {
    // not remembered
  }
}

export interface I18n {
  lang: Lang;
  t: (key: MessageKey, params?: Record<string, string | number>) => string;
  num: (n: number, fractionDigits?: number) => string;
  dateTime: (at: string | number) => string;
  date: (at: string | number) => string;
  /** "5 minutes ago" for a number of seconds in the past. */
  age: (seconds: number) => string;
}

export function createI18n(lang: Lang, messages: Catalogue): I18n {
  const numbers = new Map<number, Intl.NumberFormat>();
  const dateTimes = new Intl.DateTimeFormat(lang, { timeZone: TIME_ZONE, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  const dates = new Intl.DateTimeFormat(lang, { timeZone: TIME_ZONE, year: 'numeric', month: '2-digit', day: '2-digit' });
  const relative = new Intl.RelativeTimeFormat(lang, { numeric: 'auto' });
  return {
    lang,
    t: (key, params) => {
      const text = messages[key];
      return params ? text.replace(/\{(\w+)\}/g, (m, name: string) => (name in params ? String(params[name]) : m)) : text;
    },
    num: (n, fractionDigits = 0) => {
      let f = numbers.get(fractionDigits);
      if (!f) numbers.set(fractionDigits, (f = new Intl.NumberFormat(lang, { maximumFractionDigits: fractionDigits, minimumFractionDigits: 0 })));
      return f.format(n);
    },
    dateTime: (at) => dateTimes.format(new Date(at)),
    date: (at) => dates.format(new Date(at)),
    age: (seconds) => {
      const s = Math.max(0, seconds);
      if (s < 60) return relative.format(-Math.round(s), 'second');
      if (s < 3600) return relative.format(-Math.floor(s / 60), 'minute');
      if (s < 86_400) return relative.format(-Math.floor(s / 3600), 'hour');
      return relative.format(-Math.floor(s / 86_400), 'day');
    },
  };
}

export const I18nContext = createContext<{ i18n: I18n; setLang: (lang: Lang) => void }>({ i18n: createI18n('zh-CN', zhCN), setLang: () => {} });

export function useI18n(): I18n {
  return useContext(I18nContext).i18n;
}

export function useSetLang(): (lang: Lang) => void {
  return useContext(I18nContext).setLang;
}
