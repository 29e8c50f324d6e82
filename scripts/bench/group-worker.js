// A worker thread of the "groups" benchmark: groups.js starts 2 of these, each hosting 10
// of the 20 daemons, and drives them over postMessage. Requests are
// { id, cmd, node, args } (node: the daemon's index in the benchmark, for the commands that
// address one), answered with { id, ok, result } or { id, ok: false, error }. Arrivals of
// measured messages are pushed as { type: 'arrivals', list: [[node, phase, i, at], …],
// wire: [[node, key, at, stage], …] }, `at` taken here, when the node had the message (not
// when the main thread hears of it); `wire` lists traced group messages (traceGroup), keyed
// "<sender>:<seq>", when they proved good (stage 'proven': decrypted, gossipsub told to
// forward) and, when asked, as they came off the wire (stage 'wire': handed to the validator).
import { writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { parentPort, threadId } from 'node:worker_threads'
import { multiaddr } from '@multiformats/multiaddr'
import { loadDaemonConfig } from '../../dist/config.js'
import { Daemon } from '../../dist/daemon.js'
import { decodeGroupMessage } from '../../dist/groups/codec.js'
import { groupTopic } from '../../dist/groups/index.js'
import { createLogger } from '../../dist/logger.js'

if (parentPort == null) throw new Error('group-worker.js is a worker thread started by groups.js')

/**
 * Milliseconds on CLOCK_MONOTONIC (process.hrtime): one clock for every thread, so the
 * main thread compares stamps taken in different workers.
 */
const now = () => Number(process.hrtime.bigint()) / 1e6

/** index → { daemon, unsubscribe, seen: Map<phase, Set<i>> } */
const nodes = new Map()
let pending = []
let pendingWire = []
let flushScheduled = false
const LOOP_DELAY_RESOLUTION = 10
let usageMark
let loopDelay
let profiler

function nodeAt (index) {
  const node = nodes.get(index)
  if (node == null) throw new Error(`worker ${threadId} hosts no node ${index}`)
  return node
}

/** Reports an arrival, once per node, phase and message; posted in a batch after the current work. */
function arrived (node, phase, i) {
  const at = now()
  let set = node.seen.get(phase)
  if (set == null) node.seen.set(phase, set = new Set())
  if (set.has(i)) return
  set.add(i)
  pending.push([node.index, phase, i, at])
  scheduleFlush()
}

function scheduleFlush () {
  if (flushScheduled) return
  flushScheduled = true
  setImmediate(() => {
    flushScheduled = false
    const list = pending
    const wire = pendingWire
    pending = []
    pendingWire = []
    parentPort.postMessage({ type: 'arrivals', list, wire })
  })
}

/** A measured group text is "<phase>:<i> <filler>". */
const MEASURED = /^([a-z-]+):(\d+) /

function usage () {
  return { elu: performance.eventLoopUtilization(), cpu: process.threadCpuUsage(), at: now() }
}

const commands = {
  async start (index, { dir, bootstrap }) {
    if (nodes.has(index)) throw new Error(`node ${index} is already running`)
    const config = loadDaemonConfig({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0', mdns: false, bootstrap, logLevel: 'silent' }, {})
    const daemon = await Daemon.start(config, createLogger('silent'))
    const node = { index, daemon, seen: new Map() }
    node.unsubscribe = daemon.messenger.events.subscribe(event => {
      if (event.type !== 'group.message') return
      const match = MEASURED.exec(event.data.message.text)
      if (match != null) arrived(node, match[1], Number(match[2]))
    })
    nodes.set(index, node)
    return commands.info(index)
  },
  info (index) {
    const { peerId, addresses } = nodeAt(index).daemon.info()
    return { peerId, addresses }
  },
  async dial (index, { addresses }) {
    const { daemon } = nodeAt(index)
    for (const address of addresses) await daemon.node.libp2p.dial(multiaddr(address)).catch(() => {})
    return daemon.node.libp2p.getPeers().length
  },
  counters (index) { return nodeAt(index).daemon.messenger.counters.snapshot() },

  // raw gossipsub: a plain topic, 1 KiB payloads: u32 message number, u8 phase (0 measured, 1 warm-up)
  subscribeRaw (index, { topic }) {
    const node = nodeAt(index)
    node.daemon.node.pubsub.subscribe(topic, async message => {
      const view = new DataView(message.data.buffer, message.data.byteOffset, message.data.byteLength)
      arrived(node, view.getUint8(4) === 1 ? 'raw-warm' : 'raw', view.getUint32(0))
      return 'accept'
    })
  },
  rawTopic (index, { topic }) {
    const { pubsub } = nodeAt(index).daemon.node
    return { subscribers: pubsub.subscribers(topic).length, mesh: pubsub.meshPeers(topic).length }
  },
  unsubscribeRaw (index, { topic }) { nodeAt(index).daemon.node.pubsub.unsubscribe(topic) },
  async publishRaw (index, { topic, i, warm, size }) {
    const { daemon } = nodeAt(index)
    const data = new Uint8Array(size)
    const view = new DataView(data.buffer)
    view.setUint32(0, i)
    view.setUint8(4, warm ? 1 : 0)
    const at = now()
    await daemon.node.pubsub.publish(topic, data)
    return { at, returned: now() }
  },

  // the group
  async groupCreate (index, { name }) { return (await nodeAt(index).daemon.groups.create(name)).id },
  async groupInvite (index, { groupId, peerId }) { await nodeAt(index).daemon.groups.invite(groupId, peerId) },
  async groupAccept (index, { groupId }) { await nodeAt(index).daemon.groups.accept(groupId) },
  async groupState (index, { groupId }) {
    const { daemon } = nodeAt(index)
    const view = await daemon.groups.get(groupId).catch(() => undefined)
    return { state: view?.state, version: view?.version, senderKeys: daemon.messenger.counters.get('group.sender-keys.received') }
  },
  async groupSend (index, { groupId, phase, i, filler }) {
    const { daemon } = nodeAt(index)
    const text = `${phase}:${i} ${filler}`
    const at = now()
    const { message } = await daemon.groups.send(groupId, text)
    return { at, returned: now(), key: `${message.sender}:${message.seq}` }
  },
  /**
   * Stamps the group's messages at this node when they proved good (decrypted: the
   * validator's verdict) and, with `wire`, also as they come off the wire (on: false stops).
   */
  traceGroup (index, { groupId, on, wire }) {
    const node = nodeAt(index)
    node.untrace?.()
    node.untrace = undefined
    if (!on) return
    const gossip = node.daemon.node.libp2p.services.pubsub
    const topic = groupTopic(groupId)
    const traced = new Map() // gossipsub message id → key
    // gossipsub's 'gossipsub:message': a new message, handed to our validator (which decrypts it)
    const listener = event => {
      const { msg, msgId } = event.detail
      if (msg.topic !== topic) return
      const at = now()
      const { sender, seq } = decodeGroupMessage(msg.data)
      const key = `${sender}:${seq}`
      traced.set(msgId, key)
      if (!wire) return
      pendingWire.push([index, key, at, 'wire'])
      scheduleFlush()
    }
    gossip.addEventListener('gossipsub:message', listener)
    // the validator's verdict, given once the message decrypted (before it is stored)
    const report = gossip.reportMessageValidationResult
    gossip.reportMessageValidationResult = function (msgId, ...rest) {
      const key = traced.get(msgId)
      if (key != null) {
        traced.delete(msgId)
        pendingWire.push([index, key, now(), 'proven'])
        scheduleFlush()
      }
      return report.call(this, msgId, ...rest)
    }
    node.untrace = () => {
      gossip.removeEventListener('gossipsub:message', listener)
      gossip.reportMessageValidationResult = report
    }
  },

  // what this thread spent between mark and usage: event-loop utilisation, CPU time of this
  // thread, and how late timers ran (event-loop delay: the wait of a task that became due)
  mark () {
    loopDelay?.disable()
    loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION })
    loopDelay.enable()
    usageMark = usage()
  },
  usage () {
    const end = usage()
    loopDelay.disable()
    const cpu = process.threadCpuUsage(usageMark.cpu)
    return {
      elu: performance.eventLoopUtilization(end.elu, usageMark.elu).utilization,
      cpuMs: (cpu.user + cpu.system) / 1000,
      wallMs: end.at - usageMark.at,
      // the histogram holds whole timer intervals: less the resolution, how late the timer ran
      delayP50: Math.max(0, loopDelay.percentile(50) / 1e6 - LOOP_DELAY_RESOLUTION),
      delayP99: Math.max(0, loopDelay.percentile(99) / 1e6 - LOOP_DELAY_RESOLUTION),
      delayMax: Math.max(0, loopDelay.max / 1e6 - LOOP_DELAY_RESOLUTION)
    }
  },

  // a CPU profile of this thread during a phase (BENCH_GROUPS_PROFILE)
  async profileStart () {
    profiler = new Session()
    profiler.connect()
    await profiler.post('Profiler.enable')
    await profiler.post('Profiler.setSamplingInterval', { interval: 500 })
    await profiler.post('Profiler.start')
  },
  async profileStop (index, { file }) {
    const { profile } = await profiler.post('Profiler.stop')
    profiler.disconnect()
    profiler = undefined
    await writeFile(file, JSON.stringify(profile))
    return file
  },

  /** Stops one node (a node that is not running is already stopped). */
  async stop (index) {
    const node = nodes.get(index)
    if (node == null) return
    nodes.delete(index)
    node.unsubscribe()
    node.untrace?.()
    await node.daemon.stop()
  }
}

parentPort.on('message', async ({ id, cmd, node, args }) => {
  try {
    const handler = commands[cmd]
    if (handler == null) throw new Error(`unknown command ${cmd}`)
    parentPort.postMessage({ id, ok: true, result: await handler(node, args ?? {}) })
  } catch (err) {
    parentPort.postMessage({ id, ok: false, error: err?.stack ?? String(err) })
  }
})

parentPort.postMessage({ type: 'up' })
