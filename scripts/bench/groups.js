// Issue #5 benchmark: one group of 20 in-process nodes (real TCP on 127.0.0.1), 200 texts
// sent round-robin by its members: publish → decrypted and stored at every other member
// (p50, p99, delivery ratio), beside raw gossipsub fan-out of the same sizes on the same
// nodes in the same run (a plain topic, no encryption, no storage).
// Run alone: `npm run bench -- groups`.
import { multiaddr } from '@multiformats/multiaddr'
import { loadDaemonConfig } from '../../dist/config.js'
import { Daemon } from '../../dist/daemon.js'
import { createLogger } from '../../dist/logger.js'
import { tempDir } from './lib.js'

export const name = 'groups'
export const description = 'a group of 20 local nodes: publish → decrypted at every member, vs raw gossipsub fan-out'

const NODES = 20
const MESSAGES = 200
/** Sends are paced (a chat, not a flood): latency is measured, not queueing. */
const PACE_MS = 25
const TEXT = 'x'.repeat(1024)
const RAW_TOPIC = '/octet-bench/raw-fanout'
const SETTLE_TIMEOUT = 30_000

function percentile (values, p) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))]
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

async function waitUntil (check, what, timeoutMs = SETTLE_TIMEOUT) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await sleep(50)
  }
  throw new Error(`timed out waiting for ${what}`)
}

