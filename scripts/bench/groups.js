// Issue #5 benchmark: one group of 20 nodes (real TCP on 127.0.0.1), 200 texts of 1 KiB
// sent round-robin by its members, paced (a send returns, then 25 ms): send → decrypted at
// every other member (the issue's measure: p50, p99, delivery ratio), and → stored there (its
// event out, visible through the API; reported beside it), against raw gossipsub fan-out
// of the same sizes on the same nodes in the same run (a plain topic, no encryption, no
// storage), and the time the group takes to form (19 invites, accepts, sender keys).
//
// The 20 daemons run in 2 worker threads (group-worker.js), 10 each, driven from this
// thread over postMessage: one V8 isolate per core of a 2-core machine. The two earlier
// layouts both measured the layout more than octet:
// - all 20 daemons on this one thread: its event loop was 98 % busy in the group phase
//   while the second core idled; group p50 29–41 ms, p99 90–185 ms, raw p50 ~11 ms;
// - one process per node (over IPC): 20 isolates each JIT-compiling the whole libp2p stack
//   and each seeing 1/20 of the calls, about 3× the CPU per message: group p50 ~290 ms,
//   p99 ~2.7 s, raw p50 ~90 ms.
// With 2 workers the process uses ~1.8 cores at the same CPU per message as one thread
// (~75 ms per group message over the 20 nodes, ~50 ms raw): both cores are nearly saturated
// at this pace, so latency is still mostly waiting for a busy event loop.
// The rows after the targets say how busy the threads were in each phase: CPU of the whole
// process and of each worker thread (in cores), what other processes took of the machine
// meanwhile (another benchmark on the same cores shows there), event-loop utilisation per
// worker, and how often a send actually went out (a send waits for the previous one to
// return, so an overloaded machine sends less often than every 25 ms).
// Stamps are on CLOCK_MONOTONIC (process.hrtime), one clock for every thread, taken in the
// worker that hosts the node: the sender's right before its send or publish call (so the
// sender's encryption and write count too), each receiver's when it decrypted the message
// (the validator's verdict) and when it stored it (its event). Latency of a message is the
// last of the 19 receivers' stamps minus the sender's; postMessage to this thread is not
// part of it.
// Run alone: `npm run bench -- groups`; --verbose adds per-worker event-loop delay, latency
// by quarter of the run, where the time goes (the sender's call, then when the 1st, 10th
// and 19th member had the message) and any missed messages. BENCH_GROUPS_PROFILE=<dir>
// writes a CPU profile of each worker thread for each measured phase;
// BENCH_GROUPS_WORKERS=<n> spreads the nodes over n workers instead of 2 (1: the old
// single event loop, measured the same way); BENCH_GROUPS_TRACE=1 also stamps each group
// message at each member as it comes off the wire (not yet decrypted): the verbose log then
// splits the latency into propagation, decryption and storage.
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { cpus } from 'node:os'
import { resolve } from 'node:path'
import { Worker } from 'node:worker_threads'
import { tempDir } from './lib.js'

const NODES = 20
/** Worker threads the nodes are spread over (node i in worker i mod WORKERS). */
const WORKERS = Number(process.env.BENCH_GROUPS_WORKERS ?? 2)
if (!Number.isInteger(WORKERS) || WORKERS < 1 || WORKERS > NODES) throw new Error(`BENCH_GROUPS_WORKERS must be 1…${NODES}, not ${process.env.BENCH_GROUPS_WORKERS}`)

export const name = 'groups'
export const description = `a group of ${NODES} local nodes in ${WORKERS} worker thread${WORKERS === 1 ? '' : 's'}: send → decrypted at every member, vs raw gossipsub fan-out`

/**
 * A worker's heap holds 10 daemons, and V8 sizes its young generation as for one: with the
 * default, --trace-gc showed 389 scavenges (2.7 s) and 11 mark-compacts (0.19 s, up to 67 ms
 * each) in one run; with 96 MB, 151 scavenges (1.8 s) and 8 mark-compacts (0.16 s), GC time
 * -31 %. (A daemon run on its own has a heap, and a young generation, of its own.)
 */
