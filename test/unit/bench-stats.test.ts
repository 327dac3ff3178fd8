import { bootstrapRatio, percentile, stats } from '../../bench/common';

describe('bench statistics', () => {
  it('nearest-rank percentiles', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 … 1, unsorted on purpose
    expect(stats(xs)).toMatchObject({ n: 100, p50: 50, p95: 95, p99: 99, max: 100, mean: 50.5 });
    expect(percentile([3, 1, 2], 50)).toBe(2);
    expect(percentile([], 50)).toBeNaN();
  });

  it('bootstrap interval of a ratio: exact when the samples are constant, brackets the true ratio otherwise', () => {
    expect(bootstrapRatio([4, 4, 4], [2, 2], 99)).toEqual([2, 2]);
    const ys = Array.from({ length: 400 }, (_, i) => 1 + (i % 10));
    const xs = ys.map((y) => y * 1.5);
    const [lo, hi] = bootstrapRatio(xs, ys, 50);
    expect(lo).toBeLessThanOrEqual(1.5);
    expect(hi).toBeGreaterThanOrEqual(1.5);
    expect(hi - lo).toBeLessThan(0.6);
    // deterministic: a given pair of samples always gives the same interval
    expect(bootstrapRatio(xs, ys, 99)).toEqual(bootstrapRatio(xs, ys, 99));
    expect(bootstrapRatio([], ys, 50)).toEqual([NaN, NaN]);
  });
});
