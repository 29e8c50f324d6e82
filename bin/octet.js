#!/usr/bin/env node
// The octet CLI entry. The libp2p stack needs Node.js 22 or newer; the project pins
// Node 22 through the `node` npm package. Started by an older system Node, this file
// re-runs itself on the pinned binary, or says in one line what to do.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import module, { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const REQUIRED_MAJOR = 22
const major = Number(process.versions.node.split('.')[0])

if (major >= REQUIRED_MAJOR) {
  if (!existsSync(fileURLToPath(new URL('../dist/cli/main.js', import.meta.url)))) {
    process.stderr.write('octet: not built yet; run `npm run build` in the octet folder (npm start, npm test and npm run testnet build it for you)\n')
    process.exit(1)
  }
  // V8's on-disk code cache roughly halves start-up; a testnet starts many daemons at once
  module.enableCompileCache?.()
  await import('../dist/cli/main.js')
} else {
  const pinned = findPinnedNode()
  if (pinned == null || process.env.OCTET_REEXEC === '1') {
    process.stderr.write(`octet: needs Node.js ${REQUIRED_MAJOR} or newer, this is ${process.version}; run \`npm ci\` in the octet folder (it installs Node ${REQUIRED_MAJOR}) and start it with \`npx octet\`, or install Node ${REQUIRED_MAJOR}\n`)
    process.exit(1)
  }
  const child = spawn(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, OCTET_REEXEC: '1' }
  })
  // the terminal sends Ctrl-C to the whole process group; SIGTERM from a supervisor only to us
  process.on('SIGINT', () => {})
  process.on('SIGTERM', () => child.kill('SIGTERM'))
  child.on('exit', (code, signal) => {
    if (signal != null) process.kill(process.pid, signal)
    process.exit(code ?? 1)
  })
}

function findPinnedNode () {
  try {
    const pkg = createRequire(import.meta.url).resolve('node/package.json')
    const binary = join(dirname(pkg), 'bin', 'node')
    return existsSync(binary) ? binary : undefined
  } catch {
    return undefined
  }
}
