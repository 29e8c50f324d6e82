// Hole-punching experiment: does a relayed connection between two NATed octet-like nodes upgrade
// to a direct one, per transport? Runs in the namespaces of scripts/nat/topology.sh.
//
// Driver (as root, from the repo root, Node 22):
//   node_modules/.bin/node scripts/nat/holepunch-experiment.mjs [--transports tcp,ws,quic,webrtc] [--tries 5] [--timeout 10000]
// transports: tcp | ws | quic | quic-confirmed (observed addresses force-verified) | webrtc (DCUtR,
// STUN on the relay host) | webrtc-explicit (no dcutr; A dials /p2p-circuit/webrtc) | webrtc-nostun.
// Needs root, iptables (apt-get install -y iptables), and for quic/webrtc the packages
// `npm install --no-save @libp2p/webrtc@6.0.33 @chainsafe/libp2p-quic@2.1.1`.
// builds a fresh topology for every try (scripts/nat/topology.sh up), starts
//   hp-pub: relay (circuitRelayServer, applyDefaultLimit false) + a STUN responder on UDP 3478
//   hp-b:   node B, reserves a slot on the relay (listen '/p2p-circuit', and '/webrtc' for webrtc)
//   hp-a:   node A, dials B's circuit address, measures, prints one JSON line per try
// and removes every namespace afterwards (also on error or Ctrl-C). Logs of each try go to
// $HP_OUT (default /tmp/hp-results/<transport>-<try>/).
//
// Environment: HP_NAT_A / HP_NAT_B = eim|symmetric (see topology.sh), HP_RELAY_LIMITS=default
// (relay keeps its default 2 min / 128 KiB circuit limits), HP_WEBRTC_GUARD=1 (A and B abort a /webrtc
// connection that cannot open a stream within 3 s), HP_BASELINE=1 (A first measures the
// echo over its own direct connection to the relay: the cost of the plain transport), HP_OUT
// (log folder).
//
// A node role is `holepunch-experiment.mjs role <relay|a|b> <transport> <dir>`.
import { spawn, execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync, existsSync, createWriteStream } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'

const HERE = dirname(fileURLToPath(import.meta.url))
const PUB = '203.0.113.10'
const STUN_PORT = 3478
const ECHO = '/hp/echo/1.0.0'
const ROUNDS = 20
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

async function waitFor (fn, timeoutMs, stepMs = 25) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const v = await fn()
    if (v) return v
    await sleep(stepMs)
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------
// node roles
// ---------------------------------------------------------------------------------------------

async function makeNode (role, transport) {
  const { createLibp2p } = await import('libp2p')
  const { noise } = await import('@chainsafe/libp2p-noise')
  const { yamux } = await import('@chainsafe/libp2p-yamux')
  const { identify } = await import('@libp2p/identify')
  const { tcp } = await import('@libp2p/tcp')
  const { webSockets } = await import('@libp2p/websockets')
  const { circuitRelayServer, circuitRelayTransport } = await import('@libp2p/circuit-relay-v2')
  const { dcutr } = await import('@libp2p/dcutr')

  const transports = []
  const listen = []
  if (transport === 'tcp' || transport.startsWith('webrtc')) {
    transports.push(tcp())
    listen.push(role === 'relay' ? `/ip4/${PUB}/tcp/4001` : '/ip4/0.0.0.0/tcp/0')
  }
  if (transport === 'ws') {
    transports.push(webSockets())
    listen.push(role === 'relay' ? `/ip4/${PUB}/tcp/4002/ws` : '/ip4/0.0.0.0/tcp/0/ws')
  }
  if (transport.startsWith('quic')) {
    // check-imports: not a dependency @chainsafe/libp2p-quic (installed --no-save for this experiment, see the top)
    const { quic } = await import('@chainsafe/libp2p-quic')
    transports.push(quic())
    listen.push(role === 'relay' ? `/ip4/${PUB}/udp/4001/quic-v1` : '/ip4/0.0.0.0/udp/0/quic-v1')
  }
  if (transport.startsWith('webrtc') && role !== 'relay') {
    const { webRTC } = await import('@libp2p/webrtc')
    const iceServers = transport === 'webrtc-nostun' ? [] : [{ urls: `stun:${PUB}:${STUN_PORT}` }]
    transports.push(webRTC({ rtcConfiguration: { iceServers } }))
    listen.push('/webrtc')
  }
  const services = { identify: identify() }
  if (role === 'relay') {
    // HP_RELAY_LIMITS=default: the relay's default limits (2 min, 128 KiB per circuit) instead
    services.relay = process.env.HP_RELAY_LIMITS === 'default'
      ? circuitRelayServer()
      : circuitRelayServer({ reservations: { applyDefaultLimit: false } })
  } else {
    transports.push(circuitRelayTransport())
    listen.push('/p2p-circuit')
    if (transport !== 'webrtc-explicit') services.dcutr = dcutr()
    const { ping } = await import('@libp2p/ping')
    services.ping = ping()
  }
  const node = await createLibp2p({
    // a public node announces its listen addresses: libp2p 3 does not list a public address as its
    // own until AutoNAT has verified it
    addresses: role === 'relay' ? { listen, announce: listen } : { listen },
    transports,
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    services
  })
  if (process.env.HP_WEBRTC_GUARD === '1' && role !== 'relay') guardWebRTC(node)
  await node.handle(ECHO, async (stream) => {
    const { lpStream } = await import('@libp2p/utils')
    const lp = lpStream(stream)
    try {
      for (;;) await lp.write(await lp.read())
    } catch {} finally {
      await stream.close().catch(() => {})
    }
  }, { runOnLimitedConnection: true })
  return node
}

