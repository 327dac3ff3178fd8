import fs from 'node:fs';
import path from 'node:path';
import { markdownTable, schema } from '../../src/config/schema';

const readme = fs.readFileSync(path.join(__dirname, '../../README.md'), 'utf8');

describe('the README stays true', () => {
  it.each(Object.keys(schema))('documents config key %s with its default', (key) => {
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${key}\` |`));
    expect(row).toBeDefined();
    const field = (schema as Record<string, { default?: unknown; env?: string }>)[key];
    if (field.env) expect(row).toContain(`\`${field.env}\``);
    if (field.default !== undefined && typeof field.default !== 'object') expect(row).toContain(JSON.stringify(field.default));
  });

  it('names the two quick-start commands that exist in package.json', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '../../package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(readme).toContain('npm ci && npm run demo');
    expect(readme).toContain('npm ci && npm test');
    expect(pkg.scripts.demo).toBeDefined();
    expect(pkg.scripts.test).toBeDefined();
  });

  it('.ci/run calls the README\'s test command', () => {
    expect(fs.readFileSync(path.join(__dirname, '../../.ci/run'), 'utf8')).toMatch(/^npm test( \|\| status=\$\?)?$/m);
  });
});

describe('the README configuration table', () => {
  it('is exactly the one generated from the schema (`config keys --markdown`)', () => {
    const start = readme.indexOf('| key | environment | default | meaning |');
    expect(start).toBeGreaterThan(-1);
    const end = readme.indexOf('\n\n', start);
    expect(readme.slice(start, end)).toBe(markdownTable());
  });
});
