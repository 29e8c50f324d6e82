// The OpenAPI document the daemon serves (GET /v1/openapi.json), built from the compiled API
// (`npm run build`) without starting a daemon.
//   node scripts/openapi.js [file]   writes it to the file (stdout without one)
//   node scripts/openapi.js --lint   lints it with Redocly's recommended rules (redocly.yaml);
//                                    fails on any error or warning (`npm run lint:openapi`, CI)
// The lint runs offline: no telemetry, no update check.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openApiDocument } from '../dist/api/document.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const doc = JSON.stringify(JSON.parse(await openApiDocument(version)), null, 2) + '\n'

if (process.argv[2] !== '--lint') {
  if (process.argv[2] != null) writeFileSync(process.argv[2], doc)
  else process.stdout.write(doc)
} else {
  const dir = mkdtempSync(join(tmpdir(), 'octet-openapi-'))
  const file = join(dir, 'openapi.json')
  writeFileSync(file, doc)
  const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', REDOCLY_SUPPRESS_NOTIFICATIONS: 'true' }
  const redocly = (format) => spawnSync(process.execPath, [join(root, 'node_modules/@redocly/cli/bin/cli.js'), 'lint', '--config', join(root, 'redocly.yaml'), '--format', format, file], { env, encoding: 'utf8' })
  let totals
  try {
    const run = redocly('json')
    try {
      totals = JSON.parse(run.stdout).totals
    } catch {
      process.stderr.write(run.stdout + run.stderr)
    }
    // again, with the problems in a form a person reads
    if (totals != null && totals.errors + totals.warnings > 0) {
      const shown = redocly('stylish')
      process.stderr.write(shown.stdout + shown.stderr)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  if (totals == null) process.exit(1)
  console.log(`OpenAPI document (GET /v1/openapi.json): ${totals.errors} errors, ${totals.warnings} warnings (redocly recommended rules, redocly.yaml)`)
  process.exit(totals.errors + totals.warnings > 0 ? 1 : 0)
}
