/**
 * The shape of src/ (docs/architecture.md, "Architecture"): no import cycle between files, and the arrows that
 * must not exist do not (the HTTP side reads through src/views/, never src/cli/; no adapter reaches into the
 * command line). Imports are read from the source (static, type-only and dynamic alike).
 */
import fs from 'node:fs';
import path from 'node:path';

const SRC = path.join(__dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** file (relative to src/) → the src files it imports. */
export function importGraph(root: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(root)) {
    const text = fs.readFileSync(file, 'utf8');
    const targets = new Set<string>();
    for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const base = path.join(path.dirname(file), m[1].replace(/\.js$/, ''));
      const hit = [`${base}.ts`, path.join(base, 'index.ts')].find((c) => fs.existsSync(c));
      if (hit) targets.add(path.relative(root, hit));
    }
    graph.set(path.relative(root, file), [...targets]);
  }
  return graph;
}

/** The import cycles (strongly connected sets of more than one file, or a file importing itself). */
export function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const stack: string[] = [];
  const onStack = new Set<string>();
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, idx.get(w) as number));
    }
    if (low.get(v) === idx.get(v)) {
      const set: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        set.push(w);
      } while (w !== v);
      if (set.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(set.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return found;
}

const room = (file: string) => file.split(path.sep)[0];

describe('the import graph of src/', () => {
  const graph = importGraph(SRC);

  it('reads the imports (the graph is not empty and finds a known arrow)', () => {
    expect(graph.size).toBeGreaterThan(50);
    expect(graph.get(path.join('http', 'web.ts'))).toContain(path.join('views', 'requests.ts'));
  });

  it('has no import cycle', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('has no arrow into the command line except from the package entry', () => {
    const into = [...graph].flatMap(([from, tos]) => tos.filter((t) => room(t) === 'cli' && room(from) !== 'cli' && from !== 'index.ts').map((t) => `${from} → ${t}`));
    expect(into).toEqual([]);
  });

  it('keeps the transport in src/telephony (no src/asterisk, src/agi) and no loose file beyond the entry, ledger and ids (the engine is a room, src/engine/)', () => {
    expect(fs.existsSync(path.join(SRC, 'asterisk'))).toBe(false);
    expect(fs.existsSync(path.join(SRC, 'agi'))).toBe(false);
    const loose = fs.readdirSync(SRC).filter((f) => f.endsWith('.ts'));
    expect(loose.sort()).toEqual(['ids.ts', 'index.ts', 'ledger.ts']);
  });

  it('finds a cycle when there is one (the check can fail)', () => {
    const g = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', ['a.ts']],
    ]);
    expect(cycles(g)).toEqual([['a.ts', 'b.ts', 'c.ts']]);
  });
});
