import type { Command } from 'commander'
import { ok, type Answer } from '../client/index.js'
import { clientFor } from './context.js'
import { printJson, table } from './output.js'

type Identity = Answer<'getIdentity'>

/** `octet id`, `octet peers`, `octet status`: what the local daemon knows about itself. */
export function registerNodeInfo (program: Command): void {
  program.command('id')
    .description("print this node's PeerId and the addresses peers can reach it on")
    .option('--json', 'print JSON')
    .action(async (_o, command: Command) => {
      const { client, json } = await clientFor(command)
      const id = ok(await client.GET('/v1/identity'))
      if (json) return printJson(id)
      process.stdout.write(`${id.peerId}\n${id.announceAddresses.map(a => `  ${a}`).join('\n')}\n`)
      process.stdout.write(`reachability: ${reachabilityLine(id)}\n`)
    })

  program.command('peers')
    .description('list the peers this node is connected to')
    .option('--json', 'print JSON')
    .action(async (_o, command: Command) => {
      const { client, json } = await clientFor(command)
      const { peers } = ok(await client.GET('/v1/peers'))
      if (json) return printJson(peers)
      if (peers.length === 0) {
        process.stdout.write('no peers connected yet (bootstrap with `octet daemon --bootstrap <multiaddr>`, or enable mDNS)\n')
        return
      }
      process.stdout.write(table(['PEER', 'DIRECTION', 'ADDRESS'], peers.map(p => [p.peerId, p.direction, p.addresses[0] ?? ''])) + '\n')
    })

  program.command('status')
    .description('show whether the daemon runs, its version, uptime, PeerId, peers and how it (re)connects')
    .option('--json', 'print JSON')
    .action(async (_o, command: Command) => {
      const { client, baseUrl, json } = await clientFor(command)
      const [health, id, net] = await Promise.all([
        client.GET('/v1/health').then(ok),
        client.GET('/v1/identity').then(ok),
        client.GET('/v1/status').then(ok)
      ])
      const status = {
        running: true,
        health: health.status,
        ...(health.reasons != null ? { reasons: health.reasons } : {}),
        version: health.version,
        uptimeSeconds: health.uptimeSeconds,
        peerId: id.peerId,
        api: baseUrl,
        peers: net.peers,
        minPeers: net.minPeers,
        connectivity: net.connectivity,
        routingTableSize: net.routingTableSize,
        bootstrap: net.bootstrap,
        reconnect: net.reconnect,
        reachability: id.reachability,
        publicAddresses: id.publicAddresses,
        observedAddresses: id.observedAddresses,
        relayAddresses: id.relayAddresses,
        relayService: id.relayService
      }
      if (json) return printJson(status)
      const r = net.reconnect
      const now = Date.now()
      const rows: Array<[string, string]> = [
        ['running', String(status.running)],
        ['health', health.status === 'ok' ? 'ok' : `degraded: ${(health.reasons ?? []).map(r => `${r.code} since ${ago(now, r.since)}: ${r.message}`).join('; ')}`],
        ['version', status.version],
        ['uptimeSeconds', String(status.uptimeSeconds)],
        ['peerId', status.peerId],
        ['api', status.api],
        ['peers', String(status.peers)],
        ['connectivity', `${net.connectivity} (wants ${net.minPeers} peers)`],
        ['routingTable', `${net.routingTableSize} peers`],
        ['bootstrap', net.bootstrap.length === 0 ? 'none' : net.bootstrap.join('\n' + ' '.repeat(14))],
        ['lastAttempt', r.lastAttemptAt == null ? 'none yet' : `${ago(now, r.lastAttemptAt)}: ${r.lastOutcome ?? '?'} (${r.attempts} attempts, ${r.consecutiveFailures} failed in a row)`],
        ['lastError', r.lastError ?? 'none'],
        ['nextAttempt', r.nextAttemptAt == null ? 'none (enough peers)' : `in ${Math.max(0, Math.round((r.nextAttemptAt - now) / 1000))} s`],
        ['reachability', reachabilityLine(id)],
        ['relayService', relayServiceLine(id.relayService)]
      ]
      process.stdout.write(rows.map(([k, v]) => `${k.padEnd(14)}${v}`).join('\n') + '\n')
    })
}

function ago (now: number, at: number): string {
  return `${Math.max(0, Math.round((now - at) / 1000))} s ago`
}

/** "private (behind a NAT), via 2 relays", "public: /ip4/…" — what a person needs to know about being reachable. */
function reachabilityLine (id: Identity): string {
  switch (id.reachability) {
    case 'public':
      return `public${id.reachabilitySource === 'declared' ? ' (declared)' : ''}${id.publicAddresses.length > 0 ? `: ${id.publicAddresses.join(', ')}` : ''}`
    case 'private':
      return `private (behind a NAT${id.reachabilitySource === 'declared' ? ', declared' : ''}), ` +
        (id.relayAddresses.length > 0 ? `reachable via ${id.relayAddresses.length} relay address(es): ${id.relayAddresses.join(', ')}` : 'no relay reservation yet')
    default:
      return 'unknown (no peer has confirmed a public address or seen a NAT yet)'
  }
}

function relayServiceLine (relay: Identity['relayService']): string {
  if (relay.disabled === true) return 'off (--no-relay-service)'
  if (!relay.offered) return 'not offered (only public nodes relay)'
  return `offered: ${relay.reservations ?? 0} reservation(s), ${relay.circuits ?? 0} circuit(s) open`
}