const WORKER_YOUNG_GENERATION_MB = 96
/** How long the idle baseline is measured: the daemons' own work (heartbeats, pings) while nobody sends. */
const IDLE_MS = 3000
/** BENCH_GROUPS_TRACE=1: stamp group messages also off the wire at each member (verbose log). */
const TRACE = process.env.BENCH_GROUPS_TRACE === '1'
const MESSAGES = 200
/** Sends are paced (a chat, not a flood): latency is measured, not queueing. */
const PACE_MS = 25
const TEXT = 'x'.repeat(1024)
const WARM_UP = 5
const RAW_TOPIC = '/octet-bench/raw-fanout'
/** gossipsub's D_low (src/node/pubsub.ts): a node below it grafts more peers at its next heartbeat. */
const MESH_LOW = 3
const SETTLE_TIMEOUT = 30_000
const REQUEST_TIMEOUT = 60_000
const STOP_TIMEOUT = 15_000
const WORKER_SCRIPT = new URL('./group-worker.js', import.meta.url)

function percentile (values, p) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))]
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const mean = values => values.reduce((a, b) => a + b, 0) / values.length

/**
 * The worker threads, the nodes they host (node i in worker i mod WORKERS) and their data
 * directories. A worker that fails or exits before `stop` fails the run: its pending
 * requests reject, and so does every later wait.
 */
