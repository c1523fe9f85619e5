// The console's languages: Simplified Chinese by default, English on the
// switch. The choice is kept in this browser; dates and numbers follow it
// through vue-i18n's Intl formats.

import { createI18n } from 'vue-i18n';
import zhCN from './zh-CN';
import en from './en';

export type Locale = 'zh-CN' | 'en';

const storageKey = 'lookout.locale';

export function storedLocale(): Locale {
  try {
    return localStorage.getItem(storageKey) === 'en' ? 'en' : 'zh-CN';
  } catch {
    return 'zh-CN';
  }
}

const datetimeFormats = {
  short: { month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false },
  long: { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false },
  time: { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false },
} as const;

const numberFormats = {
  decimal: { maximumFractionDigits: 2 },
  integer: { maximumFractionDigits: 0 },
} as const;

export const i18n = createI18n({
  legacy: false,
  locale: storedLocale(),
  fallbackLocale: 'zh-CN',
  messages: { 'zh-CN': zhCN, en },
  datetimeFormats: { 'zh-CN': datetimeFormats, en: datetimeFormats },
  numberFormats: { 'zh-CN': numberFormats, en: numberFormats },
  missingWarn: false,
  fallbackWarn: false,
});

export function setLocale(l: Locale) {
  i18n.global.locale.value = l;
  document.documentElement.lang = l;
  try {
    localStorage.setItem(storageKey, l);
  } catch {
    // Not kept: the choice holds for this page.
  }
}
