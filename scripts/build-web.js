// Builds the web pages (web/) into dist/web: the daemon's page (index.html) and the testnet's
// (testnet.html, `octet testnet --ui`), each one bundled script (the chat page's QR decoder a
// chunk loaded when a scan starts), sharing one stylesheet, each file named by a hash of its
// content (served as immutable by src/api/routes/ui.ts). Nothing is fetched from elsewhere at
// run time. Run by `npm run build`.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const OUT = join(ROOT, 'dist', 'web')

await rm(OUT, { recursive: true, force: true })
const common = {
  outdir: join(OUT, 'assets'),
  entryNames: '[name]-[hash]',
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  tsconfig: join(ROOT, 'web', 'tsconfig.json'),
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning'
}
// the chat page with its stylesheet; what it imports only when needed (the QR decoder, for a
// camera scan) becomes a chunk of its own, loaded then. The testnet page is built apart, so the
// two share no chunk and each loads as one script.
const builds = await Promise.all([
  build({
    ...common,
    entryPoints: { app: join(ROOT, 'web', 'src', 'main.tsx'), style: join(ROOT, 'web', 'style.css') },
    splitting: true,
    chunkNames: 'chunk-[hash]'
  }),
  build({ ...common, entryPoints: { testnet: join(ROOT, 'web', 'src', 'testnet', 'main.tsx') } })
])
const metaOutputs = Object.assign({}, ...builds.map(b => b.metafile.outputs))
const outputs = Object.keys(metaOutputs).map(path => `assets/${basename(path)}`)
const pathOf = prefix => Object.keys(metaOutputs).find(path => basename(path).startsWith(`${prefix}-`) && !path.endsWith('.map'))
const style = pathOf('style')
await mkdir(OUT, { recursive: true })
for (const [page, entry] of [['index.html', 'app'], ['testnet.html', 'testnet']]) {
  const script = pathOf(entry)
  if (script == null || style == null) throw new Error(`esbuild gave no ${entry} script or stylesheet: ${outputs.join(', ')}`)
  // the chunks the script imports at once are fetched beside it, not after it was parsed
  const preload = metaOutputs[script].imports.filter(i => i.kind === 'import-statement')
    .map(i => `  <link rel="modulepreload" href="/assets/${basename(i.path)}">\n`).join('')
  const html = (await readFile(join(ROOT, 'web', page), 'utf8'))
    .replace('%SCRIPT%', `/assets/${basename(script)}`)
    .replace('%STYLE%', `/assets/${basename(style)}`)
    .replace(/( *)<script type="module"/, `${preload}$1<script type="module"`)
  await writeFile(join(OUT, page), html)
}
