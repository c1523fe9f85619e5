import { describe as suite, expect, it } from 'vitest';
import { ApiError } from '../api/client';
import { describe } from './errors';

const messages: Record<string, string> = {
  'errors.other': 'other: {message} {code}',
  'errors.network': 'network',
  'errors.forbidden': 'forbidden',
  'errors.invalid_field': 'check {field}',
};
const t = (key: string, named: Record<string, unknown> = {}) =>
  (messages[key] ?? key).replace(/\{(\w+)\}/g, (_, k) => String(named[k] ?? ''));
const te = (key: string) => key in messages;

suite('describe', () => {
  it.each([
    ['a known code', new ApiError(403, 'forbidden', 'your role does not allow this'), 'forbidden'],
    ['a code with its field', new ApiError(422, 'invalid_field', 'must be main or sub', 'stream'), 'check stream'],
    ['an unknown code: the server message and the code', new ApiError(409, 'brand_new', 'something new'), 'other: something new brand_new'],
    ['no server reached', new TypeError('Failed to fetch'), 'network'],
    ['anything else', new Error('boom'), 'other: boom '],
  ])('%s', (_, err, want) => {
    expect(describe(err, t, te)).toBe(want);
  });
});
