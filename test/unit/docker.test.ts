/**
 * The docker demo without a Docker engine: docker-compose.yml validates (Debian's docker-compose
 * `config -q`, required in CI), the Dockerfiles parse and every file they copy exists, the asterisk image
 * is configured from the same asterisk-conf/ the test sandbox (scripts/pbx.sh) runs, and the docker-only
 * overrides are really included by those shared files.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { schema } from '../../src/config/schema';

const ROOT = path.resolve(__dirname, '../..');
const read = (p: string) => fs.readFileSync(path.join(ROOT, p), 'utf8');

interface Instruction {
  line: number;
  keyword: string;
  args: string;
}

const KEYWORDS = new Set(['FROM', 'RUN', 'CMD', 'LABEL', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL']);

/** A Dockerfile's instructions (comments dropped, continuation lines joined). Throws on a syntax error. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i];
    if (/^\s*(#.*)?$/.test(line)) continue;
    const start = i + 1;
    while (/\\\s*$/.test(line)) {
      i++;
      if (i >= lines.length) throw new Error(`line ${start}: continuation at the end of the file`);
      const next = lines[i];
      line = line.replace(/\\\s*$/, ' ') + (/^\s*#/.test(next) ? '' : next);
    }
    const m = /^\s*([A-Za-z]+)\s+(.*\S)\s*$/.exec(line);
    if (!m) throw new Error(`line ${start}: not an instruction: ${line}`);
    const keyword = m[1].toUpperCase();
    if (!KEYWORDS.has(keyword)) throw new Error(`line ${start}: unknown instruction ${m[1]}`);
    out.push({ line: start, keyword, args: m[2] });
  }
  const first = out.find((x) => x.keyword !== 'ARG');
  if (first?.keyword !== 'FROM') throw new Error('the first instruction (after ARG) must be FROM');
  for (const x of out) {
    if (['CMD', 'ENTRYPOINT'].includes(x.keyword) && x.args.startsWith('[')) JSON.parse(x.args);
    if (x.keyword === 'HEALTHCHECK' && x.args.includes('CMD [')) JSON.parse(x.args.slice(x.args.indexOf('CMD [') + 4));
  }
  return out;
}

/** COPY/ADD sources (relative to the build context) and their --from stage, if any. */
function copies(ins: Instruction[]): Array<{ line: number; from?: string; sources: string[]; dest: string }> {
  return ins
    .filter((x) => x.keyword === 'COPY' || x.keyword === 'ADD')
    .map((x) => {
      const words = x.args.startsWith('[') ? (JSON.parse(x.args) as string[]) : x.args.split(/\s+/);
      const flags = words.filter((w) => w.startsWith('--'));
      const rest = words.filter((w) => !w.startsWith('--'));
      const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
      return { line: x.line, from, sources: rest.slice(0, -1), dest: rest[rest.length - 1] };
    });
}

