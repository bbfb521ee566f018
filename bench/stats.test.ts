import { quantile, summarize } from './stats';

describe('summarize', () => {
  it.each([
    [[5], 5, 5],
    [[1, 2, 3, 4], 2, 4],
    [[10, 1, 7, 3, 5], 5, 10],
    [Array.from({ length: 20 }, (_, i) => i + 1), 10, 19],
  ])('%j has median %d and p95 %d', (samples, median, p95) => {
    expect(summarize(samples)).toMatchObject({ runs: samples.length, median, p95 });
  });

  it('gives NaN for no samples', () => {
    expect(quantile([], 0.5)).toBeNaN();
  });
});