/**
 * The guard octet needs with @libp2p/webrtc 6: when ICE fails, the transport can still report a
 * /webrtc connection as open whose data channels never open, and streams opened "to the peer" are
 * then put on it and time out. Probe every new /webrtc connection with one ping stream on that
 * very connection; if it does not open within 3 s, abort the connection so the relayed one is used.
 */
function guardWebRTC (node) {
  node.addEventListener('connection:open', ({ detail: conn }) => {
    if (!conn.remoteAddr.toString().includes('/webrtc')) return
    conn.newStream('/ipfs/ping/1.0.0', { signal: AbortSignal.timeout(3000) })
      .then(stream => stream.close().catch(() => {}))
      .catch(err => {
        console.error(`guard: aborting dead WebRTC connection ${conn.remoteAddr} (${err.name})`)
        conn.abort(new Error('WebRTC connection carried no stream within 3 s'))
      })
  })
}

function relayAddrFor (transport) {
  const file = JSON.parse(readFileSync(join(process.env.HP_DIR, 'relay.json'), 'utf8'))
  const want = transport === 'ws' ? '/ws' : transport.startsWith('quic') ? '/quic-v1' : '/tcp/4001'
  return file.addrs.find(a => a.includes(want))
}

async function echoRtts (conn, label) {
  const { lpStream } = await import('@libp2p/utils')
  const stream = await conn.newStream(ECHO, { runOnLimitedConnection: true, signal: AbortSignal.timeout(5000) })
  const lp = lpStream(stream)
  const payload = new Uint8Array(1024).fill(7)
  const rtts = []
  for (let i = 0; i < ROUNDS; i++) {
    const t = performance.now()
    await lp.write(payload, { signal: AbortSignal.timeout(5000) })
    const back = await lp.read({ signal: AbortSignal.timeout(5000) })
    if (back.byteLength !== 1024) throw new Error(`${label}: echo returned ${back.byteLength} bytes`)
    rtts.push(performance.now() - t)
  }
  // cost: 500 more round trips, CPU time of this process (all threads) and wall time
  const c0 = process.cpuUsage(); const w0 = performance.now()
  for (let i = 0; i < 500; i++) { await lp.write(payload); await lp.read() }
  const c1 = process.cpuUsage(c0); const wall = performance.now() - w0
  await stream.close().catch(() => {})
  rtts.sort((a, b) => a - b)
  return { p50: +rtts[Math.floor(rtts.length / 2)].toFixed(2), max: +rtts[rtts.length - 1].toFixed(2), roundTripsPerSec: Math.round(500 / wall * 1000), cpuMsPer500: Math.round((c1.user + c1.system) / 1000) }
}

/**
 * quic-confirmed: treat the addresses the relay observed for us as verified, as AutoNAT never can
 * behind a filtering NAT, so that DCUtR has a public address to send. (Internal API, test only.)
 */
