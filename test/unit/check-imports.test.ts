import { spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ROOT } from '../helpers/daemon.js'

const SCRIPT = join(ROOT, 'scripts', 'check-imports.js')
const dirs: string[] = []
afterAll(async () => { for (const dir of dirs) await rm(dir, { recursive: true, force: true }) })

function check (root?: string): { status: number | null, stdout: string, stderr: string } {
  const result = spawnSync(process.execPath, [SCRIPT, ...(root != null ? [root] : [])], { encoding: 'utf8', timeout: 30_000 })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

async function fixture (files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'octet-imports-'))
  dirs.push(root)
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true })
    await writeFile(join(root, path), text)
  }
  return root
}

describe('scripts/check-imports.js', () => {
  it('passes on this repository: every package imported is declared', () => {
    const result = check()
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
  })

  it('fails on each undeclared import, and on a devDependency in code that ships', async () => {
    const root = await fixture({
      'package.json': JSON.stringify({ name: 'fixture', dependencies: { '@scope/declared': '1' }, devDependencies: { devonly: '1' } }),
      'src/a.ts': [
        "import { x } from '@scope/declared/sub/path.js'",
        "import type { Y } from 'undeclared-types'",
        "import { readFile } from 'node:fs/promises'",
        "import { join } from 'path'",
        "import { local } from './local.js'",
        "import dev from 'devonly'",
        "// import nothing from 'in-a-comment'",
        "const text = \"import nothing from 'in-a-string'\"",
        "export { z } from 'reexported'",
        "const lazy = await import('dynamic-one')"
      ].join('\n'),
      'bin/cli.js': "require('fixture/self')\nrequire('bin-undeclared')",
      'test/b.test.ts': "import { it } from 'devonly'\nimport 'test-undeclared'",
      'scripts/exp.mjs': "// check-imports: not a dependency by-hand (installed --no-save)\nawait import('by-hand')\nawait import('script-undeclared')"
    })
    const result = check(root)
    expect(result.status).toBe(1)
    const named = result.stderr.split('\n').filter(line => line.includes(': imports ')).map(line => line.split(':')[0] + ' ' + (/imports '([^']+)'/.exec(line)?.[1] ?? ''))
    expect(named.sort()).toEqual([
      'bin/cli.js bin-undeclared',
      'scripts/exp.mjs script-undeclared',
      'src/a.ts devonly',
      'src/a.ts dynamic-one',
      'src/a.ts reexported',
      'src/a.ts undeclared-types',
      'test/b.test.ts test-undeclared'
    ])
    expect(result.stderr).toMatch(/src\/a\.ts: imports 'devonly': devonly is a devDependency, but this code ships/)
  })

  it('keeps examples to octet/client: no file of src, no other octet subpath', async () => {
    const root = await fixture({
      'package.json': JSON.stringify({ name: 'octet', dependencies: {}, devDependencies: {} }),
      'examples/bridge/main.ts': [
        "import { createOctetClient } from 'octet/client'",
        "import { helper } from './helper.js'",
        "import { OctetError } from '../../src/errors.js'",
        "import { thing } from 'octet/internal'"
      ].join('\n'),
      'examples/bridge/helper.ts': 'export const helper = 1'
    })
    const result = check(root)
    expect(result.status).toBe(1)
    const lines = result.stderr.split('\n').filter(line => line.includes(': imports '))
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatch(/^examples\/bridge\/main\.ts: imports '\.\.\/\.\.\/src\/errors\.js': reaches src\/errors\.js outside examples/)
    expect(lines[1]).toMatch(/^examples\/bridge\/main\.ts: imports 'octet\/internal': not octet's public API/)
  })
})
