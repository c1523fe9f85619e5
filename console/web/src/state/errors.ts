// What the console says of a failed call: Lookout's error codes in the
// user's language, the server's own message (English) only for codes
// without a translation.

import { ApiError } from '../api/client';

type T = (key: string, named?: Record<string, unknown>) => string;
type TE = (key: string) => boolean;

/** describe says err for the user. */
export function describe(err: unknown, t: T, te: TE): string {
  if (err instanceof ApiError) {
    const key = 'errors.' + err.code;
    if (te(key)) return t(key, { field: err.field ?? '' });
    return t('errors.other', { message: err.message, code: err.code });
  }
  if (err instanceof TypeError) return t('errors.network'); // fetch could not reach the server
  return t('errors.other', { message: err instanceof Error ? err.message : String(err), code: '' });
}