async function confirmObserved (node, transport) {
  if (transport !== 'quic-confirmed') return
  const am = node.components.addressManager
  const seen = await waitFor(() => { const o = am.getObservedAddrs(); return o.length > 0 ? o : undefined }, 5000)
  for (const ma of seen ?? []) am.confirmObservedAddr(ma)
  console.error('confirmed observed addresses', (seen ?? []).map(String), '-> getMultiaddrs', node.getMultiaddrs().map(String))
}

async function roleRelay (transport) {
  const node = await makeNode('relay', transport)
  if (transport.startsWith('webrtc')) {
    const { startStunServer } = await import('./stun-server.mjs')
    await startStunServer({ host: PUB, port: STUN_PORT, onRequest: r => console.error(`stun binding from ${r.address}:${r.port}`) })
  }
  writeFileSync(join(process.env.HP_DIR, 'relay.json'), JSON.stringify({ addrs: node.getMultiaddrs().map(String) }))
  console.error('relay up', node.getMultiaddrs().map(String))
}

async function roleB (transport) {
  const { multiaddr } = await import('@multiformats/multiaddr')
  const node = await makeNode('b', transport)
  await node.dial(multiaddr(relayAddrFor(transport)))
  await confirmObserved(node, transport)
  const needWebrtc = transport.startsWith('webrtc')
  const addrs = await waitFor(() => {
    const a = node.getMultiaddrs().map(String).filter(s => s.includes('/p2p-circuit'))
    if (a.length === 0) return undefined
    if (needWebrtc && !a.some(s => s.includes('/webrtc'))) return undefined
    return a
  }, 15000)
  if (addrs == null) throw new Error('B got no reservation')
  node.addEventListener('connection:open', (e) => console.error(`B connection:open ${e.detail.remoteAddr} limited=${e.detail.limits != null}`))
  writeFileSync(join(process.env.HP_DIR, 'b.json'), JSON.stringify({ peerId: node.peerId.toString(), addrs, all: node.getMultiaddrs().map(String) }))
  console.error('B addrs', node.getMultiaddrs().map(String))
}

