// octet benchmarks: `npm run bench` runs them all, `npm run bench -- testnet` the one named
// "testnet", `npm run bench -- net` every one whose name contains "net". Each benchmark is a
// module beside this file exporting `name`,
// `description` and `async run({ log })` → { rows: [{ metric, value, unit, note }],
// targets?: [{ target, value, pass }] }. Results are printed and written to
// bench-results/<name>.json. Add a benchmark: write its module, list it in BENCHMARKS
// (by name, so that a filtered run loads only the modules it runs).
import { spawnSync } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ROOT, machine, packageVersion } from './lib.js'

/**
 * Benchmarks host several daemons in this one process (20 in `groups`), while a real daemon
 * has a process, and so a libuv thread pool of 4 threads for its LevelDB work, of its own.
 * With the default pool the daemons queue for each other's disk writes (measured on
 * `groups`, 4 runs each: p50 ~41 → ~37 ms, p99 ~180 → ~130 ms with 16 threads). The pool is sized when first
 * used, so the runner starts itself again with the size set.
 */
const THREAD_POOL_SIZE = '16'
if (process.env.UV_THREADPOOL_SIZE == null) {
  // --expose-gc: a benchmark that reports the memory something keeps collects first (only then)
  const child = spawnSync(process.execPath, [...process.execArgv, '--expose-gc', ...process.argv.slice(1)], { stdio: 'inherit', env: { ...process.env, UV_THREADPOOL_SIZE: THREAD_POOL_SIZE } })
  process.exit(child.status ?? 1)
}

const BENCHMARKS = [
  { name: 'testnet', load: () => import('./testnet.js') },
  { name: 'testnet-large', load: () => import('./testnet-large.js') },
  { name: 'messaging', load: () => import('./messaging.js') },
  { name: 'mailbox', load: () => import('./mailbox.js') },
  { name: 'groups', load: () => import('./groups.js') },
  { name: 'nat', load: () => import('./nat.js') },
  { name: 'autonat', load: () => import('./autonat.js') },
  { name: 'faults', load: () => import('./faults.js') },
  { name: 'metrics', load: () => import('./metrics.js') },
  { name: 'bridge', load: () => import('./bridge.js') },
  { name: 'web', load: () => import('./web.js') }
]

const RESULTS_DIR = join(ROOT, 'bench-results')

async function main () {
  const filters = process.argv.slice(2).filter(arg => !arg.startsWith('-'))
  const verbose = process.argv.includes('--verbose')
  // a benchmark's full name picks only it (`testnet`, not also `testnet-large`); a part of one, all that contain it
  const picks = (b, f) => BENCHMARKS.some(x => x.name === f) ? b.name === f : b.name.includes(f)
  const chosen = BENCHMARKS.filter(b => filters.length === 0 || filters.some(f => picks(b, f)))
  if (chosen.length === 0) {
    process.stderr.write(`bench: no benchmark matches ${filters.join(', ')}; known: ${BENCHMARKS.map(b => b.name).join(', ')}\n`)
    process.exitCode = 2
    return
  }
  const selected = []
  for (const b of chosen) selected.push(await b.load())
  const version = await packageVersion()
  let failedTargets = 0
  for (const bench of selected) {
    process.stdout.write(`\n== ${bench.name}: ${bench.description}\n`)
    const before = machine()
    const startedAt = new Date()
    const result = await bench.run({ log: verbose ? line => process.stderr.write(line + '\n') : () => {} })
    const report = {
      benchmark: bench.name,
      octet: version,
      date: startedAt.toISOString(),
      durationMs: Date.now() - startedAt.getTime(),
      machine: { ...before, loadavg1After: machine().loadavg1 },
      rows: result.rows,
      targets: result.targets ?? []
    }
    process.stdout.write(table(['METRIC', 'VALUE', 'UNIT', 'NOTE'], result.rows.map(r => [r.metric, String(r.value), r.unit, r.note ?? ''])) + '\n')
    if (report.targets.length > 0) {
      process.stdout.write('\n' + table(['TARGET', 'VALUE', 'MET'], report.targets.map(t => [t.target, String(t.value), t.pass ? 'yes' : 'NO'])) + '\n')
    }
    const m = report.machine
    process.stdout.write(`\nmachine: ${m.cpus} × ${m.cpuModel}, ${m.memoryMB} MB, Node ${m.node}, load ${m.loadavg1} → ${m.loadavg1After}\n`)
    await mkdir(RESULTS_DIR, { recursive: true })
    const file = join(RESULTS_DIR, `${bench.name}.json`)
    await writeFile(file, JSON.stringify(report, null, 2) + '\n')
    process.stdout.write(`written: ${file}\n`)
    failedTargets += report.targets.filter(t => !t.pass).length
  }
  // missed targets are reported, not fatal: a benchmark on a loaded machine is not a test
  if (failedTargets > 0) process.stdout.write(`\n${failedTargets} target(s) missed\n`)
}

function table (headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = cells => cells.map((c, i) => i === 1 ? c.padStart(widths[i]) : c.padEnd(widths[i])).join('  ').trimEnd()
  return [line(headers), line(widths.map(w => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

await main()