/** Files in the build context matching a COPY source (a path, a directory, or a `*` glob in the last part). */
function contextMatches(source: string): string[] {
  const clean = source.replace(/\/$/, '');
  const dir = path.dirname(clean);
  const base = path.basename(clean);
  if (!base.includes('*')) return fs.existsSync(path.join(ROOT, clean)) ? [clean] : [];
  const re = new RegExp(`^${base.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
  return fs
    .readdirSync(path.join(ROOT, dir))
    .filter((f) => re.test(f))
    .map((f) => path.join(dir, f));
}

function dockerignored(): string[] {
  return read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

interface ComposeService {
  build?: { context: string; dockerfile: string };
  ports?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, unknown>;
  command?: string[];
  healthcheck?: { test?: string[]; interval?: string; timeout?: string; retries?: number };
}

const compose = parseYaml(read('docker-compose.yml')) as { services: Record<string, ComposeService>; volumes?: Record<string, unknown> };

describe('docker-compose.yml', () => {
  it('the postgres profile adds PostgreSQL and a second app instance; both instances take the store URL from CC_STORE_URL', () => {
    const profiled = Object.entries(compose.services as Record<string, ComposeService & { profiles?: string[] }>)
      .filter(([, svc]) => svc.profiles?.includes('postgres'))
      .map(([name]) => name)
      .sort();
    expect(profiled).toEqual(['app-standby', 'postgres']);
    // The default `docker compose up` is unchanged: asterisk and app, no profile.
    expect((compose.services.app as { profiles?: string[] }).profiles).toBeUndefined();
    for (const name of ['app', 'app-standby']) expect(compose.services[name].environment?.CC_STORE_URL).toBe('${CC_STORE_URL:-}');
    const standby = compose.services['app-standby'];
    expect(standby.build).toEqual(compose.services.app.build);
    expect(Object.keys(standby.depends_on ?? {}).sort()).toEqual(['asterisk', 'postgres']);
    // Its own SQLite volume (used only without CC_STORE_URL), and never ARI or PostgreSQL published.
    expect(standby.volumes?.[0].split(':')[0]).not.toBe(compose.services.app.volumes?.[0].split(':')[0]);
    expect(compose.services.postgres.ports).toBeUndefined();
    for (const p of standby.ports ?? []) expect(p).toMatch(/^127\.0\.0\.1:/);
  });

  it('validates with docker-compose config -q (Debian docker-compose; required in CI)', () => {
    const r = spawnSync('docker-compose', ['-f', path.join(ROOT, 'docker-compose.yml'), 'config', '-q'], { encoding: 'utf8', cwd: ROOT });
    if (r.error) {
      if (process.env.CI === 'true') throw new Error('docker-compose is not installed (Debian: apt-get install docker-compose)');
      console.warn('docker-compose not installed: compose validation skipped (apt-get install docker-compose)');
      return;
    }
    expect({ status: r.status, stderr: r.stderr.trim() }).toEqual({ status: 0, stderr: '' });
  });

  it('has the asterisk and app services, each built from a Dockerfile in the repo', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['app', 'app-standby', 'asterisk', 'postgres']);
    for (const [name, file] of [
      ['asterisk', 'docker/asterisk.Dockerfile'],
      ['app', 'docker/app.Dockerfile'],
    ]) {
      expect(compose.services[name].build).toEqual({ context: '.', dockerfile: file });
      expect(fs.existsSync(path.join(ROOT, file))).toBe(true);
    }
  });

  it('publishes SIP and the RTP range Asterisk uses in docker, and never ARI', () => {
    const ast = compose.services.asterisk;
    expect(ast.ports).toContain('5060:5060/udp');
    const rtp = read('docker/asterisk/rtp.conf');
    const start = /^rtpstart\s*=\s*(\d+)/m.exec(rtp)?.[1];
    const end = /^rtpend\s*=\s*(\d+)/m.exec(rtp)?.[1];
    expect(ast.ports).toContain(`${start}-${end}:${start}-${end}/udp`);
    for (const svc of Object.values(compose.services)) {
      for (const p of svc.ports ?? []) expect(p).not.toMatch(/8088/);
    }
  });

  it('the app reaches ARI on the compose network and keeps its store in a named volume', () => {
    const app = compose.services.app;
    expect(app.environment?.CC_ARI_URL).toBe('http://asterisk:8088');
    const store = app.environment?.CC_STORE_PATH ?? '';
    const mount = (app.volumes ?? []).map((v) => v.split(':')).find(([, target]) => store.startsWith(`${target}/`));
    expect(mount).toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(mount![0]);
    expect(app.command).toEqual(['run', '--config', 'config/demo.json']);
    expect(fs.existsSync(path.join(ROOT, 'config/demo.json'))).toBe(true);
    expect(read('docker-compose.yml')).toMatch(/DEMO VALUES/);
  });

  it('checks the app\'s health on /readyz of the HTTP listener, at its default port, inside the container', () => {
    const check = compose.services.app.healthcheck;
    expect(check?.test?.[0]).toBe('CMD');
    const command = (check?.test ?? []).join(' ');
    const fields = schema as Record<string, { default?: unknown }>;
    expect(command).toContain(`http://${String(fields['http.bind'].default)}:${String(fields['http.port'].default)}/readyz`);
    // The image has node but no curl or wget: the check must be a node one-liner that exits non-zero on failure.
    expect(check?.test?.[1]).toBe('node');
    expect(command).toMatch(/process\.exit\(r\.ok \? 0 : 1\)/);
    // The listener (the callbacks page and the browser phones) is published on the host's loopback only.
    expect(compose.services.app.ports ?? []).toEqual([`127.0.0.1:${String(fields['http.port'].default)}:${String(fields['http.port'].default)}`]);
    expect(compose.services.app.environment?.CC_HTTP_BIND).toBe('0.0.0.0');
  });
});