async function roleA (transport) {
  const { multiaddr } = await import('@multiformats/multiaddr')
  const timeout = Number(process.env.HP_TIMEOUT ?? 15000)
  const node = await makeNode('a', transport)
  const bFile = join(process.env.HP_DIR, 'b.json')
  if (await waitFor(() => existsSync(bFile), 20000) == null) throw new Error('B never wrote its addresses')
  const b = JSON.parse(readFileSync(bFile, 'utf8'))
  if (transport === 'quic-confirmed') {
    await node.dial(multiaddr(relayAddrFor(transport)))
    await confirmObserved(node, transport)
  }
  const circuit = b.addrs.find(a => !a.includes('/webrtc'))
  const result = { transport, relayed: false, direct: false }
  const cpu0 = process.cpuUsage()
  let t0 = performance.now()
  node.addEventListener('connection:open', (e) => console.error(`A connection:open ${e.detail.remoteAddr} limited=${e.detail.limits != null} +${(performance.now() - t0).toFixed(0)}ms`))

  if (process.env.HP_BASELINE === '1') {
    // cost baseline: the same echo over A's plain (direct, through A's NAT) connection to the relay
    const relayConn = await node.dial(multiaddr(relayAddrFor(transport)))
    result.rttDirectToRelay = await echoRtts(relayConn, 'baseline')
    result.directToRelayAddr = relayConn.remoteAddr.toString()
  }

  t0 = performance.now()
  const relayedConn = await node.dial(multiaddr(circuit), { signal: AbortSignal.timeout(10000) })
  result.relayed = true
  result.relayedDialMs = +(performance.now() - t0).toFixed(0)
  result.relayedLimited = relayedConn.limits != null
  try {
    result.rttRelayed = await echoRtts(relayedConn, 'relayed')
  } catch (err) {
    // DCUtR closes the relayed connection as soon as its upgrade succeeds
    result.rttRelayedError = `${err.name}: ${err.message}`.slice(0, 200)
  }

  // a private-to-private WebRTC connection keeps the address it was dialled on
  // (…/p2p-circuit/webrtc/p2p/B) as its remoteAddr, though its data flows peer to peer over ICE
  const isDirect = c => c.limits == null && (!c.remoteAddr.toString().includes('/p2p-circuit') || c.remoteAddr.toString().includes('/webrtc'))
  const sinceT0 = c => +(c.timeline.open - (performance.timeOrigin + t0)).toFixed(0)
  let direct
  if (transport !== 'webrtc-explicit') {
    // DCUtR runs by itself once the relayed connection is open (B initiates it)
    direct = await waitFor(() => node.getConnections(relayedConn.remotePeer).find(isDirect), timeout, 20)
    if (direct != null) { result.timeToDirectMs = sinceT0(direct); result.upgradedBy = 'dcutr' }
  }
  if (direct == null && transport.startsWith('webrtc')) {
    const addr = b.addrs.find(a => a.includes('/webrtc'))
    result.dialed = addr
    const t1 = performance.now()
    try {
      direct = await node.dial(multiaddr(addr), { signal: AbortSignal.timeout(timeout) })
      result.timeToDirectMs = sinceT0(direct)
      result.webrtcDialMs = +(performance.now() - t1).toFixed(0)
      result.upgradedBy = 'explicit dial of /p2p-circuit/webrtc'
    } catch (err) {
      result.error = `${err.name}: ${err.message}`.slice(0, 300)
    }
  }
  if (process.env.HP_WEBRTC_GUARD === '1') await sleep(3500)
  // what the rest of the application sees: a stream to the peer by PeerId, on whichever
  // connection libp2p picks (a WebRTC connection whose ICE failed must not swallow it)
  {
    const { lpStream } = await import('@libp2p/utils')
    const t2 = performance.now()
    try {
      const stream = await node.dialProtocol(relayedConn.remotePeer, ECHO, { runOnLimitedConnection: true, signal: AbortSignal.timeout(5000) })
      const lp = lpStream(stream)
      await lp.write(new Uint8Array(1024), { signal: AbortSignal.timeout(5000) })
      await lp.read({ signal: AbortSignal.timeout(5000) })
      await stream.close().catch(() => {})
      result.streamByPeerId = `ok in ${(performance.now() - t2).toFixed(0)} ms`
    } catch (err) {
      result.streamByPeerId = `FAILED after ${(performance.now() - t2).toFixed(0)} ms: ${err.name}`
    }
    result.connectionsBeforeProof = node.getConnections(relayedConn.remotePeer).map(c => `${c.remoteAddr} status=${c.status}`)
  }
  if (direct != null && isDirect(direct)) {
    result.direct = true
    result.directAddr = direct.remoteAddr.toString()
    // proof that it is direct: the driver kills the relay process, then the echo must still work
    writeFileSync(join(process.env.HP_DIR, 'direct.ready'), '')
    await waitFor(() => existsSync(join(process.env.HP_DIR, 'relay.killed')), 5000)
    await sleep(200)
    result.relayKilledBeforeDirectRtt = existsSync(join(process.env.HP_DIR, 'relay.killed'))
    try {
      result.rttDirect = await echoRtts(direct, 'direct')
    } catch (err) {
      result.direct = false
      result.error = `direct connection failed once the relay was gone: ${err.message}`
    }
  }
  result.connections = node.getConnections(relayedConn.remotePeer).map(c => `${c.remoteAddr} limited=${c.limits != null} status=${c.status}`)
  // idle cost with the connections open (A's process, all threads), over 3 s
  const i0 = process.cpuUsage(); await sleep(3000); const i1 = process.cpuUsage(i0)
  result.idleCpuPctA = +((i1.user + i1.system) / 30000).toFixed(2)
  const cpu = process.cpuUsage(cpu0)
  result.cpuMsA = Math.round((cpu.user + cpu.system) / 1000)
  result.rssMiBA = Math.round(process.memoryUsage().rss / 2 ** 20)
  console.log(JSON.stringify(result))
  await Promise.race([node.stop(), sleep(2000)])
  process.exit(0)
}

// ---------------------------------------------------------------------------------------------
// driver
// ---------------------------------------------------------------------------------------------

function arg (name, dflt) {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : dflt
}

