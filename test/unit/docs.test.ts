import fs from 'node:fs';
import path from 'node:path';
import { markdownTable, schema } from '../../src/config/schema';
import { performancePage } from '../../bench/report';

const ROOT = path.join(__dirname, '../..');
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');
const readme = read('README.md');
const configuration = read('docs/configuration.md');
/** README.md and every page of docs/ (repository-relative paths). */
const pages = ['README.md', ...fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

describe('the README is the front door', () => {
  it('names the two quick-start commands that exist in package.json', () => {
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(readme).toContain('npm ci && npm run demo');
    expect(readme).toContain('npm ci && npm test');
    expect(pkg.scripts.demo).toBeDefined();
    expect(pkg.scripts.test).toBeDefined();
  });

  it('.ci/run calls the README\'s test command', () => {
    expect(read('.ci/run')).toMatch(/^npm test( \|\| status=\$\?)?$/m);
  });

  it('points to every page of docs/', () => {
    for (const page of pages.filter((p) => p !== 'README.md' && p !== 'docs/performance-log.md')) expect(readme).toContain(`](${page})`);
  });
});

describe('docs/configuration.md stays true', () => {
  it.each(Object.keys(schema))('documents config key %s with its default', (key) => {
    const row = configuration.split('\n').find((l) => l.startsWith(`| \`${key}\` |`));
    expect(row).toBeDefined();
    const field = (schema as Record<string, { default?: unknown; env?: string }>)[key];
    if (field.env) expect(row).toContain(`\`${field.env}\``);
    if (field.default !== undefined && typeof field.default !== 'object') expect(row).toContain(JSON.stringify(field.default));
  });

  it('has exactly the table generated from the schema (`config keys --markdown`)', () => {
    const start = configuration.indexOf('| key | environment | default | meaning |');
    expect(start).toBeGreaterThan(-1);
    const end = configuration.indexOf('\n\n', start);
    expect(configuration.slice(start, end)).toBe(markdownTable());
  });
});

describe('docs/performance.md', () => {
  it('is exactly the page generated from the committed bench results (`npm run bench:docs`)', () => {
    const results = JSON.parse(read('bench/results.json')) as unknown;
    expect(read('docs/performance.md')).toBe(performancePage(results));
  });
});

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
export function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}_\- ]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a Markdown file's headings (outside code blocks). */
export function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    else if (!fenced && /^#{1,6} /.test(line)) out.add(anchorOf(line.replace(/^#+ /, '')));
  }
  return out;
}

/** The relative links `[text](target)` of a Markdown file (outside code blocks); absolute URLs are left out. */
export function relativeLinks(markdown: string): string[] {
  const out: string[] = [];
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    else if (!fenced) for (const m of line.matchAll(/\]\(([^)\s]+)\)/g)) if (!/^[a-z][a-z0-9+.-]*:/i.test(m[1])) out.push(m[1]);
  }
  return out;
}

describe('every relative link in README.md and docs/ resolves', () => {
  it.each(pages)('%s', (page) => {
    const broken: string[] = [];
    for (const link of relativeLinks(read(page))) {
      const [file, anchor] = link.split('#');
      const target = file === '' ? page : path.join(path.dirname(page), file);
      if (!fs.existsSync(path.join(ROOT, target))) {
        broken.push(`${link}: no file ${target}`);
        continue;
      }
      if (anchor !== undefined && target.endsWith('.md') && !anchors(read(target)).has(anchor)) broken.push(`${link}: no heading #${anchor} in ${target}`);
    }
    expect(broken).toEqual([]);
  });

  it('catches a broken file and a broken anchor (the check can fail)', () => {
    const links = relativeLinks('see [a](docs/nope.md) and [b](#nowhere) and [c](https://example.com)\n```\n[d](x.md)\n```');
    expect(links).toEqual(['docs/nope.md', '#nowhere']);
    expect(fs.existsSync(path.join(ROOT, 'docs/nope.md'))).toBe(false);
    expect(anchors(readme).has('nowhere')).toBe(false);
    expect(anchors(readme).has('quick-start')).toBe(true);
    expect(anchorOf("In the corners: promises after hours, the prospect's clock")).toBe('in-the-corners-promises-after-hours-the-prospects-clock');
  });
});