class Cluster {
  workers = []
  nodes = []
  dirs = []
  /** indices of the nodes asked to start, in that order */
  started = []
  failure = undefined
  #fail
  /** rejects with the first worker's death */
  died = new Promise((resolve, reject) => { this.#fail = reject })
  /** (node index, phase, i, at) for each message a node reports having */
  onArrival = () => {}
  /** (node index, "<sender>:<seq>", at, stage) for each traced group message: off the wire, proven */
  onWire = () => {}
  stopping = undefined

  constructor () {
    this.died.catch(() => {})
  }

  async startWorkers () {
    await Promise.all(Array.from({ length: WORKERS }, async (_, index) => {
      const thread = new Worker(WORKER_SCRIPT, { resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } })
      const worker = { index, thread, pending: new Map(), nextId: 0, exited: false }
      this.workers.push(worker)
      const up = new Promise((resolveUp, reject) => {
        worker.onUp = resolveUp
        worker.onDeath = reject
      })
      thread.on('message', message => { this.#message(worker, message) })
      thread.on('error', err => { this.#died(worker, `failed: ${err?.stack ?? err}`) })
      thread.on('exit', code => {
        worker.exited = true
        this.#died(worker, `exited with code ${code}`)
      })
      await up
    }))
    this.workers.sort((a, b) => a.index - b.index)
  }

  workerOf (index) { return this.workers[index % WORKERS] }

  /** Starts node `index` in its worker, on a fresh data directory. */
  async startNode (index, bootstrap) {
    const dir = await tempDir('octet-bench-group-')
    if (this.stopping != null || this.failure != null) {
      await dir.remove()
      throw this.failure ?? new Error('the benchmark is stopping')
    }
    this.dirs.push(dir)
    this.started.push(index)
    const node = { index, worker: this.workerOf(index), dir: dir.dir }
    node.info = await this.request(node.worker, 'start', index, { dir: dir.dir, bootstrap })
    this.nodes[index] = node
    return node
  }

  #message (worker, message) {
    if (message?.type === 'up') return worker.onUp()
    if (message?.type === 'arrivals') {
      for (const [node, phase, i, at] of message.list) this.onArrival(node, phase, i, at)
      for (const [node, key, at, stage] of message.wire) this.onWire(node, key, at, stage)
      return
    }
    const waiting = worker.pending.get(message?.id)
    if (waiting == null) return
    worker.pending.delete(message.id)
    clearTimeout(waiting.timer)
    if (message.ok) waiting.resolve(message.result)
    else waiting.reject(new Error(`worker ${worker.index}: ${waiting.what} failed: ${message.error}`))
  }

  #died (worker, how) {
    const err = new Error(`worker ${worker.index} ${how}`)
    worker.onDeath?.(err)
    for (const waiting of worker.pending.values()) {
      clearTimeout(waiting.timer)
      waiting.reject(err)
    }
    worker.pending.clear()
    if (this.stopping != null) return
    if (this.failure == null) {
      this.failure = err
      this.#fail(err)
    }
  }

  /** A command to a worker; `node` is the index of the node it addresses, if any. */
  request (worker, cmd, node, args = {}, timeoutMs = REQUEST_TIMEOUT) {
    // once stopping, the healthy worker still gets its stop commands after another one failed
    if (this.failure != null && this.stopping == null) return Promise.reject(this.failure)
    if (worker.exited) return Promise.reject(new Error(`worker ${worker.index} is gone`))
    const id = worker.nextId++
    const what = node == null ? cmd : `${cmd} (node ${node})`
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        worker.pending.delete(id)
        reject(new Error(`worker ${worker.index}: ${what} got no answer in ${timeoutMs} ms`))
      }, timeoutMs)
      worker.pending.set(id, { what, resolve, reject, timer })
      worker.thread.postMessage({ id, cmd, node, args })
    })
  }

  /** A command to one node, in its worker. */
  async ask (node, cmd, args = {}) { return await this.request(node.worker, cmd, node.index, args) }

  /** The same command to every node, at once. */
  async all (cmd, args = {}) {
    return await Promise.all(this.nodes.map(async node => await this.ask(node, cmd, typeof args === 'function' ? args(node) : args)))
  }

  /** A command to each worker (not addressed to a node), at once. */
  async eachWorker (cmd, args = {}) {
    return await Promise.all(this.workers.map(async worker => await this.request(worker, cmd, undefined, typeof args === 'function' ? args(worker) : args)))
  }

  /** Polls `check` (a condition, not a sleep) until it holds; fails at the deadline or when a worker died. */
  async waitUntil (check, what, timeoutMs = SETTLE_TIMEOUT) {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (this.failure != null) throw this.failure
      if (await check()) return
      await sleep(50)
    }
    throw new Error(`timed out waiting for ${what}`)
  }

  /**
   * Stops every daemon in its worker (in reverse order of start), terminates the workers,
   * removes the data. Once: later calls wait for the first.
   */
  stop () {
    this.stopping ??= (async () => {
      await Promise.all(this.workers.map(async worker => {
        if (!worker.exited) {
          const hosted = this.started.filter(index => this.workerOf(index) === worker).reverse()
          for (const index of hosted) {
            if (worker.exited) break
            await this.request(worker, 'stop', index, {}, STOP_TIMEOUT).catch(() => {})
          }
        }
        await worker.thread.terminate().catch(() => {})
      }))
      for (const dir of this.dirs) await dir.remove()
    })()
    return this.stopping
  }

  /** For a second signal and exit: synchronous, removes every data directory (the workers die with the process). */
  removeNow () {
    for (const { dir } of this.dirs) rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Sends `count` messages of `phase` round-robin with `publish(node, i)` (which resolves to
 * the sender's stamps { at, returned }: before and after its call, and for a group message
 * its `key` on the wire), paced, then waits until every other node reported each of them
 * (or the time is up): per message the time from the sender's stamp to the last arrival.
 */
async function measure (cluster, phase, count, publish, log) {
  const expected = cluster.nodes.length - 1
  const sentAt = new Array(count)
  const returnedAt = new Array(count)
  const arrivals = Array.from({ length: count }, () => [])
  /** key → [[node, at], …]: off the wire, before decryption (group messages, traced) */
  const wire = new Map()
  /** "<node>/<key>" → at: decrypted, forwarding allowed */
  const proven = new Map()
  const keys = new Array(count)
  const arrivalsByNode = new Map()
  const got = new Array(count).fill(0)
  let complete = 0
  let allIn
  const everyArrival = new Promise(resolve => { allIn = resolve })
  const missing = cluster.nodes.map(node => new Set(Array.from({ length: count }, (_, i) => i).filter(i => i % cluster.nodes.length !== node.index)))
  cluster.onArrival = (node, p, i, at) => {
    if (p !== phase || i >= count) return
    missing[node].delete(i)
    got[i]++
    arrivals[i].push(at)
    arrivalsByNode.set(`${node}/${i}`, at)
    if (got[i] === expected && ++complete === count) allIn()
  }
  cluster.onWire = (node, key, at, stage) => {
    if (stage === 'proven') {
      proven.set(`${node}/${key}`, at)
      return
    }
    if (!wire.has(key)) wire.set(key, [])
    wire.get(key).push([node, at])
  }
  const sendingFrom = performance.now()
  for (let i = 0; i < count; i++) {
    const stamps = await publish(cluster.nodes[i % cluster.nodes.length], i)
    sentAt[i] = stamps.at
    returnedAt[i] = stamps.returned
    keys[i] = stamps.key
    await sleep(PACE_MS)
  }
  const interval = (performance.now() - sendingFrom) / count
  let timer
  const timeUp = new Promise(resolve => { timer = setTimeout(resolve, SETTLE_TIMEOUT) })
  try {
    await Promise.race([everyArrival, timeUp, cluster.died])
  } finally {
    clearTimeout(timer)
    cluster.onArrival = () => {}
    cluster.onWire = () => {}
  }
  // stored: the member's event (visible through its API); decrypted: the validator's verdict
  // (for raw fan-out, and a member whose verdict went unstamped, the arrival, which is later)
  const latencies = []
  const decryptedLatencies = []
  for (let i = 0; i < count; i++) {
    if (got[i] !== expected) continue
    latencies.push(Math.max(...arrivals[i]) - sentAt[i])
    const members = cluster.nodes.filter(node => node.index !== i % cluster.nodes.length)
    decryptedLatencies.push(Math.max(...members.map(node => Math.min(proven.get(`${node.index}/${keys[i]}`) ?? Infinity, arrivalsByNode.get(`${node.index}/${i}`)))) - sentAt[i])
  }
  const delivered = got.reduce((a, b) => a + b, 0)
  if (log != null) {
    const quarter = Math.ceil(count / 4)
    const parts = [0, 1, 2, 3].map(q => latencies.slice(q * quarter, (q + 1) * quarter)).filter(part => part.length > 0)
    log(`  ${phase}: one message every ${interval.toFixed(1)} ms (each send returned, then ${PACE_MS} ms)`)
    log(`  ${phase}: p50 by quarter of the run ${parts.map(part => percentile(part, 50).toFixed(1)).join(', ')} ms`)
    // where the time goes: the sender's own call, then the spread over the members
    const took = returnedAt.map((returned, i) => returned - sentAt[i])
    const nth = k => arrivals.flatMap((list, i) => list.length === expected ? [[...list].sort((a, b) => a - b)[k - 1] - sentAt[i]] : [])
    const p = values => `${percentile(values, 50).toFixed(1)}/${percentile(values, 99).toFixed(1)}`
    if (latencies.length > 0) log(`  ${phase}: p50/p99 ms: send call ${p(took)}; had by the 1st member ${p(nth(1))}, the ${Math.ceil(expected / 2)}th ${p(nth(Math.ceil(expected / 2)))}, the ${expected}th ${p(nth(expected))}`)
    if (wire.size > 0) {
      // group messages: off the wire (signature checked) at each member, then decrypted and stored there
      const offWire = []
      const lastOffWire = []
      for (let i = 0; i < count; i++) {
        const list = wire.get(keys[i]) ?? []
        if (list.length === expected) lastOffWire.push(Math.max(...list.map(([, at]) => at)) - sentAt[i])
        for (const [, at] of list) offWire.push(at - sentAt[i])
      }
      // per member and message: off the wire → proven (decrypted) → stored (the event)
      const toProven = []
      const toStored = []
      for (let i = 0; i < count; i++) {
        for (const [node, at] of wire.get(keys[i]) ?? []) {
          const provenAt = proven.get(`${node}/${keys[i]}`)
          const storedAt = arrivalsByNode.get(`${node}/${i}`)
          if (provenAt != null && storedAt != null) {
            toProven.push(provenAt - at)
            toStored.push(storedAt - provenAt)
          }
        }
      }
      if (offWire.length > 0 && toProven.length > 0) log(`  ${phase}: p50/p99 ms: off the wire at a member ${p(offWire)}, at the ${expected}th ${lastOffWire.length > 0 ? p(lastOffWire) : '–'}; there decrypted ${p(toProven)} later, then stored ${p(toStored)} after that`)
    }
    for (const [node, set] of missing.entries()) if (set.size > 0) log(`  ${phase}: node ${node} missed ${set.size}: ${[...set].slice(0, 20).join(' ')}`)
  }
  return {
    p50: decryptedLatencies.length > 0 ? percentile(decryptedLatencies, 50) : NaN,
    p99: decryptedLatencies.length > 0 ? percentile(decryptedLatencies, 99) : NaN,
    storedP50: latencies.length > 0 ? percentile(latencies, 50) : NaN,
    storedP99: latencies.length > 0 ? percentile(latencies, 99) : NaN,
    ratio: delivered / (count * expected),
    complete,
    interval
  }
}

/** CPU time the whole machine has spent busy so far (every process), in ms; from /proc/stat. */
function machineBusyMs () {
  try {
    // "cpu  user nice system idle iowait irq softirq steal …" in clock ticks (USER_HZ, 100 on Linux)
    const ticks = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number)
    const idle = ticks[3] + ticks[4]
    return (ticks.reduce((a, b) => a + b, 0) - idle) * 10
  } catch {
    return NaN
  }
}

