// Builds the browser side (web/) into dist/web: the callbacks page and the demo phones (JsSIP bundled
// with esbuild, so nothing is fetched from a CDN). Run by `npm run build`.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/web');
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { callbacks: join(root, 'web/callbacks.js'), phones: join(root, 'web/phones.js') },
  outdir: out,
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome100', 'firefox100', 'safari15'],
  legalComments: 'linked',
  logLevel: 'warning',
});
for (const f of ['callbacks.html', 'phones.html', 'web.css']) copyFileSync(join(root, 'web', f), join(out, f));