async function driver () {
  const transports = arg('transports', 'tcp,ws,quic,webrtc').split(',')
  const tries = Number(arg('tries', '5'))
  const timeout = arg('timeout', '15000')
  const outRoot = process.env.HP_OUT ?? '/tmp/hp-results'
  const topo = join(HERE, 'topology.sh')
  const children = []
  const cleanup = () => {
    for (const c of children) { try { process.kill(c.pid, 'SIGKILL') } catch {} }
    try { execFileSync(topo, ['down']) } catch {}
  }
  process.on('exit', cleanup)
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130))

  const start = (ns, role, transport, dir, debug) => {
    const env = { ...process.env, HP_DIR: dir, HP_TIMEOUT: timeout }
    if (debug) env.DEBUG = debug
    const c = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', join(HERE, 'testnet-public.mjs'), fileURLToPath(import.meta.url), 'role', role, transport], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    c.stderr.pipe(createWriteStream(join(dir, `${role}.log`)))
    children.push(c)
    return c
  }

  const rows = []
  for (const transport of transports) {
    for (let n = 1; n <= tries; n++) {
      const dir = join(outRoot, `${transport}-${n}`)
      mkdirSync(dir, { recursive: true })
      for (const f of ['relay.json', 'b.json', 'direct.ready', 'relay.killed']) { try { execFileSync('rm', ['-f', join(dir, f)]) } catch {} }
      execFileSync(topo, ['up'])
      const debug = transport.startsWith('webrtc')
        ? 'libp2p:webrtc*,libp2p:dcutr*,libp2p:circuit-relay*'
        : 'libp2p:dcutr*,libp2p:identify*,libp2p:circuit-relay:transport*,libp2p:autonat*'
      start('hp-pub', 'relay', transport, dir)
      await waitFor(() => existsSync(join(dir, 'relay.json')), 15000)
      start('hp-b', 'b', transport, dir, debug)
      const a = start('hp-a', 'a', transport, dir, debug)
      const relayProc = children[0]
      waitFor(() => existsSync(join(dir, 'direct.ready')), Number(timeout) + 30000).then(ok => {
        if (!ok) return
        try { process.kill(relayProc.pid, 'SIGKILL') } catch {}
        // `ip netns exec` execs node, so the pid is the relay's; give the kernel a moment
        setTimeout(() => writeFileSync(join(dir, 'relay.killed'), ''), 100)
      })
      let out = ''
      a.stdout.on('data', d => { out += d })
      const code = await Promise.race([new Promise(resolve => a.on('exit', resolve)), sleep(Number(timeout) + 40000).then(() => 'timeout')])
      const line = out.trim().split('\n').filter(Boolean).pop()
      let row
      try { row = JSON.parse(line) } catch { row = { transport, relayed: false, direct: false, error: `A exited ${code}, see ${dir}/a.log` } }
      row.try = n
      row.nat = `${process.env.HP_NAT_A ?? 'eim'}/${process.env.HP_NAT_B ?? 'eim'}`
      row.relayLimits = process.env.HP_RELAY_LIMITS === 'default' ? 'default' : 'none'
      if (process.env.HP_BASELINE === '1') row.baseline = true
      if (process.env.HP_WEBRTC_GUARD === '1') row.guard = true
      rows.push(row)
      writeFileSync(join(dir, 'result.json'), JSON.stringify(row, null, 2))
      console.log(JSON.stringify(row))
      for (const c of children.splice(0)) { try { process.kill(c.pid, 'SIGKILL') } catch {} }
      await sleep(300)
      execFileSync(topo, ['down'])
    }
  }
  writeFileSync(join(outRoot, 'all.json'), JSON.stringify(rows, null, 2))
  // summary
  console.log('\ntransport | tries | relayed | direct | time to direct (median ms) | RTT relayed p50 | RTT direct p50')
  for (const t of transports) {
    const r = rows.filter(x => x.transport === t)
    const med = a => { const s = a.filter(x => x != null).sort((p, q) => p - q); return s.length ? s[Math.floor(s.length / 2)] : '-' }
    console.log(`${t} | ${r.length} | ${r.filter(x => x.relayed).length} | ${r.filter(x => x.direct).length} | ${med(r.filter(x => x.direct).map(x => x.timeToDirectMs))} | ${med(r.map(x => x.rttRelayed?.p50))} | ${med(r.map(x => x.rttDirect?.p50))}`)
  }
}

if (process.argv[2] === 'role') {
  const [,,, role, transport] = process.argv
  const fn = { relay: roleRelay, a: roleA, b: roleB }[role]
  fn(transport).catch(err => { console.error(`${role} failed:`, err); console.log(JSON.stringify({ transport, error: `${role}: ${err.message}` })); process.exit(1) })
} else {
  await driver()
  process.exit(0) // pending relay-kill watchers would otherwise keep the loop alive
}