describe('Dockerfiles', () => {
  for (const file of ['docker/asterisk.Dockerfile', 'docker/app.Dockerfile']) {
    it(`${file} parses; every file it copies exists in the build context and is not .dockerignored`, () => {
      const ins = parseDockerfile(read(file));
      const stages = ins.filter((x) => x.keyword === 'FROM').map((x) => / AS (\S+)$/i.exec(x.args)?.[1]).filter(Boolean);
      const ignored = dockerignored().map((p) => p.replace(/\/$/, ''));
      for (const c of copies(ins)) {
        if (c.from) {
          expect(stages).toContain(c.from);
          continue;
        }
        for (const s of c.sources) {
          const found = contextMatches(s);
          if (found.length === 0) throw new Error(`${file}:${c.line}: COPY ${s}: nothing in the build context matches`);
          for (const f of found) expect(ignored.some((i) => f === i || f.startsWith(`${i}/`))).toBe(false);
        }
      }
    });
  }

  it('the app image is a multi-stage Node 20 build that runs the built CLI as a non-root user', () => {
    const ins = parseDockerfile(read('docker/app.Dockerfile'));
    const froms = ins.filter((x) => x.keyword === 'FROM').map((x) => x.args);
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const f of froms) expect(f).toMatch(/^node:20\b/);
    expect(ins.filter((x) => x.keyword === 'USER').pop()?.args).toBe('node');
    expect(JSON.parse(ins.find((x) => x.keyword === 'ENTRYPOINT')!.args)).toEqual(['node', 'dist/cli/main.js']);
  });

  it('the asterisk image runs the same configuration and packages as the test sandbox', () => {
    const ins = parseDockerfile(read('docker/asterisk.Dockerfile'));
    const pbx = read('scripts/pbx.sh');
    // The sandbox copies asterisk-conf/*.conf and the dialplan routine into /etc/asterisk.
    expect(pbx).toMatch(/cp "\$REPO"\/asterisk-conf\/\*\.conf "\$etc"\//);
    expect(pbx).toMatch(/cp "\$REPO\/dialplan\/considerate-callback\.conf" "\$etc"\//);
    const c = copies(ins);
    expect(c).toContainEqual(expect.objectContaining({ sources: ['asterisk-conf/*.conf'], dest: '/etc/asterisk/' }));
    expect(c).toContainEqual(expect.objectContaining({ sources: ['dialplan/considerate-callback.conf'], dest: '/etc/asterisk/' }));
    expect(c).toContainEqual(expect.objectContaining({ sources: ['sounds/'] }));
    // Nothing else lands in /etc/asterisk/ itself: docker-only files go to /etc/asterisk/docker/.
    for (const x of c) if (x.dest === '/etc/asterisk/') expect(x.sources.every((s) => s.startsWith('asterisk-conf/') || s.startsWith('dialplan/'))).toBe(true);
    expect(c).toContainEqual(expect.objectContaining({ sources: ['docker/asterisk/*.conf'], dest: '/etc/asterisk/docker/' }));
    // Same Debian packages (sid) as the sandbox chroot.
    const sandboxPackages = /^PACKAGES="([^"]+)"/m.exec(pbx)![1].split(',').sort();
    const run = ins.find((x) => x.keyword === 'RUN' && x.args.includes('apt-get install'))!.args;
    const installed = run.slice(run.indexOf('--no-install-recommends') + '--no-install-recommends'.length).split('&&')[0].trim().split(/\s+/).sort();
    expect(installed).toEqual(sandboxPackages);
    expect(ins[0].args).toBe('debian:sid-slim');
    expect(/^SUITE="([^"]+)"/m.exec(pbx)![1]).toBe('sid');
  });
});

describe('docker-only Asterisk overrides (docker/asterisk/*.conf)', () => {
  const overrides = fs.readdirSync(path.join(ROOT, 'docker/asterisk')).filter((f) => f.endsWith('.conf'));

  it('each is #tryinclude-d by exactly one shared asterisk-conf file', () => {
    const includers = [...fs.readdirSync(path.join(ROOT, 'asterisk-conf')).map((f) => `asterisk-conf/${f}`), ...overrides.map((f) => `docker/asterisk/${f}`)];
    for (const f of overrides) {
      const by = includers.filter((p) => read(p).split('\n').some((l) => l.trim() === `#tryinclude docker/${f}`));
      expect({ f, includedBy: by.length }).toEqual({ f, includedBy: 1 });
    }
  });

  it('they only override settings the shared files have (bind, bindaddr, rtpstart/rtpend)', () => {
    const keys = (text: string) => text.split('\n').map((l) => /^\s*([a-z_]+)\s*=/.exec(l)?.[1]).filter((k): k is string => !!k);
    for (const f of ['pjsip-transport.conf', 'http.conf', 'rtp.conf']) {
      const shared = keys(read(`asterisk-conf/${f === 'pjsip-transport.conf' ? 'pjsip.conf' : f}`));
      for (const k of keys(read(`docker/asterisk/${f}`))) expect(shared).toContain(k);
    }
  });

  it('the sandbox is untouched: scripts/pbx.sh copies only asterisk-conf/*.conf, so the includes find nothing there', () => {
    expect(read('scripts/pbx.sh')).not.toMatch(/docker\/asterisk/);
    expect(read('asterisk-conf/pjsip.conf')).toMatch(/^bind = 127\.0\.0\.1:5060$/m);
    expect(read('asterisk-conf/http.conf')).toMatch(/^bindaddr = 127\.0\.0\.1$/m);
  });
});
