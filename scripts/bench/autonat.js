// Issue #10 benchmark: how soon AutoNAT tells a node where it stands. An internet of public
// hosts on public address ranges, each in a /8 of its own (AutoNAT v2 wants confirmations from
// four /8s), and homes behind masquerading routers (the project's Topology with spreadPublic).
// Nobody declares its reachability: per node, the time from its daemon's "ready" until
// /v1/identity says `public` (confirmed by AutoNAT, relay service offered) or, at home,
// `private` with a relay address. Baseline in the same run: the same topology with the public
// hosts declared (`--reachability public`), where the public side needs no AutoNAT at all.
// Needs root, iproute2 and iptables; skipped otherwise.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CLI, netnsTopologyOrSkip, stats, tempDir } from './lib.js'

export const name = 'autonat'
export const description = 'time from start to a reachability verdict, AutoNAT v2 on public addresses vs public hosts declared'

const PUBLIC_HOSTS = 6
const HOMES = 2
const VERDICT_TIMEOUT = 120_000
const POLL_INTERVAL = 100

export async function run ({ log = () => {} } = {}) {
  const { Topology, skipped } = await netnsTopologyOrSkip(log)
  if (skipped != null) return skipped
  const { socketFetch } = await import('../../dist/api-socket.js')
  const rows = []
  const add = (metric, value, unit, note = '') => { rows.push({ metric, value: Math.round(value * 10) / 10, unit, note }) }
  const summary = (label, times) => {
    const s = stats(times.map(t => t / 1000))
    add(`${label}: median`, s.median, 's', `of ${s.n}`)
    add(`${label}: max`, s.max, 's')
  }

  for (const declared of [false, true]) {
    const mode = declared ? 'public hosts declared (baseline)' : 'AutoNAT decides'
    log(`${mode} …`)
    const { publicTimes, homeTimes } = await measure({ Topology, socketFetch, declared, log })
    summary(`${mode}: public node, ready → public and relaying`, publicTimes)
    summary(`${mode}: node at home, ready → private with a relay address`, homeTimes)
  }
  return { rows }
}

async function measure ({ Topology, socketFetch, declared, log }) {
  const topology = await Topology.create({ publicHosts: PUBLIC_HOSTS, homes: Array.from({ length: HOMES }, () => ({ hosts: 1 })) }, { spreadPublic: true })
  const work = await tempDir('octet-bench-autonat-')
  const daemons = []
  try {
    const start = async (host, bootstrap, extra) => {
      const dataDir = join(work.dir, host.name)
      const child = topology.spawn(host, process.execPath, [
        CLI, 'daemon', '--data-dir', dataDir, '--listen', `/ip4/${host.address}/tcp/4001`, '--api', '127.0.0.1:0',
        '--no-mdns', '--no-webrtc', '--log-level', 'warn', ...bootstrap.flatMap(b => ['--bootstrap', b]), ...extra
      ], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] })
      const ready = await new Promise((resolveReady, reject) => {
        child.on('message', m => { if (m?.type === 'ready') resolveReady(m) })
        child.once('exit', code => { reject(new Error(`daemon on ${host.name} exited with ${code}`)) })
      })
      const readyAt = performance.now()
      const token = (await readFile(join(dataDir, 'api.token'), 'utf8')).trim()
      const api = socketFetch(ready.apiSocket)
      const daemon = { host, ready, readyAt, identity: async () => await (await api('/v1/identity', { headers: { authorization: `Bearer ${token}` } })).json() }
      daemons.push(daemon)
      return daemon
    }
    const publicArgs = declared ? ['--reachability', 'public'] : []
    const first = await start(topology.publicHosts[0], [], publicArgs)
    const bootstrap = [`/ip4/${first.host.address}/tcp/4001/p2p/${first.ready.peerId}`]
    const publicNodes = [first, ...await Promise.all(topology.publicHosts.slice(1).map(async h => await start(h, bootstrap, publicArgs)))]
    const homeNodes = await Promise.all(topology.homes.map(async home => await start(home.hosts[0], bootstrap, [])))
    const verdict = async (daemon, done) => {
      const deadline = daemon.readyAt + VERDICT_TIMEOUT
      while (performance.now() < deadline) {
        if (done(await daemon.identity())) return performance.now() - daemon.readyAt
        await new Promise(resolvePoll => setTimeout(resolvePoll, POLL_INTERVAL))
      }
      throw new Error(`${daemon.host.name}: no verdict within ${VERDICT_TIMEOUT / 1000} s`)
    }
    const publicTimes = await Promise.all(publicNodes.map(async d => await verdict(d, id => id.reachability === 'public' && id.relayService.offered)))
    const homeTimes = await Promise.all(homeNodes.map(async d => await verdict(d, id => id.reachability === 'private' && id.relayAddresses.length > 0)))
    log(`  public ${publicTimes.map(t => Math.round(t)).join(', ')} ms; home ${homeTimes.map(t => Math.round(t)).join(', ')} ms`)
    return { publicTimes, homeTimes }
  } finally {
    await topology.destroy()
    await work.remove()
  }
}