async function startDaemon (dataDir, bootstrap) {
  const config = loadDaemonConfig({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0', mdns: false, bootstrap, logLevel: 'silent' }, {})
  return await Daemon.start(config, createLogger('silent'))
}

/**
 * Sends MESSAGES round-robin with `publish(sender, i)` and resolves once every other node
 * reported message i through `onArrival(node, i)` (or the time is up): per message the
 * time from the publish call to the last arrival, and how many arrivals there were.
 */
async function measure (nodes, attach, publish) {
  const started = new Map()
  const arrivals = new Map()
  const finished = new Map()
  const expected = nodes.length - 1
  const detach = nodes.map((node, index) => attach(node, i => {
    const count = (arrivals.get(i) ?? 0) + 1
    arrivals.set(i, count)
    if (count === expected && started.has(i)) finished.set(i, performance.now() - started.get(i))
  }, index))
  for (let i = 0; i < MESSAGES; i++) {
    const sender = nodes[i % nodes.length]
    started.set(i, performance.now())
    await publish(sender, i)
    await sleep(PACE_MS)
  }
  await waitUntil(async () => finished.size === MESSAGES, 'every arrival').catch(() => {})
  for (const stop of detach) stop()
  const delivered = [...arrivals.values()].reduce((a, b) => a + b, 0)
  const latencies = [...finished.values()]
  return {
    p50: latencies.length > 0 ? percentile(latencies, 50) : NaN,
    p99: latencies.length > 0 ? percentile(latencies, 99) : NaN,
    ratio: delivered / (MESSAGES * expected),
    complete: finished.size
  }
}

/** Raw gossipsub: the same nodes on a plain topic; 1 KiB payloads carrying the message number. */
async function rawFanout (nodes) {
  const listeners = new Map()
  for (const node of nodes) {
    node.node.pubsub.subscribe(RAW_TOPIC, async message => {
      const i = new DataView(message.data.buffer, message.data.byteOffset).getUint32(0)
      listeners.get(node)?.(i)
      return 'accept'
    })
  }
  await waitUntil(async () => nodes.every(node => node.node.pubsub.subscribers(RAW_TOPIC).length >= Math.min(6, nodes.length - 1)), 'raw topic mesh')
  await sleep(1500)
  const result = await measure(nodes, (node, onArrival) => {
    listeners.set(node, onArrival)
    return () => listeners.delete(node)
  }, async (sender, i) => {
    const data = new Uint8Array(4 + TEXT.length)
    new DataView(data.buffer).setUint32(0, i)
    await sender.node.pubsub.publish(RAW_TOPIC, data)
  })
  for (const node of nodes) node.node.pubsub.unsubscribe(RAW_TOPIC)
  return result
}

async function formGroup (nodes, log) {
  const [admin, ...others] = nodes
  const group = await admin.groups.create('bench')
  for (const node of others) await admin.groups.invite(group.id, node.node.peerId)
  await Promise.all(others.map(async node => {
    await waitUntil(async () => (await node.groups.get(group.id).catch(() => undefined))?.state === 'invited', 'invites')
    await node.groups.accept(group.id)
  }))
  log('waiting for every member to hold every version and sender key …')
  await waitUntil(async () => {
    const views = await Promise.all(nodes.map(async node => await node.groups.get(group.id)))
    return views.every(v => v.state === 'joined' && v.version === nodes.length)
  }, 'membership', 120_000)
  await waitUntil(async () => nodes.every(node => node.messenger.counters.get('group.sender-keys.received') >= nodes.length - 1), 'sender keys', 120_000)
  return group.id
}

async function groupMessages (nodes, groupId) {
  // warm-up: JIT, first decryptions
  for (const node of nodes.slice(0, 5)) await node.groups.send(groupId, 'warm-up')
  await sleep(1000)
  const textIndex = text => Number(text.slice(0, text.indexOf(' ')))
  return await measure(nodes, (node, onArrival) => node.messenger.events.subscribe(event => {
    if (event.type !== 'group.message') return
    const index = textIndex(event.data.message.text)
    if (Number.isInteger(index)) onArrival(index)
  }), async (sender, i) => { await sender.groups.send(groupId, `${i} ${TEXT}`) })
}

export async function run ({ log }) {
  const dirs = []
  const nodes = []
  try {
    log(`starting ${NODES} nodes …`)
    const first = await tempDir('octet-bench-group-')
    dirs.push(first)
    nodes.push(await startDaemon(first.dir, []))
    const bootstrap = [nodes[0].info().addresses[0]]
    for (let i = 1; i < NODES; i++) {
      const dir = await tempDir('octet-bench-group-')
      dirs.push(dir)
      nodes.push(await startDaemon(dir.dir, bootstrap))
    }
    // every node dials a handful of others: gossipsub builds its mesh (D = 6) from what it is connected to
    for (const [i, node] of nodes.entries()) {
      for (let k = 1; k <= 4; k++) {
        const other = nodes[(i + k * 3) % NODES]
        if (other !== node) await node.node.libp2p.dial(multiaddr(other.info().addresses[0])).catch(() => {})
      }
    }
    log('forming the group …')
    const formStart = performance.now()
    const groupId = await formGroup(nodes, log)
    const formSeconds = (performance.now() - formStart) / 1000
    log('raw gossipsub fan-out …')
    const raw = await rawFanout(nodes)
    log('group messages …')
    const group = await groupMessages(nodes, groupId)
    const ratio = group.p50 / raw.p50
    return {
      rows: [
        { metric: 'group p50 (send → decrypted at all 19)', value: Number(group.p50.toFixed(1)), unit: 'ms', note: `${MESSAGES} × 1 KiB, round-robin senders, one every ${PACE_MS} ms` },
        { metric: 'group p99', value: Number(group.p99.toFixed(1)), unit: 'ms' },
        { metric: 'group delivery ratio', value: Number(group.ratio.toFixed(4)), unit: '', note: `${group.complete}/${MESSAGES} reached every member` },
        { metric: 'raw gossipsub p50 (publish → received at all 19)', value: Number(raw.p50.toFixed(1)), unit: 'ms', note: 'same nodes, plain topic, no crypto, no storage' },
        { metric: 'raw gossipsub p99', value: Number(raw.p99.toFixed(1)), unit: 'ms' },
        { metric: 'raw delivery ratio', value: Number(raw.ratio.toFixed(4)), unit: '' },
        { metric: 'latency ratio p50 group / raw', value: Number(ratio.toFixed(2)), unit: '×' },
        { metric: 'group formation (19 invites, accepts, keys)', value: Number(formSeconds.toFixed(1)), unit: 's' }
      ],
      targets: [
        { target: 'every message reaches every member', value: `${(group.ratio * 100).toFixed(2)}%`, pass: group.ratio === 1 },
        { target: 'p50 ≤ 20 ms', value: `${group.p50.toFixed(1)} ms`, pass: group.p50 <= 20 },
        { target: 'p99 ≤ 100 ms', value: `${group.p99.toFixed(1)} ms`, pass: group.p99 <= 100 }
      ]
    }
  } finally {
    for (const node of nodes.reverse()) await node.stop().catch(() => {})
    for (const dir of dirs) await dir.remove()
  }
}