/** CPU profiles of each worker thread during a measured phase, when BENCH_GROUPS_PROFILE names a directory. */
function profiler (cluster) {
  const dir = process.env.BENCH_GROUPS_PROFILE
  if (dir == null || dir === '') return { start: async () => {}, stop: async () => [] }
  mkdirSync(dir, { recursive: true })
  return {
    start: async () => { await cluster.eachWorker('profileStart') },
    stop: async label => await cluster.eachWorker('profileStop', worker => ({ file: resolve(dir, `worker-${worker.index}-${label}.cpuprofile`) }))
  }
}

/** A measured phase between marks: what the process and each worker thread spent on it. */
async function accounted (cluster, log, label, work) {
  const profile = profiler(cluster)
  await profile.start()
  await cluster.eachWorker('mark')
  const cpuFrom = process.cpuUsage()
  const busyFrom = machineBusyMs()
  const from = performance.now()
  const result = await work()
  const cpu = process.cpuUsage(cpuFrom)
  const busyMs = machineBusyMs() - busyFrom
  const wallMs = performance.now() - from
  const usage = await cluster.eachWorker('usage')
  for (const file of await profile.stop(label)) log(`  profile: ${file}`)
  const cores = (cpu.user + cpu.system) / 1000 / wallMs
  // what the rest of the machine took meanwhile: another benchmark on these 2 cores shows here
  const others = Math.max(0, busyMs / wallMs - cores)
  const workerCores = usage.map(u => u.cpuMs / u.wallMs)
  const elus = usage.map(u => u.elu)
  log(`  ${label}: CPU ${cores.toFixed(2)} cores (worker threads ${workerCores.map(c => c.toFixed(2)).join(', ')}), other processes ${others.toFixed(2)}; event-loop utilisation per worker ${elus.map(e => e.toFixed(2)).join(', ')}`)
  log(`  ${label}: event-loop delay per worker (how late a due timer ran), p50/p99/max ms ${usage.map(u => `${u.delayP50.toFixed(0)}/${u.delayP99.toFixed(0)}/${u.delayMax.toFixed(0)}`).join(', ')}`)
  return { ...result, cores, workerCores, elus, others }
}

