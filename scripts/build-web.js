// Builds the web page (web/) into dist/web: one bundled script and one stylesheet, each named
// by a hash of its content (served as immutable by src/api/routes/ui.ts), and index.html
// naming them. Nothing is fetched from elsewhere at run time. Run by `npm run build`.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const OUT = join(ROOT, 'dist', 'web')

await rm(OUT, { recursive: true, force: true })
const result = await build({
  entryPoints: { app: join(ROOT, 'web', 'src', 'main.tsx'), style: join(ROOT, 'web', 'style.css') },
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
})
const outputs = Object.keys(result.metafile.outputs).map(path => `assets/${basename(path)}`)
const script = outputs.find(name => /^assets\/app-.*\.js$/.test(name))
const style = outputs.find(name => /^assets\/style-.*\.css$/.test(name))
if (script == null || style == null) throw new Error(`esbuild gave no app script or stylesheet: ${outputs.join(', ')}`)
const html = (await readFile(join(ROOT, 'web', 'index.html'), 'utf8'))
  .replace('%SCRIPT%', `/${script}`)
  .replace('%STYLE%', `/${style}`)
await mkdir(OUT, { recursive: true })
await writeFile(join(OUT, 'index.html'), html)
