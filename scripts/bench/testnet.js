// Benchmark "testnet": how long `octet testnet --nodes 10 --base-port 0` takes to be ready
// (every node finds every other node through a DHT query) and how much memory each daemon
// holds then. Baselines measured in the same run, so ratios hold on a noisy machine: a bare
// Node process (its RSS) and a single daemon started alone (its start time, CPU and RSS).
// CPU time (user + system, from /proc) is reported beside wall time: on a shared machine it
// moves much less than wall time does.
import { MB, bareNode, cpuMsOf, memoryOf, singleDaemon, stats, tempDir } from './lib.js'

export const name = 'testnet'
export const description = 'time to ready and memory per daemon of a 10-node testnet, against a bare Node process and a lone daemon'

const NODES = 10
const SINGLE_RUNS = 3
/** Targets from issue #2: on 2 cores, ready in under 10 s; under 120 MB RSS per daemon. */
const TARGET_READY_MS = 10_000
const TARGET_RSS_MB = 120

export async function run ({ log = () => {} } = {}) {
  // dist/ is built by `npm run bench` (prebench)
  const { Testnet } = await import('../../dist/testnet/index.js')
  const { DAEMON_NODE_FLAGS } = await import('../../dist/testnet/daemon-process.js')
  const rows = []
  const add = (metric, value, unit, note = '') => { rows.push({ metric, value: round(value), unit, note }) }
  const range = s => `median of ${s.n} (min ${round(s.min)}, max ${round(s.max)})`

  // baseline 1: a bare Node process
  const bare = []
  for (let i = 0; i < 3; i++) bare.push(await bareNode())
  const bareMB = stats(bare).median / MB
  add('bare node: RSS', bareMB, 'MB', `median of ${bare.length}`)

  // baseline 2: one daemon alone, as `octet daemon` runs it and with the testnet's Node flags;
  // a first start on a new data directory makes its keys, a restart reuses them. An unmeasured
  // start first warms the compile cache.
  const single = await tempDir('octet-bench-single-')
  let singleFreshMs
  try {
    log('one daemon alone …')
    await singleDaemon(`${single.dir}/warmup`)
    const fresh = []
    const again = []
    const flagged = []
    for (let i = 0; i < SINGLE_RUNS; i++) {
      fresh.push(await singleDaemon(`${single.dir}/d${i}`))
      again.push(await singleDaemon(`${single.dir}/d${i}`))
      flagged.push(await singleDaemon(`${single.dir}/d${i}`, DAEMON_NODE_FLAGS))
    }
    const freshMs = stats(fresh.map(r => r.readyMs))
    singleFreshMs = freshMs.median
    add('one daemon: start to ready, new data dir', freshMs.median, 'ms', range(freshMs))
    add('one daemon: start to ready, existing data dir', stats(again.map(r => r.readyMs)).median, 'ms', range(stats(again.map(r => r.readyMs))))
    add('one daemon: CPU until ready, new data dir', stats(fresh.map(r => r.cpuMs)).median, 'ms', range(stats(fresh.map(r => r.cpuMs))))
    const singleRss = stats([...fresh, ...again].map(r => r.rss / MB))
    add('one daemon: RSS when ready', singleRss.median, 'MB', range(singleRss))
    add('one daemon: RSS / bare node', singleRss.median / bareMB, 'x')
    add(`one daemon with ${DAEMON_NODE_FLAGS.join(' ')}: RSS when ready`, stats(flagged.map(r => r.rss / MB)).median, 'MB', 'the testnet\'s flags')
  } finally {
    await single.remove()
  }

  // the testnet
  const work = await tempDir('octet-bench-testnet-')
  const testnet = new Testnet({ nodes: NODES, dir: work.dir, basePort: 0, logLevel: 'warn' })
  try {
    log(`testnet of ${NODES} …`)
    const t0 = performance.now()
    let allStartedMs = 0
    let cpuAtAllStarted = 0
    const nodes = await testnet.start(progress => {
      if (progress.stage === 'node-started' && progress.started === progress.total) {
        allStartedMs = performance.now() - t0
        cpuAtAllStarted = testnet.nodes.reduce((sum, n) => sum + cpuMsOf(n.pid), 0)
      }
      if (progress.stage === 'dht') log(`  DHT ${progress.found}/${progress.total}`)
    })
    const readyMs = performance.now() - t0
    const cpuAtReady = nodes.reduce((sum, n) => sum + cpuMsOf(n.pid), 0)
    const memory = nodes.map(n => memoryOf(n.pid))
    const rss = stats(memory.map(m => m.rss / MB))
    add(`testnet ${NODES} nodes: all daemons started`, allStartedMs, 'ms', `Node flags ${DAEMON_NODE_FLAGS.join(' ')}`)
    add(`testnet ${NODES} nodes: then DHT lookups until all ${NODES * (NODES - 1)} succeed`, readyMs - allStartedMs, 'ms')
    add(`testnet ${NODES} nodes: ready`, readyMs, 'ms', `target < ${TARGET_READY_MS} ms`)
    add(`testnet ${NODES} nodes: ready / one daemon start`, readyMs / singleFreshMs, 'x')
    add(`testnet ${NODES} nodes: CPU of all daemons until all started`, cpuAtAllStarted, 'ms')
    add(`testnet ${NODES} nodes: CPU of all daemons until ready`, cpuAtReady, 'ms', `${round(cpuAtReady / readyMs)} cores busy on average`)
    add('testnet daemon RSS: min', rss.min, 'MB')
    add('testnet daemon RSS: median', rss.median, 'MB', `target < ${TARGET_RSS_MB} MB`)
    add('testnet daemon RSS: max', rss.max, 'MB')
    add('testnet daemon RSS: median / bare node', rss.median / bareMB, 'x')
    add('testnet daemon RSS: of which private (anonymous), median', stats(memory.map(m => m.anon / MB)).median, 'MB', 'heap, stacks: each daemon\'s own')
    add('testnet daemon RSS: of which file-backed, median', stats(memory.map(m => m.file / MB)).median, 'MB', 'node binary, native addons: shared by all daemons')
    add(`testnet ${NODES} nodes: memory of all daemons (private sum + shared once)`, (memory.reduce((sum, m) => sum + m.anon, 0) + Math.max(...memory.map(m => m.file))) / MB, 'MB')
    const stopStart = performance.now()
    await testnet.stop()
    add(`testnet ${NODES} nodes: stop`, performance.now() - stopStart, 'ms')

    const targets = [
      { target: `ready < ${TARGET_READY_MS} ms`, value: round(readyMs), pass: readyMs < TARGET_READY_MS },
      { target: `max daemon RSS < ${TARGET_RSS_MB} MB`, value: round(rss.max), pass: rss.max < TARGET_RSS_MB }
    ]
    return { rows, targets }
  } finally {
    await testnet.stop()
    await work.remove()
  }
}

function round (value) {
  return Math.round(value * 10) / 10
}