/** Raw gossipsub: the same nodes on a plain topic; 1 KiB payloads carrying the message number. */
async function rawFanout (cluster, log) {
  await cluster.all('subscribeRaw', { topic: RAW_TOPIC })
  await cluster.waitUntil(async () => {
    const views = await cluster.all('rawTopic', { topic: RAW_TOPIC })
    return views.every(v => v.subscribers >= Math.min(6, NODES - 1) && v.mesh >= MESH_LOW)
  }, 'raw topic mesh')
  const size = 4 + TEXT.length
  const publish = warm => async (sender, i) => await cluster.ask(sender, 'publishRaw', { topic: RAW_TOPIC, i, warm, size })
  // warm-up: JIT of the fan-out path; waits for every arrival
  await measure(cluster, 'raw-warm', WARM_UP, publish(true))
  const result = await accounted(cluster, log, 'raw', async () => await measure(cluster, 'raw', MESSAGES, publish(false), log))
  await cluster.all('unsubscribeRaw', { topic: RAW_TOPIC })
  return result
}

async function formGroup (cluster, log) {
  const [admin, ...others] = cluster.nodes
  const groupId = await cluster.ask(admin, 'groupCreate', { name: 'bench' })
  const state = async node => await cluster.ask(node, 'groupState', { groupId })
  for (const node of others) await cluster.ask(admin, 'groupInvite', { groupId, peerId: node.info.peerId })
  await Promise.all(others.map(async node => {
    await cluster.waitUntil(async () => (await state(node)).state === 'invited', 'invites')
    await cluster.ask(node, 'groupAccept', { groupId })
  }))
  log('waiting for every member to hold every version and sender key …')
  await cluster.waitUntil(async () => {
    const views = await Promise.all(cluster.nodes.map(state))
    return views.every(v => v.state === 'joined' && v.version === NODES)
  }, 'membership', 120_000)
  await cluster.waitUntil(async () => (await Promise.all(cluster.nodes.map(state))).every(v => v.senderKeys >= NODES - 1), 'sender keys', 120_000)
  return groupId
}

