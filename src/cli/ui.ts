import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { isLoopbackHost } from '../api/hosts.js'
import { pageHostName } from '../api/ui-session.js'
import { resolveDataDir } from '../config.js'
import { dataDirPaths } from '../datadir.js'
import { OctetError, systemErrorCode } from '../errors.js'
import { ok } from '../client/index.js'
import { daemonApi } from './client.js'
import type { CommonOptions } from './context.js'

/**
 * `octet ui [--open]`: the URL of the daemon's web page with a one-time login code in its
 * fragment. Browsers never send a fragment to a server, so the code is in no request line
 * and no log; the page trades it for an HttpOnly cookie and removes it from the address bar.
 * The code works once, for two minutes. The bearer token never leaves this process.
 */
export function registerUi (program: Command): void {
  program.command('ui')
    .description('print a URL that opens the web page of the local daemon and logs the browser in (valid once, for 2 minutes)')
    .option('--open', 'open it in the default browser too')
    .option('--address', 'name the page by the API\'s address (127.0.0.1) rather than by a name of its own under .localhost, for a browser that does not resolve *.localhost')
    .action(async (options: { open?: boolean, address?: boolean }, command: Command) => {
      const dataDir = resolveDataDir(command.optsWithGlobals<CommonOptions>().dataDir)
      const { client, token } = await daemonApi(dataDir)
      const { code } = ok(await client.POST('/v1/ui/login-codes'))
      const url = `${await pageUrl(dataDir, options.address === true ? undefined : token)}/#login=${code}`
      process.stdout.write(`${url}\n`)
      if (options.open === true) openBrowser(url)
    })
}

/**
 * Where a browser on this machine reaches the page: the API's address, loopback when it listens
 * on every interface; for a loopback API, named by the daemon's own host under .localhost
 * (pageHostName: its cookie is then kept from other servers of this machine) unless `token` is
 * not given.
 */
async function pageUrl (dataDir: string, token: string | undefined): Promise<string> {
  let url: string
  try {
    url = (await readFile(dataDirPaths(dataDir).apiUrl, 'utf8')).trim()
  } catch (err) {
    throw new OctetError('DAEMON_NOT_RUNNING', `the daemon of ${dataDir} serves no web page over TCP (no api.url: ${systemErrorCode(err) ?? String(err)})`)
  }
  const parsed = new URL(url)
  if (parsed.hostname === '0.0.0.0') parsed.hostname = '127.0.0.1'
  if (parsed.hostname === '[::]') parsed.hostname = '[::1]'
  if (token != null && isLoopbackHost(parsed.hostname)) parsed.hostname = pageHostName(token)
  return parsed.origin
}

/** The system's way to open a URL; the browser runs on its own, this command does not wait for it. */
function openBrowser (url: string): void {
  const [cmd, ...args] = process.platform === 'darwin' ? ['open', url] : process.platform === 'win32' ? ['cmd', '/c', 'start', '', url] : ['xdg-open', url]
  const child = spawn(cmd ?? 'xdg-open', args, { stdio: 'ignore', detached: true })
  child.on('error', err => { process.stderr.write(`could not open a browser (${err.message}); open the URL above yourself\n`) })
  child.unref()
}
