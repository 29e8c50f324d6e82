// Benchmark "testnet-large": `octet testnet --nodes 50` on this machine — how long until all
// daemons run, until the DHT readiness rounds pass, and the CPU the daemons spend once idle.
// Idle CPU is what decides whether a large testnet fits a small machine at all: 50 daemons
// share 2 cores with the lookups that prove readiness. Baseline in the same run: one daemon
// alone, idle for as long (its timers, no peers), so the ratio shows what peers cost.
import { cpuMsOf, singleDaemon, stats, tempDir } from './lib.js'

export const name = 'testnet-large'
export const description = 'a 50-node testnet: time to ready, and idle CPU per daemon against a lone daemon'

const NODES = Number(process.env.OCTET_BENCH_NODES ?? 50)
/** Once ready, how long the testnet is left alone before its idle CPU is measured, and for how long. */
const SETTLE_MS = 30_000
const IDLE_MS = 60_000

export async function run ({ log = () => {} } = {}) {
  const { Testnet } = await import('../../dist/testnet/index.js')
  const { DAEMON_NODE_FLAGS } = await import('../../dist/testnet/daemon-process.js')
  const rows = []
  const add = (metric, value, unit, note = '') => { rows.push({ metric, value: Math.round(value * 10) / 10, unit, note }) }

  const single = await tempDir('octet-bench-lone-')
  let loneIdlePercent
  try {
    log('one daemon alone, idle …')
    const lone = await singleDaemon(`${single.dir}/d`, DAEMON_NODE_FLAGS, { idleMs: IDLE_MS })
    loneIdlePercent = 100 * lone.idleCpuMs / IDLE_MS
    add('one daemon alone: idle CPU', loneIdlePercent, '% of a core', `over ${IDLE_MS / 1000} s`)
  } finally {
    await single.remove()
  }

  const work = await tempDir('octet-bench-testnet-large-')
  const testnet = new Testnet({ nodes: NODES, dir: work.dir, basePort: 0, logLevel: 'warn' })
  try {
    const t0 = performance.now()
    let allStartedMs = 0
    const nodes = await testnet.start(progress => {
      if (progress.stage === 'node-started') {
        if (progress.started === progress.total) allStartedMs = performance.now() - t0
        if (progress.started % 10 === 0) log(`  ${progress.started}/${progress.total} daemons up`)
      }
      if (progress.stage === 'dht') log(`  DHT ${progress.found}/${progress.total}`)
    })
    const readyMs = performance.now() - t0
    add(`testnet ${NODES} nodes: all daemons started`, allStartedMs / 1000, 's')
    add(`testnet ${NODES} nodes: ready`, readyMs / 1000, 's', 'every node finds and is found by several others through the DHT')
    await new Promise(resolveSettle => setTimeout(resolveSettle, SETTLE_MS))
    const before = nodes.map(n => cpuMsOf(n.pid))
    await new Promise(resolveIdle => setTimeout(resolveIdle, IDLE_MS))
    const percents = nodes.map((n, i) => 100 * (cpuMsOf(n.pid) - (before[i] ?? 0)) / IDLE_MS)
    const idle = stats(percents)
    add(`testnet ${NODES} nodes: idle CPU per daemon, median`, idle.median, '% of a core', `min ${Math.round(idle.min * 10) / 10}, max ${Math.round(idle.max * 10) / 10}`)
    add(`testnet ${NODES} nodes: idle CPU per daemon / lone daemon`, idle.median / loneIdlePercent, 'x')
    add(`testnet ${NODES} nodes: idle CPU of all daemons`, percents.reduce((a, b) => a + b, 0), '% of a core')
    return { rows }
  } finally {
    await testnet.stop()
    await work.remove()
  }
}
