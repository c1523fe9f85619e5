import { describe, expect, it } from 'vitest';
import { idNumberLooksValid, petitionSteps } from './petitions';

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