async function groupMessages (cluster, log, groupId) {
  const send = phase => async (sender, i) => await cluster.ask(sender, 'groupSend', { groupId, phase, i, filler: TEXT })
  // warm-up: JIT, first decryptions; waits for every arrival
  await measure(cluster, 'group-warm', WARM_UP, send('group-warm'))
  await cluster.all('traceGroup', { groupId, on: true, wire: TRACE })
  const result = await accounted(cluster, log, 'group', async () => await measure(cluster, 'group', MESSAGES, send('group'), log))
  await cluster.all('traceGroup', { groupId, on: false })
  return result
}

async function startNodes (cluster, log) {
  log(`starting ${NODES} nodes in ${WORKERS} worker threads …`)
  await cluster.startWorkers()
  const first = await cluster.startNode(0, [])
  const bootstrap = [first.info.addresses[0]]
  // each worker starts its nodes one after the other, the workers at once
  await Promise.all(cluster.workers.map(async worker => {
    for (let index = 1; index < NODES; index++) if (index % WORKERS === worker.index) await cluster.startNode(index, bootstrap)
  }))
  // every node dials a handful of others: gossipsub builds its mesh from what it is connected to
  await cluster.all('dial', node => ({
    addresses: [1, 2, 3, 4].map(k => cluster.nodes[(node.index + k * 3) % NODES]).filter(other => other !== node).map(other => other.info.addresses[0])
  }))
}

