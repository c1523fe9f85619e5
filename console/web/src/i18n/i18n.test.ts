import { describe, expect, it } from 'vitest';
import zhCN from './zh-CN';
import en from './en';

function keys(o: object, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) => (v && typeof v === 'object' ? keys(v, `${prefix}${k}.`) : [`${prefix}${k}`]));
}

function leaves(o: object): string[] {
  return Object.values(o).flatMap((v) => (v && typeof v === 'object' ? leaves(v) : [String(v)]));
}

describe('messages', () => {
  it('English has every Chinese key and no other', () => {
    expect(keys(en).sort()).toEqual(keys(zhCN).sort());
  });

  it('every string is translated: none empty, and the Chinese ones are Chinese', () => {
    for (const s of [...leaves(zhCN), ...leaves(en)]) expect(s.trim()).not.toBe('');
    const notChinese = keys(zhCN).filter((k, i) => !/[\u4e00-\u9fff]/.test(leaves(zhCN)[i]) && !['lang.switch', 'wall.bitrate', 'wall.patrolStep'].includes(k));
    expect(notChinese).toEqual([]);
  });

  it('uses the same placeholders in both languages', () => {
    const ph = (s: string) => (s.match(/\{\w+\}/g) ?? []).sort().join(',');
    const z = leaves(zhCN);
    const e = leaves(en);
    const zk = keys(zhCN);
    const ek = keys(en);
    for (const [i, k] of zk.entries()) expect([k, ph(z[i])]).toEqual([k, ph(e[ek.indexOf(k)])]);
  });
});
