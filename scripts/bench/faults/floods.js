// Scenarios "mailbox flood" and "log flood" of the faults benchmark (issue #11).
// mailbox flood: twelve daemons in this process (default limits; more than 2k = 6, so that V is
//   not among the closest to most recipients); 70 throwaway PeerIds — real
//   libp2p nodes with fresh keys, all dialling from one /24 (127.0.1.x) — store 64 KiB junk
//   envelopes at one node V for 25.7 s (the time they took to fill its 256 MiB before),
//   half for random recipients, half for recipients V is the closest to. Then an honest peer
//   on another network stores 20 envelopes for its recipient at V, which fetches them; V hands
//   off; what the other nodes hold tells whether the junk spread.
// log flood: one daemon process logging to a file at the default level (info); one peer sends
//   80,000 envelopes that claim another sender, pipelined: the log's growth and the daemon's
//   memory growth.
import { randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { open, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { CLI, MB, memoryOf, tempDir } from '../lib.js'

const ATTACKERS = 70
const FLOOD_MS = 25_700
const JUNK_BYTES = 64 * 1024
const HONEST = 20
/** mailbox daemons: above 2k (6), or every node takes every store by the closeness rule */
const NODES = 12
const LOG_FLOOD = 80_000
const LOG_CHUNK = 500

async function throwaway (source, privateKey) {
  return await createLibp2p({
    privateKey: privateKey ?? await generateKeyPair('Ed25519'),
    addresses: { listen: [] },
    transports: [tcp(source == null ? {} : { dialOpts: { localAddress: source } })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()]
  })
}

async function mailboxFlood ({ log }) {
  const { loadDaemonConfig } = await import('../../../dist/config.js')
  const { Daemon } = await import('../../../dist/daemon.js')
  const { createLogger } = await import('../../../dist/logger.js')
  const { MAILBOX_PROTOCOL } = await import('../../../dist/mailbox/constants.js')
  const { sortByDistance } = await import('../../../dist/mailbox/distance.js')
  const { callFetch, callStore } = await import('../../../dist/mailbox/protocol-call.js')
  const { signProof } = await import('../../../dist/mailbox/proof.js')
  const { SealedEnvelope, MailboxStatus } = await import('../../../dist/wire/mailbox.pb.js')
  const work = await tempDir('octet-bench-floods-')
  const daemons = []
  const peers = []
  const start = async (name, bootstrap) => {
    const config = loadDaemonConfig({ dataDir: join(work.dir, name), listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0', mdns: false, bootstrap, logLevel: 'warn' }, {})
    const daemon = await Daemon.start(config, createLogger('warn', process.stderr), { mailbox: { handoffInterval: 60 * 60_000 } })
    daemons.push(daemon)
    return daemon
  }
  const junk = size => SealedEnvelope.encode({ version: 1, ephemeralKey: new Uint8Array(randomBytes(33)), ciphertext: new Uint8Array(randomBytes(size)) })
  const held = daemon => daemon.mailbox.stats()
  try {
    const v = await start('v', [])
    const vAddr = multiaddr(v.info().addresses.find(a => a.includes('/tcp/') && !a.includes('/ws')))
    const others = await Promise.all(Array.from({ length: NODES - 1 }, async (_, i) => await start(`n${i + 1}`, [vAddr.toString()])))
    const all = [v, ...others].map(d => d.info().peerId)
    while (v.node.dht.routingTableSize() < others.length) await new Promise(resolve => setTimeout(resolve, 100))
    const vId = v.info().peerId
    const rank = recipient => sortByDistance(recipient, all).indexOf(vId)
    const newKey = async () => await generateKeyPair('Ed25519')
    const near = []
    while (near.length < 10) {
      const key = await newKey()
      const id = peerIdFromPrivateKey(key).toString()
      if (rank(id) === 0) near.push({ key, id })
    }
    const store = async (peer, recipient, sealed) => {
      const stream = await peer.dialProtocol(vAddr, MAILBOX_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
      return await callStore(stream, recipient, sealed, { timeout: 10_000 })
    }

    log(`mailbox flood: ${ATTACKERS} throwaway PeerIds from 127.0.1.0/24 for ${FLOOD_MS / 1000} s …`)
    const attackers = await Promise.all(Array.from({ length: ATTACKERS }, async (_, i) => await throwaway(`127.0.1.${i + 1}`)))
    peers.push(...attackers)
    const othersBefore = others.reduce((sum, d) => sum + held(d).envelopes, 0)
    const deadline = performance.now() + FLOOD_MS
    const answers = {}
    let sent = 0
    await Promise.all(attackers.map(async (attacker, i) => {
      for (let j = 0; performance.now() < deadline; j++) {
        const recipient = j % 2 === 0 ? peerIdFromPrivateKey(await newKey()).toString() : near[(i + j) % near.length].id
        const answer = await store(attacker, recipient, junk(JUNK_BYTES)).catch(err => ({ status: `error ${err.code ?? err.name}` }))
        sent++
        answers[answer.status] = (answers[answer.status] ?? 0) + 1
      }
    }))
    const refusedBy = v.mailbox.counters.storesRefused
    const junkHeld = held(v)

    log('mailbox flood: an honest peer on 127.0.0.1 stores, its recipient fetches …')
    const honestRecipient = near[0]
    const honest = await throwaway()
    const recipientNode = await throwaway(undefined, honestRecipient.key)
    peers.push(honest, recipientNode)
    const honestIds = new Set()
    let honestAccepted = 0
    for (let i = 0; i < HONEST; i++) {
      const sealed = junk(1400)
      const answer = await store(honest, honestRecipient.id, sealed)
      if (answer.status === MailboxStatus.OK) {
        honestAccepted++
        honestIds.add(Buffer.from(await crypto.subtle.digest('SHA-256', sealed)).toString('hex'))
      }
    }
    const stream = await recipientNode.dialProtocol(vAddr, MAILBOX_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
    const fetched = await callFetch(stream, { recipient: honestRecipient.id, limit: 1000 }, async nonce => await signProof(honestRecipient.key, { mailbox: vId, recipient: honestRecipient.id, op: 'FETCH', nonce }))
    const delivered = fetched.envelopes.filter(e => honestIds.has(Buffer.from(e.id).toString('hex'))).length

    log('mailbox flood: handoff at V …')
    const vBefore = held(v).envelopes
    const report = await v.mailbox.handoff()
    const othersAfter = others.reduce((sum, d) => sum + held(d).envelopes, 0)
    const copiesBefore = vBefore + othersBefore
    const copiesAfter = held(v).envelopes + othersAfter
    return {
      accepted: answers[MailboxStatus.OK] ?? 0,
      delivered,
      lost: HONEST - delivered,
      note: `${sent} junk stores of ${JUNK_BYTES / 1024} KiB in ${FLOOD_MS / 1000} s from ${ATTACKERS} PeerIds of one /24: ` +
        `${answers[MailboxStatus.OK] ?? 0} accepted, refused: not among the closest ${refusedBy.NOT_CLOSEST}, prefix rate ${refusedBy.PREFIX_RATE_LIMITED}, ` +
        `prefix bytes ${refusedBy.PREFIX_QUOTA}, peer rate ${refusedBy.RATE_LIMITED}, quotas ${refusedBy.QUOTA_EXCEEDED}; ` +
        `V holds ${(junkHeld.bytes / MB).toFixed(1)} MB of junk in ${junkHeld.envelopes} envelopes (budget 256 MiB); ` +
        `honest peer (baseline, other /24): ${honestAccepted}/${HONEST} accepted, ${delivered} fetched by its recipient; ` +
        `handoff moved ${report.moved} (junk V took within the closeness slack, to the 3 closest); copies held by all ${NODES} nodes ${copiesBefore} → ${copiesAfter} ` +
        `(spread: ${copiesAfter - copiesBefore} new copies; at the ${NODES - 1} others ${othersBefore} → ${othersAfter})`
    }
  } finally {
    for (const peer of peers) await peer.stop().catch(() => {})
    for (const daemon of daemons.reverse()) await daemon.stop().catch(() => {})
    await work.remove()
  }
}

async function logFlood ({ log }) {
  const { DM_PROTOCOL } = await import('../../../dist/messaging/constants.js')
  const { Kind, decodeDmFrame, encodeDmFrame } = await import('../../../dist/wire/codec.js')
  const { newMessageId } = await import('../../../dist/wire/ids.js')
  const { WIRE_VERSION } = await import('../../../dist/wire/limits.js')
  const work = await tempDir('octet-bench-logflood-')
  const logPath = join(work.dir, 'daemon.log')
  const logFile = await open(logPath, 'w')
  const child = spawn(process.execPath, [CLI, 'daemon', '--data-dir', join(work.dir, 'd'), '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--no-mdns'], {
    stdio: ['ignore', logFile.fd, logFile.fd, 'ipc']
  })
  let flooder
  try {
    const ready = await new Promise((resolve, reject) => {
      child.on('message', m => { if (m?.type === 'ready') resolve(m) })
      child.once('exit', code => { reject(new Error(`daemon exited with ${code}`)) })
    })
    const rssBefore = memoryOf(child.pid).rss
    const logBefore = (await stat(logPath)).size
    flooder = await throwaway()
    const someoneElse = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const addr = multiaddr(ready.addresses.find(a => a.includes('/tcp/') && !a.includes('/ws')))
    const stream = await flooder.dialProtocol(addr, DM_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
    const lp = lpStream(stream, { maxDataLength: 1024 * 1024 })
    log(`log flood: ${LOG_FLOOD} envelopes claiming another sender …`)
    const started = performance.now()
    let acked = 0
    let accepted = 0
    let rssPeak = rssBefore
    for (let sent = 0; sent < LOG_FLOOD; sent += LOG_CHUNK) {
      await lp.writeV(Array.from({ length: LOG_CHUNK }, () => encodeDmFrame({ envelope: {
        version: WIRE_VERSION, id: newMessageId(), recipient: ready.peerId, sender: someoneElse, timestamp: Date.now(), seq: 1, kind: Kind.TEXT, cipherType: 1, ciphertext: new Uint8Array(64)
      } })))
      for (let i = 0; i < LOG_CHUNK; i++) {
        const ack = decodeDmFrame(await lp.read({ signal: AbortSignal.timeout(30_000) })).ack
        if (ack != null) {
          acked++
          if (ack.status === 'ACCEPTED') accepted++
        }
      }
      rssPeak = Math.max(rssPeak, memoryOf(child.pid).rss)
    }
    const seconds = (performance.now() - started) / 1000
    await stream.close()
    const rssAfter = memoryOf(child.pid).rss
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    await exited
    const logAfter = (await stat(logPath)).size
    return {
      accepted,
      delivered: 0,
      lost: 0,
      logGrowthKB: (logAfter - logBefore) / 1024,
      rssGrowthMB: (rssAfter - rssBefore) / MB,
      note: `${acked} envelopes refused and acked in ${seconds.toFixed(1)} s (${Math.round(acked / seconds)}/s); log ${logBefore} → ${logAfter} B over the flood and the stop ` +
        `(was one ~320 B line each: 25.5 MB for 80,000); RSS ${(rssBefore / MB).toFixed(1)} → peak ${(rssPeak / MB).toFixed(1)} → ${(rssAfter / MB).toFixed(1)} MB`
    }
  } finally {
    await flooder?.stop().catch(() => {})
    if (child.exitCode == null && child.signalCode == null) {
      const exited = once(child, 'exit')
      child.kill('SIGKILL')
      await exited
    }
    await logFile.close()
    await work.remove()
  }
}

export const scenarios = [
  { name: 'mailbox flood', description: `${ATTACKERS} throwaway PeerIds of one /24 store 64 KiB junk at one node for ${FLOOD_MS / 1000} s; then an honest peer stores ${HONEST} (accepted = junk taken)`, run: mailboxFlood },
  { name: 'log flood', description: `${LOG_FLOOD} envelopes claiming another sender, from one peer (accepted = envelopes taken)`, run: logFlood }
]
