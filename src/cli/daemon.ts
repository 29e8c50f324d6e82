import type { Command } from 'commander'
import { loadDaemonConfig, type RawSettings } from '../config.js'
import type { Daemon, ReadyMessage } from '../daemon.js'
import { createLogger } from '../logger.js'
import { collect } from './options.js'

export function registerDaemon (program: Command): void {
  program.command('daemon')
    .description('run an octet node: libp2p, the DHT and the HTTP API')
    .option('--listen <multiaddr>', 'listen address, repeatable (env OCTET_LISTEN, comma-separated) [default: /ip4/0.0.0.0/tcp/4710 and /ip4/0.0.0.0/tcp/4711/ws]', collect)
    .option('--api <host:port>', 'HTTP API address; port 0 picks a free one (env OCTET_API) [default: 127.0.0.1:4780]')
    .option('--metrics <host:port>', 'also serve GET /metrics (Prometheus) here, without the token; port 0 picks a free one (env OCTET_METRICS) [default: only on the API, with the token]')
    .option('--api-allowed-host <host>', 'a name the API may be reached by over TCP besides loopback names and its listen address (the Host header is checked), repeatable (env OCTET_API_ALLOWED_HOSTS, comma-separated)', collect)
    .option('--bootstrap <multiaddr>', 'peer to join the network through, with /p2p/<PeerId>, repeatable (env OCTET_BOOTSTRAP)', collect)
    .option('--no-mdns', 'do not discover peers on the local network (env OCTET_MDNS=false)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (env OCTET_LOG_LEVEL) [default: info]')
    .option('--libp2p-log <components>', "libp2p components whose debug lines are logged, comma-separated, as libp2p's DEBUG (e.g. kad-dht,yamux; * for all; -name silences one, errors too); without it only libp2p's errors are logged, at debug (env OCTET_LIBP2P_LOG)")
    .option('--mailbox-replicas <k>', 'mailbox peers that keep a sealed copy for an offline recipient (env OCTET_MAILBOX_REPLICAS) [default: 3]')
    .option('--reachability <mode>', 'auto (AutoNAT and NAT detection decide), public or private (env OCTET_REACHABILITY) [default: auto]')
    .option('--no-relay-service', 'never relay for other peers, even when this node is public (env OCTET_RELAY_SERVICE=false)')
    .option('--relay-max-reservations <n>', 'peers that may hold a reservation on this relay at once (env OCTET_RELAY_MAX_RESERVATIONS) [default: 64]')
    .option('--relay-max-circuits <n>', 'relayed connections through this node at once (env OCTET_RELAY_MAX_CIRCUITS) [default: 128]')
    .option('--relay-max-circuits-per-peer <n>', 'relayed connections one peer may have through this node at once (env OCTET_RELAY_MAX_CIRCUITS_PER_PEER) [default: 8]')
    .option('--relay-circuit-duration <seconds>', 'a relayed connection is closed after this long (env OCTET_RELAY_CIRCUIT_DURATION) [default: 1800]')
    .option('--relay-circuit-bytes <bytes>', 'a relayed connection is closed after this many bytes each way (env OCTET_RELAY_CIRCUIT_BYTES) [default: 4194304]')
    .option('--upnp', 'ask the router for a port mapping with UPnP / NAT-PMP (env OCTET_UPNP=true) [default: off]')
    .option('--webrtc', 'upgrade relayed connections to direct WebRTC ones through NATs (env OCTET_WEBRTC=true) [default: off]')
    .option('--no-webrtc', 'stay on relays, never upgrade to WebRTC (env OCTET_WEBRTC=false)')
    .option('--stun-port <port>', 'UDP port of the STUN responder this node runs while public, 0 for none (env OCTET_STUN_PORT) [default: 3478]')
    .action(async (_options, command: Command) => {
      const opts = command.optsWithGlobals<{
        dataDir?: string, listen?: string[], api?: string, apiAllowedHost?: string[], bootstrap?: string[], mdns: boolean, logLevel?: string, libp2pLog?: string, mailboxReplicas?: string,
        reachability?: string, relayService: boolean, relayMaxReservations?: string, relayMaxCircuits?: string, relayMaxCircuitsPerPeer?: string,
        relayCircuitDuration?: string, relayCircuitBytes?: string, upnp?: boolean, webrtc?: boolean, stunPort?: string, metrics?: string
      }>()
      // commander gives --no-x options a default of true: only an explicit flag counts as one
      const explicit = <T>(name: string, value: T): T | undefined => command.getOptionValueSource(name) === 'cli' ? value : undefined
      const flags: RawSettings = {
        dataDir: opts.dataDir,
        listen: opts.listen,
        api: opts.api,
        apiAllowedHosts: opts.apiAllowedHost,
        bootstrap: opts.bootstrap,
        mdns: explicit('mdns', opts.mdns),
        logLevel: opts.logLevel,
        libp2pLog: opts.libp2pLog,
        mailboxReplicas: opts.mailboxReplicas,
        reachability: opts.reachability,
        relayService: explicit('relayService', opts.relayService),
        relayMaxReservations: opts.relayMaxReservations,
        relayMaxCircuits: opts.relayMaxCircuits,
        relayMaxCircuitsPerPeer: opts.relayMaxCircuitsPerPeer,
        relayCircuitDuration: opts.relayCircuitDuration,
        relayCircuitBytes: opts.relayCircuitBytes,
        upnp: opts.upnp,
        webrtc: explicit('webrtc', opts.webrtc),
        stunPort: opts.stunPort,
        metrics: opts.metrics
      }
      const config = loadDaemonConfig(flags)
      const log = createLogger(config.logLevel)
      // the data directory holds message plaintext and keys: whatever this process creates
      // there (LevelDB's new tables and logs too) is its owner's alone
      process.umask(0o077)
      // a bug in one request or peer handler must not take the node down with it
      process.on('unhandledRejection', err => { log.error({ err }, 'unhandled rejection') })
      // listen for the stop signal before starting: a supervisor may send SIGTERM as soon as it
      // hears "ready" (or during the start); without a listener that would kill the process
      // outright, leaving daemon.lock and api.url behind
      const shutdown = shutdownSignal()
      let daemon: Daemon
      try {
        // loaded here: the other commands are small API clients and should start fast
        const { Daemon } = await import('../daemon.js')
        daemon = await Daemon.start(config, log)
      } catch (err) {
        shutdown.dispose()
        throw err
      }
      const info = daemon.info()
      log.info(info, 'octet daemon ready')
      // a supervising testnet learns that we are up (and where) over its IPC channel
      if (process.send != null) {
        const message: ReadyMessage = { type: 'ready', ...info }
        process.send(message)
      }
      await shutdown.signalled
      log.info('shutting down')
      await daemon.stop()
      log.info('stopped')
      // libp2p and level may leave timers behind that would keep the process alive
      process.exit(0)
    })
}

/**
 * Resolves `signalled` on the first SIGINT or SIGTERM (or when a supervising parent
 * disconnects). `dispose` removes the listeners, for a start that failed.
 */
function shutdownSignal (): { signalled: Promise<void>, dispose: () => void } {
  let done = (): void => {}
  const signalled = new Promise<void>(resolve => {
    done = (): void => {
      // a second signal during shutdown is ignored: stopping is already under way. The
      // ignoring listeners go on before ours come off, so no moment is left without one
      // (with none, a signal would kill the process outright)
      process.on('SIGINT', () => {})
      process.on('SIGTERM', () => {})
      dispose()
      resolve()
    }
  })
  const dispose = (): void => {
    process.off('SIGINT', done)
    process.off('SIGTERM', done)
    process.off('disconnect', done)
  }
  process.on('SIGINT', done)
  process.on('SIGTERM', done)
  // a 'disconnect' listener keeps the IPC channel (and so the process) alive: dispose removes it
  if (process.send != null) process.on('disconnect', done)
  return { signalled, dispose }
}
