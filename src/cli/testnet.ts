import type { Command } from 'commander'
import { resolve } from 'node:path'
import { FULL_CHECK_MAX_NODES, Testnet, type TestnetProgress } from '../testnet/index.js'
import { integerOption } from './options.js'
import { table } from './output.js'

export function registerTestnet (program: Command): void {
  program.command('testnet')
    .description('run a local network of N real daemons on 127.0.0.1 until Ctrl-C')
    .option('-n, --nodes <n>', 'number of daemons', integerOption(1, 100), 6)
    .option('--dir <dir>', 'directory for the nodes\' data directories and logs', 'octet-testnet')
    .option('--base-port <port>', 'first port; node i uses base+3i (TCP), +1 (WebSockets), +2 (API); 0 lets the OS pick', integerOption(0, 65000), 4800)
    .option('--log-level <level>', 'log level of the daemons', 'info')
    .action(async (opts: { nodes: number, dir: string, basePort: number, logLevel: string }) => {
      const dir = resolve(opts.dir)
      const testnet = new Testnet({ nodes: opts.nodes, dir, basePort: opts.basePort, logLevel: opts.logLevel })
      const abort = new AbortController()
      const interrupted = new Promise<void>(resolveInterrupt => {
        const onSignal = (): void => { abort.abort(); resolveInterrupt() }
        process.once('SIGINT', onSignal)
        process.once('SIGTERM', onSignal)
      })
      const err = (line: string): boolean => process.stderr.write(line + '\n')
      err(`starting ${opts.nodes} daemons in ${dir} …`)
      const nodes = await testnet.start(progressPrinter(err, opts.nodes), abort.signal)

      process.stdout.write('\n' + table(['NAME', 'PEER ID', 'API', 'DATA DIR'], nodes.map(n => [n.name, n.peerId, n.apiUrl, n.dataDir])) + '\n\n')
      process.stdout.write(`API tokens: <data dir>/api.token, e.g. curl -H "Authorization: Bearer $(cat ${nodes[0]?.dataDir ?? dir}/api.token)" ${nodes[0]?.apiUrl ?? ''}/v1/peers\n`)
      process.stdout.write(`CLI: octet --data-dir ${nodes[0]?.dataDir ?? dir} peers\nlogs: <data dir>/daemon.log — press Ctrl-C to stop every daemon\n`)

      const crashed = new Promise<string>(resolveCrash => {
        testnet.onUnexpectedExit((name, code) => { resolveCrash(`${name} exited unexpectedly (code ${code}); see ${dir}/${name}/daemon.log`) })
      })
      const outcome = await Promise.race([interrupted.then(() => undefined), crashed])
      err('stopping every daemon …')
      await testnet.stop()
      if (outcome != null) {
        err(`octet: ${outcome}`)
        process.exitCode = 1
        return
      }
      err('stopped')
    })
}

function progressPrinter (write: (line: string) => void, nodes: number): (p: TestnetProgress) => void {
  let lastDht = -1
  return progress => {
    switch (progress.stage) {
      case 'node-started':
        write(`  [${progress.started}/${progress.total}] ${progress.node.name} up: ${progress.node.peerId} (API ${progress.node.apiUrl})`)
        break
      case 'nodes-up':
        write(`  all daemons up in ${(progress.elapsedMs / 1000).toFixed(1)} s; now DHT lookups between them`)
        break
      case 'dht':
        if (progress.found !== lastDht) write(`  DHT: ${progress.found}/${progress.total} lookups succeed${progress.failedAttempts > 0 ? ` (${progress.failedAttempts} failed attempts retried)` : ''}`)
        lastDht = progress.found
        break
      case 'ready':
        write(`ready in ${(progress.elapsedMs / 1000).toFixed(1)} s: ${progress.allPairs
          ? 'every node finds every other node through the DHT'
          : `every node found ${progress.lookups / nodes} others and was found by ${progress.lookups / nodes} others through the DHT (${progress.lookups} lookups in rounds; every pair is checked up to ${FULL_CHECK_MAX_NODES} nodes)`}`)
        break
    }
  }
}
