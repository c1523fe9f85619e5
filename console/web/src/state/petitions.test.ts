import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from '../api/client';
import { session } from './session';
import { attachmentKind, checkAttachment, formatSize, idNumberLooksValid, maxAttachmentBytes, petitionSteps, uploadAttachment } from './petitions';

describe('petitionSteps', () => {
  it.each([
    ['received', ['scheduled', 'withdrawn']],
    ['scheduled', ['heard', 'withdrawn']],
    ['heard', ['scheduled', 'resolved', 'withdrawn']],
    ['resolved', ['closed']],
    ['withdrawn', ['closed']],
    ['closed', []],
  ] as const)('%s allows %j', (state, want) => {
    expect(petitionSteps(state)).toEqual(want);
  });
});

describe('idNumberLooksValid', () => {
  it.each([
    ['11010519491231002X', true],
    ['11010519491231002x', true], // sent upper-cased
    ['110105194912310021', false],
    ['1101051949123100', false],
    ['', false],
  ])('%s: %s', (id, want) => {
    expect(idNumberLooksValid(id)).toBe(want);
  });
});

describe('checkAttachment', () => {
  it.each([
    ['a photo', { size: 3_000_000, type: 'image/jpeg' }, ''],
    ['exactly 10 MiB', { size: maxAttachmentBytes, type: 'application/pdf' }, ''],
    ['one byte more', { size: maxAttachmentBytes + 1, type: 'application/pdf' }, 'attachment_too_large'],
    ['a Word file', { size: 1000, type: 'application/msword' }, 'unsupported_attachment_type'],
    ['an SVG', { size: 1000, type: 'image/svg+xml' }, 'unsupported_attachment_type'],
    ['a type the browser does not know: the server decides', { size: 1000, type: '' }, ''],
  ])('%s', (_, file, code) => {
    const err = checkAttachment(file);
    expect(err?.code ?? '').toBe(code);
    if (err) expect(err.field).toBe('file');
  });
});

describe('formatSize and attachmentKind', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [2048, '2 KB'],
    [maxAttachmentBytes, '10.0 MB'],
    [3_500_000, '3.3 MB'],
  ])('%d bytes: %s', (n, want) => {
    expect(formatSize(n)).toBe(want);
  });
  it('names the accepted types', () => {
    expect(['image/jpeg', 'image/png', 'image/webp', 'application/pdf', 'text/html'].map(attachmentKind)).toEqual(['JPEG', 'PNG', 'WebP', 'PDF', 'text/html']);
  });
});

describe('uploadAttachment', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    session.end('logout');
  });

  it('sends the file as the part file with the token, and reads the attachment', async () => {
    session.start('tok', new Date(Date.now() + 60_000).toISOString(), 'qj-ho');
    const fetch = vi.fn(async () => new Response(JSON.stringify({ id: 'att_1', name: '房屋.png' }), { status: 201 }));
    vi.stubGlobal('fetch', fetch);
    const att = await uploadAttachment('pet_1', new File([new Uint8Array([1, 2, 3])], '房屋.png', { type: 'image/png' }));
    expect(att.id).toBe('att_1');
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/v1/petitions/pet_1/attachments');
    expect(init.method).toBe('POST');
    expect((init.headers as Record<string, string>).Authorization).toBe('Bearer tok');
    const file = (init.body as FormData).get('file') as File;
    expect([file.name, file.size]).toEqual(['房屋.png', 3]);
  });

  it("turns the server's refusal into an ApiError", async () => {
    vi.stubGlobal('fetch', async () =>
      new Response(JSON.stringify({ error: { code: 'unsupported_attachment_type', message: 'the content is text/html', field: 'file' } }), { status: 422 }),
    );
    const err = await uploadAttachment('pet_1', new File(['<html>'], 'photo.jpg')).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect([err.status, err.code, err.field]).toEqual([422, 'unsupported_attachment_type', 'file']);
  });
});
