import type { Command } from 'commander'
import { resolve } from 'node:path'
import { OctetError, isOctetError } from '../errors.js'
import { Testnet } from '../testnet/index.js'
import { startTestnetUi } from '../testnet/ui.js'
import { FULL_CHECK_MAX_NODES } from '../testnet/readiness.js'
import type { TestnetNode, TestnetProgress } from '../testnet/types.js'
import { integerOption } from './options.js'
import { table } from './output.js'

export function registerTestnet (program: Command): void {
  program.command('testnet')
    .description('run a local network of N real daemons on 127.0.0.1 (or, with --nat, in network namespaces behind NAT routers) until Ctrl-C')
    .option('-n, --nodes <n>', 'number of daemons', integerOption(1, 100), 6)
    .option('--dir <dir>', 'directory for the nodes\' data directories and logs', 'octet-testnet')
    .option('--base-port <port>', 'first port; node i uses base+3i (TCP), +1 (WebSockets), +2 (API); 0 lets the OS pick', integerOption(0, 65000), 4800)
    .option('--log-level <level>', 'log level of the daemons', 'info')
    .option('--ui [host:port]', 'serve a page that draws the testnet live as a graph (default 127.0.0.1, the port below the base port)')
    .option('--nat', 'each daemon in a network namespace: node-0 and a quarter of the others public, every other one behind a NAT router of its own (Linux, root, iproute2 and iptables)')
    .action(async (opts: { nodes: number, dir: string, basePort: number, logLevel: string, nat?: boolean, ui?: string | boolean }) => {
      const dir = resolve(opts.dir)
      const nat = opts.nat === true
      const testnet = new Testnet({ nodes: opts.nodes, dir, basePort: opts.basePort, logLevel: opts.logLevel, nat })
      const abort = new AbortController()
      const interrupted = new Promise<void>(resolveInterrupt => {
        const onSignal = (): void => { abort.abort(); resolveInterrupt() }
        process.once('SIGINT', onSignal)
        process.once('SIGTERM', onSignal)
      })
      const err = (line: string): boolean => process.stderr.write(line + '\n')
      if (nat) checkNat(testnet)
      err(nat
        ? `starting ${opts.nodes} daemons in ${dir}, ${Testnet.publicShare(opts.nodes)} public and ${opts.nodes - Testnet.publicShare(opts.nodes)} behind NAT routers …`
        : `starting ${opts.nodes} daemons in ${dir} …`)
      const nodes = await testnet.start(progressPrinter(err, opts.nodes, nat), abort.signal)

      const first = nodes[0]
      if (nat) {
        process.stdout.write('\n' + table(['NAME', 'PEER ID', 'REACH', 'ADDRESS', 'SEEN AS', 'DATA DIR'],
          nodes.map(n => [n.name, n.peerId, n.placement?.reach === 'nat' ? 'NAT' : 'public', n.placement?.address ?? '', n.placement?.seenAs ?? '', n.dataDir])) + '\n\n')
        process.stdout.write(`API: each daemon runs in a network namespace of its own; reach it through <data dir>/api.sock, e.g. curl --unix-socket ${first?.apiSocket ?? ''} -H "Authorization: Bearer $(cat ${first?.dataDir ?? dir}/api.token)" http://octet/v1/peers\n`)
        process.stdout.write(`shell in a node's namespace: ip netns exec ${first?.placement?.namespace ?? ''} sh\n`)
      } else {
        process.stdout.write('\n' + table(['NAME', 'PEER ID', 'API', 'DATA DIR'], nodes.map(n => [n.name, n.peerId, n.apiUrl, n.dataDir])) + '\n\n')
        process.stdout.write(`API tokens: <data dir>/api.token, e.g. curl -H "Authorization: Bearer $(cat ${first?.dataDir ?? dir}/api.token)" ${first?.apiUrl ?? ''}/v1/peers\n`)
      }
      process.stdout.write(`CLI: octet --data-dir ${first?.dataDir ?? dir} peers\nlogs: <data dir>/daemon.log — press Ctrl-C to stop every daemon\n`)
      let ui: Awaited<ReturnType<typeof startTestnetUi>> | undefined
      try {
        if (opts.ui != null && opts.ui !== false) ui = await startTestnetUi(testnet, uiAddress(opts.ui, opts.basePort))
      } catch (error) {
        await testnet.stop()
        throw error
      }
      if (ui != null) process.stdout.write(`testnet page: ${ui.url}\n`)

      const crashed = new Promise<string>(resolveCrash => {
        testnet.onUnexpectedExit((name, code) => { resolveCrash(`${name} exited unexpectedly (code ${code}); see ${dir}/${name}/daemon.log`) })
      })
      const outcome = await Promise.race([interrupted.then(() => undefined), crashed])
      err(nat ? 'stopping every daemon and removing the namespaces …' : 'stopping every daemon …')
      await ui?.close()
      await testnet.stop()
      if (outcome != null) {
        err(`octet: ${outcome}`)
        process.exitCode = 1
        return
      }
      err('stopped')
    })
}

