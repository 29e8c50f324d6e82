/**
 * The bridge's command line: which daemon (its data directory, or its API URL and token
 * file), which group, which IRC server, channel and nick, and where the cursor is kept.
 * Everything is checked here; a wrong flag is one line and exit status 2.
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { socketFetch, urlFetch, type ApiFetch } from 'octet/client'

export class ConfigError extends Error {
  readonly code = 'BAD_CONFIG'
  override readonly name = 'ConfigError'
}

export interface BridgeConfig {
  /** how the API is reached; read again on every request, so a restarted daemon on a new port is found */
  transport: ApiFetch
  /** for logs */
  apiName: string
  tokenFile: string
  groupId: string
  ircHost: string
  ircPort: number
  channel: string
  nick: string
  stateFile: string
}

export const USAGE = `usage: irc-bridge (--data-dir <dir> | --api-url <url> --token-file <file>) --group <id>
                  --irc <host:port> --channel <#name> [--nick <nick>] [--state-file <file>]`

const GROUP_ID = /^[0-9a-f]{32}$/
// RFC 2812 nicknames, with the lengths servers allow today
const NICK = /^[A-Za-z[\]\\`_^{|}][A-Za-z0-9[\]\\`_^{|}-]{0,29}$/
const CHANNEL = /^[#&][^\s,\x07]{1,49}$/

export function parseConfig (argv: string[]): BridgeConfig {
  let values
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        'data-dir': { type: 'string' },
        'api-url': { type: 'string' },
        'token-file': { type: 'string' },
        group: { type: 'string' },
        irc: { type: 'string' },
        channel: { type: 'string' },
        nick: { type: 'string', default: 'octet-bridge' },
        'state-file': { type: 'string' }
      }
    }))
  } catch (err) {
    throw new ConfigError((err as Error).message)
  }
  const groupId = values.group
  if (groupId == null || !GROUP_ID.test(groupId)) throw new ConfigError('--group: the group id, 32 hex digits (octet groups list)')
  const [, ircHost, port] = /^(.+):(\d{1,5})$/.exec(values.irc ?? '') ?? []
  const ircPort = Number(port)
  if (ircHost == null || !(ircPort > 0 && ircPort < 65536)) throw new ConfigError('--irc: the IRC server as host:port, e.g. 127.0.0.1:6667')
  const channel = values.channel
  if (channel == null || !CHANNEL.test(channel)) throw new ConfigError('--channel: an IRC channel such as #octet')
  if (!NICK.test(values.nick)) throw new ConfigError(`--nick: ${values.nick} is not an IRC nickname`)

  const dataDir = values['data-dir']
  let transport: ApiFetch
  let apiName: string
  let tokenFile: string
  if (dataDir != null) {
    if (values['api-url'] != null) throw new ConfigError('--data-dir and --api-url: give one of them')
    tokenFile = values['token-file'] ?? join(dataDir, 'api.token')
    const socket = join(dataDir, 'api.sock')
    const urlFile = join(dataDir, 'api.url')
    // chosen at each request: the Unix socket when the daemon serves one (its path stays the
    // same across restarts), else api.url, which the daemon rewrites at each start (its port
    // may change); while the daemon is down both fail and the caller retries
    const overSocket = socketFetch(socket)
    transport = async (path, init) => {
      if (existsSync(socket)) return await overSocket(path, init)
      const url = await readFile(urlFile, 'utf8').catch(() => { throw new Error(`the daemon is not running: no api.sock nor api.url in ${dataDir}`) })
      return await urlFetch(url.trim())(path, init)
    }
    apiName = dataDir
  } else {
    const apiUrl = values['api-url']
    if (apiUrl == null || !/^https?:\/\/[^/]+$/.test(apiUrl)) throw new ConfigError('--data-dir <dir>, or --api-url http://host:port with --token-file')
    if (values['token-file'] == null) throw new ConfigError('--api-url needs --token-file (the daemon\'s api.token)')
    tokenFile = values['token-file']
    transport = urlFetch(apiUrl)
    apiName = apiUrl
  }
  const stateFile = values['state-file'] ?? join(dataDir ?? '.', `irc-bridge-${groupId}.json`)
  return { transport, apiName, tokenFile, groupId, ircHost, ircPort, channel, nick: values.nick, stateFile }
}
