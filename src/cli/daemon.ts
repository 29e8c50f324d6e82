import type { Command } from 'commander'
import { loadDaemonConfig, type RawSettings } from '../config.js'
import { Daemon, type ReadyMessage } from '../daemon.js'
import { createLogger } from '../logger.js'
import { collect } from './options.js'

export function registerDaemon (program: Command): void {
  program.command('daemon')
    .description('run an octet node: libp2p, the DHT and the HTTP API')
    .option('--listen <multiaddr>', 'listen address, repeatable (env OCTET_LISTEN, comma-separated) [default: /ip4/0.0.0.0/tcp/4710 and /ip4/0.0.0.0/tcp/4711/ws]', collect)
    .option('--api <host:port>', 'HTTP API address; port 0 picks a free one (env OCTET_API) [default: 127.0.0.1:4780]')
    .option('--bootstrap <multiaddr>', 'peer to join the network through, with /p2p/<PeerId>, repeatable (env OCTET_BOOTSTRAP)', collect)
    .option('--no-mdns', 'do not discover peers on the local network (env OCTET_MDNS=false)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (env OCTET_LOG_LEVEL) [default: info]')
    .action(async (_options, command: Command) => {
      const opts = command.optsWithGlobals<{ dataDir?: string, listen?: string[], api?: string, bootstrap?: string[], mdns: boolean, logLevel?: string }>()
      const flags: RawSettings = {
        dataDir: opts.dataDir,
        listen: opts.listen,
        api: opts.api,
        bootstrap: opts.bootstrap,
        // commander sets mdns=true by default for --no-mdns; only an explicit --no-mdns is a flag
        mdns: command.getOptionValueSource('mdns') === 'cli' ? opts.mdns : undefined,
        logLevel: opts.logLevel
      }
      const config = loadDaemonConfig(flags)
      const log = createLogger(config.logLevel)
      // a bug in one request or peer handler must not take the node down with it
      process.on('unhandledRejection', err => { log.error({ err }, 'unhandled rejection') })
      const daemon = await Daemon.start(config, log)
      const info = daemon.info()
      log.info(info, 'octet daemon ready')
      // a supervising testnet learns that we are up (and where) over its IPC channel
      if (process.send != null) {
        const message: ReadyMessage = { type: 'ready', ...info }
        process.send(message)
      }
      await waitForShutdownSignal()
      log.info('shutting down')
      await daemon.stop()
      log.info('stopped')
      // libp2p and level may leave timers behind that would keep the process alive
      process.exit(0)
    })
}

/** Resolves on the first SIGINT or SIGTERM (or when a supervising parent disconnects). */
function waitForShutdownSignal (): Promise<void> {
  return new Promise(resolve => {
    const done = (): void => {
      process.off('SIGINT', done)
      process.off('SIGTERM', done)
      // a second signal during shutdown is ignored: stopping is already under way
      process.on('SIGINT', () => {})
      process.on('SIGTERM', () => {})
      resolve()
    }
    process.once('SIGINT', done)
    process.once('SIGTERM', done)
    if (process.send != null) process.once('disconnect', done)
  })
}