export async function run ({ log }) {
  const cluster = new Cluster()
  const onExit = () => { cluster.removeNow() }
  let signalled = false
  const onSignal = signal => {
    if (signalled) {
      // a second Ctrl-C: no more waiting for daemons to stop
      cluster.removeNow()
      process.exit(130)
    }
    signalled = true
    log(`${signal}: stopping the nodes …`)
    void cluster.stop().finally(() => {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      process.off('exit', onExit)
      process.kill(process.pid, signal)
    })
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.once('exit', onExit)
  try {
    await startNodes(cluster, log)
    log('forming the group …')
    const formStart = performance.now()
    const groupId = await formGroup(cluster, log)
    const formSeconds = (performance.now() - formStart) / 1000
    const idle = await accounted(cluster, log, 'idle', async () => { await sleep(IDLE_MS) })
    log('raw gossipsub fan-out …')
    const raw = await rawFanout(cluster, log)
    log('group messages …')
    const group = await groupMessages(cluster, log, groupId)
    const ratio = group.p50 / raw.p50
    const cores = cpus().length
    const perWorker = values => values.map((v, w) => `worker ${w} ${v.toFixed(2)}`).join(', ')
    return {
      rows: [
        { metric: 'group p50 (send → decrypted at all 19)', value: Number(group.p50.toFixed(1)), unit: 'ms', note: `${MESSAGES} × 1 KiB, round-robin senders, each send returned + ${PACE_MS} ms` },
        { metric: 'group p99', value: Number(group.p99.toFixed(1)), unit: 'ms' },
        { metric: 'group p50 (send → stored at all 19)', value: Number(group.storedP50.toFixed(1)), unit: 'ms', note: 'its event out, visible through the API' },
        { metric: 'group p99 (stored)', value: Number(group.storedP99.toFixed(1)), unit: 'ms' },
        { metric: 'group delivery ratio', value: Number(group.ratio.toFixed(4)), unit: '', note: `${group.complete}/${MESSAGES} reached every member` },
        { metric: 'raw gossipsub p50 (publish → received at all 19)', value: Number(raw.p50.toFixed(1)), unit: 'ms', note: 'same nodes, plain topic, no crypto, no storage' },
        { metric: 'raw gossipsub p99', value: Number(raw.p99.toFixed(1)), unit: 'ms' },
        { metric: 'raw delivery ratio', value: Number(raw.ratio.toFixed(4)), unit: '' },
        { metric: 'latency ratio p50 group / raw', value: Number(ratio.toFixed(2)), unit: '×' },
        { metric: 'group formation (19 invites, accepts, keys)', value: Number(formSeconds.toFixed(1)), unit: 's' },
        { metric: 'group phase: one send every', value: Number(group.interval.toFixed(1)), unit: 'ms', note: `a send returned, then ${PACE_MS} ms; raw phase: ${raw.interval.toFixed(1)} ms` },
        { metric: 'group phase: CPU of the process', value: Number(group.cores.toFixed(2)), unit: 'cores', note: `of ${cores}; worker threads: ${perWorker(group.workerCores)}` },
        { metric: 'group phase: CPU of other processes', value: Number(group.others.toFixed(2)), unit: 'cores', note: 'the rest of the machine meanwhile (/proc/stat)' },
        { metric: 'group phase: event-loop utilisation per worker', value: Number(mean(group.elus).toFixed(2)), unit: '', note: `mean of ${WORKERS}: ${perWorker(group.elus)}` },
        { metric: 'raw phase: CPU of the process', value: Number(raw.cores.toFixed(2)), unit: 'cores', note: `of ${cores}; worker threads: ${perWorker(raw.workerCores)}` },
        { metric: 'raw phase: CPU of other processes', value: Number(raw.others.toFixed(2)), unit: 'cores', note: 'the rest of the machine meanwhile (/proc/stat)' },
        { metric: 'raw phase: event-loop utilisation per worker', value: Number(mean(raw.elus).toFixed(2)), unit: '', note: `mean of ${WORKERS}: ${perWorker(raw.elus)}` },
        { metric: 'idle: CPU of the process', value: Number(idle.cores.toFixed(2)), unit: 'cores', note: `${IDLE_MS / 1000} s, nobody sending; event-loop utilisation per worker ${idle.elus.map(e => e.toFixed(2)).join(', ')}` }
      ],
      targets: [
        { target: 'every message reaches every member', value: `${(group.ratio * 100).toFixed(2)}%`, pass: group.ratio === 1 },
        { target: 'p50 ≤ 20 ms', value: `${group.p50.toFixed(1)} ms`, pass: group.p50 <= 20 },
        { target: 'p99 ≤ 100 ms', value: `${group.p99.toFixed(1)} ms`, pass: group.p99 <= 100 }
      ]
    }
  } finally {
    await cluster.stop()
    if (!signalled) {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      process.off('exit', onExit)
    }
  }
}
