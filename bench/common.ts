/** Shared helpers of the benchmarks (bench/): percentiles, machine facts, result files. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');

export interface Stats {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentiles of `xs` (ms, or whatever unit the caller uses). */
export function stats(xs: readonly number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => nearestRank(s, p);
  const mean = s.length === 0 ? NaN : s.reduce((a, b) => a + b, 0) / s.length;
  return { n: s.length, p50: at(50), p95: at(95), p99: at(99), max: s.length ? s[s.length - 1] : NaN, mean };
}

function nearestRank(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Nearest-rank percentile p (0–100) of unsorted `xs`. */
export function percentile(xs: readonly number[], p: number): number {
  return nearestRank([...xs].sort((a, b) => a - b), p);
}

/**
 * Bootstrap 95 % interval of percentile(xs, p) / percentile(ys, p): both samples resampled with
 * replacement `iterations` times (a fixed-seed generator, so a given pair of samples always gives the
 * same interval).
 */
export function bootstrapRatio(xs: readonly number[], ys: readonly number[], p: number, iterations = 2000): [number, number] {
  if (xs.length === 0 || ys.length === 0) return [NaN, NaN];
  let seed = 0x2545f491;
  const rand = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const resample = (v: readonly number[]) => Array.from({ length: v.length }, () => v[Math.floor(rand() * v.length)]);
  const ratios: number[] = [];
  for (let i = 0; i < iterations; i++) {
    ratios.push(percentile(resample(xs), p) / percentile(resample(ys), p));
  }
  ratios.sort((a, b) => a - b);
  return [round(ratios[Math.floor(0.025 * iterations)], 3), round(ratios[Math.floor(0.975 * iterations) - 1], 3)];
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function machine(): { nproc: number; cpu: string; memoryGiB: number; node: string; platform: string; loadAverage: number[] } {
  return {
    nproc: os.cpus().length,
    loadAverage: os.loadavg().map((x) => round(x, 2)),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
  };
}

/** The value after a command-line flag (`--rate 50` → '50'), or undefined when the flag is not given. */
export function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

export function writeJson(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}
