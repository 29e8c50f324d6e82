// Builds the web pages (web/) into dist/web: the daemon's page (index.html) and the testnet's
// (testnet.html, `octet testnet --ui`), each one bundled script, sharing one stylesheet, each
// file named by a hash of its content (served as immutable by src/api/routes/ui.ts). Nothing is fetched from elsewhere at run time. Run by `npm run build`.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const OUT = join(ROOT, 'dist', 'web')

await rm(OUT, { recursive: true, force: true })
const result = await build({
  entryPoints: {
    app: join(ROOT, 'web', 'src', 'main.tsx'),
    testnet: join(ROOT, 'web', 'src', 'testnet', 'main.tsx'),
    style: join(ROOT, 'web', 'style.css')
  },
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
const named = prefix => outputs.find(name => name.startsWith(`assets/${prefix}-`) && !name.endsWith('.map'))
const style = named('style')
await mkdir(OUT, { recursive: true })
for (const [page, entry] of [['index.html', 'app'], ['testnet.html', 'testnet']]) {
  const script = named(entry)
  if (script == null || style == null) throw new Error(`esbuild gave no ${entry} script or stylesheet: ${outputs.join(', ')}`)
  const html = (await readFile(join(ROOT, 'web', page), 'utf8'))
    .replace('%SCRIPT%', `/${script}`)
    .replace('%STYLE%', `/${style}`)
  await writeFile(join(OUT, page), html)
}
