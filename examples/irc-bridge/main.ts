/**
 * octet ↔ IRC bridge: relays one octet group to one IRC channel and back, through the
 * daemon's public API only (`octet/client`). See README.md beside this file.
 *
 *   node dist/examples/irc-bridge/main.js --data-dir ~/.octet --group <id> \
 *     --irc 127.0.0.1:6667 --channel '#octet' --nick octet-bridge
 *
 * SIGTERM or SIGINT: stops after the event being relayed, with the cursor and the lines
 * still waiting for the daemon on disk; a new start resumes from there.
 */
import { readFile } from 'node:fs/promises'
import { Backoff } from './backoff.js'
import { ConfigError, parseConfig, USAGE } from './config.js'
import { ircTextBytes } from './format.js'
import { IrcClient } from './irc.js'
import { createLog, errorText } from './log.js'
import { OctetSide } from './octet.js'
import { Relay } from './relay.js'
import { BridgeState } from './state.js'

const log = createLog()

async function main (): Promise<void> {
  const config = parseConfig(process.argv.slice(2))
  const state = await BridgeState.load(config.stateFile, config.groupId)
  const octet = new OctetSide({
    transport: config.transport,
    apiName: config.apiName,
    token: async () => (await readFile(config.tokenFile, 'utf8')).trim(),
    groupId: config.groupId
  })
  const stopping = new AbortController()
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => { stopping.abort() })

  // a wrong --group or token is said at once; an unreachable daemon is waited for
  const backoff = new Backoff()
  for (;;) {
    try {
      const group = await octet.checkGroup(stopping.signal)
      log.info('octet: group found', { group: config.groupId, name: group.name, state: group.state, api: config.apiName })
      // still invited, or left: its messages do not come, and IRC lines are refused (and dropped)
      if (group.state !== 'joined') log.warn('octet: the node is not a member of the group: nothing is relayed until it is', { state: group.state })
      break
    } catch (err) {
      if ((err as { status?: number }).status === 404 || (err as { status?: number }).status === 401) throw err
      if (stopping.signal.aborted) return
      log.warn('octet: daemon not reachable yet', { api: config.apiName, error: errorText(err) })
      await backoff.wait(stopping.signal)
    }
  }

  log.info('bridge starting', {
    group: config.groupId,
    irc: `${config.ircHost}:${config.ircPort}`,
    channel: config.channel,
    nick: config.nick,
    state: config.stateFile,
    resumeAfter: state.lastEventId ?? 'now',
    pending: state.pending.length
  })
  let relay: Relay | undefined
  const irc = new IrcClient({
    host: config.ircHost,
    port: config.ircPort,
    nick: config.nick,
    channel: config.channel,
    log,
    onMessage: (nick, text) => {
      relay?.fromIrc(nick, text).catch(err => { log.error('could not queue an IRC line', { error: errorText(err) }) })
    }
  })
  relay = new Relay({ octet, irc, state, groupId: config.groupId, ircLineBytes: ircTextBytes(config.channel), log })
  irc.start()
  relay.start()
  await new Promise(resolve => { stopping.signal.addEventListener('abort', resolve, { once: true }) })
  log.info('bridge stopping')
  // the relay first: it may be waiting for IRC to confirm lines, which irc.stop() would cut
  await relay.stop()
  await irc.stop()
  log.info('bridge stopped', { ...relay.counts, lastEventId: state.lastEventId ?? 'none', pending: state.pending.length })
}

main().catch(err => {
  if (err instanceof ConfigError) {
    process.stderr.write(`irc-bridge: ${err.message}\n${USAGE}\n`)
    process.exitCode = 2
    return
  }
  log.error('bridge failed', { error: errorText(err) })
  process.exitCode = 1
})
