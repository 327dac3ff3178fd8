/**
 * `npm run bench:docs`: writes docs/performance.md from the committed bench results (bench/results.json).
 * `-- --from bench-results/latest.json` first copies a bench run there (publish a run: commit both files).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './common';
import { performancePage } from './report';

const RESULTS = path.join(ROOT, 'bench', 'results.json');
const PAGE = path.join(ROOT, 'docs', 'performance.md');

function main(): void {
  const i = process.argv.indexOf('--from');
  if (i >= 0) {
    const from = process.argv[i + 1];
    if (!from) throw new Error('--from needs a results file, e.g. bench-results/latest.json');
    const results = JSON.parse(fs.readFileSync(path.resolve(from), 'utf8')) as unknown;
    fs.writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
    process.stdout.write(`copied ${from} to bench/results.json\n`);
  }
  const page = performancePage(JSON.parse(fs.readFileSync(RESULTS, 'utf8')));
  fs.writeFileSync(PAGE, page);
  process.stdout.write(`wrote docs/performance.md (${page.split('\n').length} lines) from bench/results.json\n`);
}

try {
  main();
} catch (err) {
  process.stderr.write(`bench:docs: ${(err as Error).message}\n`);
  process.exit(1);
}
