// Every package imported is declared in package.json: what src/ and bin/ import (the daemon as
// installed with `npm ci --omit=dev`) in "dependencies", what test/, scripts/ and the vitest
// config import in either. A package that is only there because another one pulls it in works
// until that one moves on; this fails first. Run by CI (.ci/run) and by `npm run check-imports`
// (`node scripts/check-imports.js [root]`, this repository by default); exits 1 listing each
// undeclared import with the file that makes it.
//
// Specifiers come from TypeScript's own pre-processor (static and dynamic imports, re-exports,
// require), so comments and strings that look like imports do not count. A script that imports a
// package installed by hand for an experiment says so in a comment beside the import, naming it:
// `check-imports: not a dependency <package> (why)`.
//
// Examples (examples/) are programs written against octet's public API: of octet they import
// `octet/client` only, never a file of src/ (nor another octet subpath), so an example that
// builds is one any user of the package could have written.
import { readFileSync, readdirSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

/** Where code lives, and whether it ships (needs "dependencies") or not (devDependencies do). */
export const AREAS = [
  { path: 'src', ships: true },
  { path: 'bin', ships: true },
  { path: 'test', ships: false },
  { path: 'scripts', ships: false },
  // the web page: bundled into dist/web at build time, so its packages are devDependencies
  { path: 'web', ships: false },
  { path: 'examples', ships: false, publicApiOnly: true },
  { path: 'vitest.config.ts', ships: false }
]

const CODE = /\.(?:[cm]?[jt]s|tsx?)$/
const builtins = new Set(builtinModules)

/** What examples may import of octet itself. */
const PUBLIC_ENTRIES = new Set(['client'])

/** Why an import of an example reaches past octet's public API, or undefined when it does not. */
function privateReach (root, file, specifier, self) {
  if (specifier.startsWith('.') || specifier.startsWith('/')) {
    const target = relative(join(root, 'examples'), resolve(root, dirname(file), specifier))
    return target.startsWith('..') ? `reaches ${relative(root, resolve(root, dirname(file), specifier))} outside examples/: import '${self}/client' instead` : undefined
  }
  if (specifier === self || specifier.startsWith(`${self}/`)) {
    const entry = specifier.slice(self.length + 1)
    return PUBLIC_ENTRIES.has(entry) ? undefined : `not octet's public API: examples import '${self}/client' only`
  }
  return undefined
}

/** The package a bare specifier names (`@scope/name/sub` → `@scope/name`); undefined for relative paths and Node built-ins. */
export function packageOf (specifier) {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:') || specifier.startsWith('#')) return undefined
  const parts = specifier.split('/')
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]
  return builtins.has(name) ? undefined : name
}

function * codeFiles (root, path) {
  const full = join(root, path)
  let entries
  try {
    entries = readdirSync(full, { withFileTypes: true })
  } catch (err) {
    if (err.code === 'ENOTDIR') { if (CODE.test(path)) yield path; return }
    if (err.code === 'ENOENT') return
    throw err
  }
  for (const entry of entries) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue
    const child = join(path, entry.name)
    if (entry.isDirectory()) yield * codeFiles(root, child)
    else if (CODE.test(entry.name) && !entry.name.endsWith('.d.ts')) yield child
  }
}

/** Imports of packages that package.json at `root` does not declare where they are needed, and examples reaching past octet/client: `{ file, specifier, package, problem }`. */
export function undeclaredImports (root) {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  const deps = new Set(Object.keys(pkg.dependencies ?? {}))
  const devDeps = new Set(Object.keys(pkg.devDependencies ?? {}))
  const self = pkg.name
  const found = []
  for (const area of AREAS) {
    for (const file of codeFiles(root, area.path)) {
      const text = readFileSync(join(root, file), 'utf8')
      const byHand = new Set([...text.matchAll(/check-imports: not a dependency (\S+)/g)].map(m => m[1]))
      const { importedFiles } = ts.preProcessFile(text, true, true)
      for (const { fileName: specifier } of importedFiles) {
        const reach = area.publicApiOnly === true ? privateReach(root, file, specifier, self) : undefined
        if (reach != null) {
          found.push({ file: relative(root, join(root, file)), specifier, package: self, problem: reach })
          continue
        }
        const name = packageOf(specifier)
        if (name == null || name === self || deps.has(name)) continue
        if (!area.ships && byHand.has(name)) continue
        if (!area.ships && devDeps.has(name)) continue
        const problem = `${name} is ${devDeps.has(name) ? 'a devDependency, but this code ships: move it to "dependencies"' : 'not declared in package.json'}`
        found.push({ file: relative(root, join(root, file)), specifier, package: name, problem })
      }
    }
  }
  return found
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = process.argv[2] ?? join(fileURLToPath(import.meta.url), '..', '..')
  const found = undeclaredImports(root)
  for (const f of found) console.error(`${f.file}: imports '${f.specifier}': ${f.problem}`)
  if (found.length > 0) {
    console.error(`check-imports: ${found.length} import(s) to fix; declare each package (npm install <name>, or --save-dev for tests and scripts), and keep examples to octet/client`)
    process.exit(1)
  }
  console.log('check-imports: every imported package is declared')
}