function progressPrinter (write: (line: string) => void, nodes: number, nat = false): (p: TestnetProgress) => void {
  let lastDht = -1
  return progress => {
    switch (progress.stage) {
      case 'node-started':
        write(`  [${progress.started}/${progress.total}] ${progress.node.name} up: ${progress.node.peerId} (${where(progress.node)})`)
        break
      case 'nodes-up':
        write(`  all daemons up in ${(progress.elapsedMs / 1000).toFixed(1)} s; now ${nat ? 'waiting for their connections and relay reservations' : 'DHT lookups between them'}`)
        break
      case 'dht':
        if (progress.found !== lastDht) write(`  DHT: ${progress.found}/${progress.total} lookups succeed${progress.failedAttempts > 0 ? ` (${progress.failedAttempts} failed attempts retried)` : ''}`)
        lastDht = progress.found
        break
      case 'topology':
        write(`  network namespaces: ${progress.publicHosts} public hosts, ${progress.homes} homes behind NAT routers (built in ${progress.elapsedMs} ms)`)
        break
      case 'bootstrap':
        if (progress.connected === progress.total) write(`  ${progress.connected}/${progress.total} nodes connected to node-0`)
        break
      case 'ready':
        write(`ready in ${(progress.elapsedMs / 1000).toFixed(1)} s: ${nat
          ? 'every node is up and connected to node-0 (the bootstrap), and every node behind a NAT holds a relay reservation'
          : progress.allPairs
            ? 'every node finds every other node through the DHT'
            : `every node found ${progress.lookups / nodes} others and was found by ${progress.lookups / nodes} others through the DHT (${progress.lookups} lookups in rounds; every pair is checked up to ${FULL_CHECK_MAX_NODES} nodes)`}`)
        break
    }
  }
}

/** Says in one line what --nat needs and lacks here, before anything starts. */
function checkNat (testnet: Testnet): void {
  try {
    testnet.checkNat()
  } catch (error) {
    if (isOctetError(error, 'NETNS_UNSUPPORTED')) throw new OctetError('NETNS_UNSUPPORTED', `--nat builds network namespaces and NAT rules: ${error.message}`, { cause: error })
    throw error
  }
}

/** Where a node is, for the progress lines: its API URL, or in a NAT testnet its place in the topology. */
function where (node: TestnetNode): string {
  const placement = node.placement
  if (placement == null) return `API ${node.apiUrl}`
  return placement.reach === 'public' ? `public ${placement.address}` : `NAT ${placement.address}, seen as ${placement.seenAs}`
}

/** Where `--ui` serves: the address given, else 127.0.0.1 on the port below the base port (0: any). */
function uiAddress (given: string | true, basePort: number): { host: string, port: number } {
  if (given === true) return { host: '127.0.0.1', port: basePort > 0 ? basePort - 1 : 0 }
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]+)):(\d{1,5})$/.exec(given)
  if (match == null) throw new OctetError('INVALID_ADDRESS', `--ui ${given}: give host:port, e.g. 127.0.0.1:4799`)
  return { host: match[1] ?? match[2] ?? '127.0.0.1', port: Number(match[3]) }
}
