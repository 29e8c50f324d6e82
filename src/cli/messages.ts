import type { Command } from 'commander'
import { createInterface } from 'node:readline'
import { ok, type Answer, type OctetClient } from '../client/index.js'
import { errorMessage } from '../errors.js'
import { cliError } from './client.js'
import { clientFor, displayName, listContacts, resolvePeer, type Contact } from './context.js'
import { integerOption } from './options.js'
import { printJson, table } from './output.js'
import { events, openEventStream } from './sse.js'

type Message = Answer<'getMessage'>['message']

const time = (ms: number): string => new Date(ms).toLocaleTimeString()
const STATUS_MARK: Record<string, string> = { queued: '…', sent: '✓', stored: '✓ in mailboxes', delivered: '✓✓', read: '✓✓ read', failed: '✗' }

function formatMessage (m: Message, contacts: Contact[]): string {
  const who = m.direction === 'out' ? 'me' : displayName(m.peerId, contacts)
  const status = m.direction === 'out' ? `  ${STATUS_MARK[m.status] ?? m.status}${m.status === 'failed' && m.reason != null ? ` (${m.reason})` : ''}` : ''
  return `[${time(m.sentAt)}] ${who}: ${m.text}${status}`
}

/** `octet send`, `octet inbox`, `octet chat`. */
export function registerMessages (program: Command): void {
  program.command('send')
    .description('send a text to a PeerId or a contact name; returns once it is queued on disk')
    .argument('<peer>', 'PeerId or contact name')
    .argument('<text...>', 'the text')
    .option('--wait', 'wait until it is delivered (or sealed in mailboxes for an offline peer, or failed)')
    .option('--json', 'print JSON')
    .action(async (peerArg: string, words: string[], opts: { wait?: boolean }, command: Command) => {
      const { client, json } = await clientFor(command)
      const to = await resolvePeer(client, peerArg)
      let { message } = ok(await client.POST('/v1/messages', { body: { to, text: words.join(' ') } }))
      if (opts.wait === true) message = await waitForDelivery(client, message)
      if (json) return printJson(message)
      const detail = message.status === 'stored' ? ` (${message.mailboxes ?? 0} mailboxes; the recipient is offline)` : message.reason != null ? ` (${message.reason})` : ''
      process.stdout.write(`${message.id} ${message.status}${detail}\n`)
      if (message.status === 'failed') process.exitCode = 1
    })

  program.command('inbox')
    .description('conversations with unread counts and the unread messages')
    .option('-n, --limit <n>', 'unread messages shown per conversation', integerOption(1, 1000), 10)
    .option('--json', 'print JSON')
    .action(async (opts: { limit: number }, command: Command) => {
      const { client, json } = await clientFor(command)
      const [{ conversations }, contacts] = await Promise.all([
        client.GET('/v1/conversations').then(ok),
        listContacts(client)
      ])
      if (json) return printJson(conversations)
      if (conversations.length === 0) {
        process.stdout.write('no conversations yet; send one with `octet send <peer> <text>`\n')
        return
      }
      process.stdout.write(table(['PEER', 'UNREAD', 'LAST', 'NOTE'], conversations.map(c => [
        displayName(c.peerId, contacts), String(c.unread), c.lastMessageAt > 0 ? new Date(c.lastMessageAt).toLocaleString() : '',
        [c.contactState === 'pending' ? 'contact request: `octet contacts accept <peer>`' : '', c.gaps.length > 0 ? `missing #${c.gaps.slice(0, 5).join(', #')}` : ''].filter(Boolean).join('; ')
      ])) + '\n')
      for (const c of conversations.filter(c => c.unread > 0)) {
        const { messages } = ok(await client.GET('/v1/conversations/{peerId}/messages', { params: { path: { peerId: c.peerId }, query: { limit: Math.min(opts.limit, c.unread) } } }))
        process.stdout.write(`\n${displayName(c.peerId, contacts)} (${c.peerId}):\n${messages.map(m => '  ' + formatMessage(m, contacts)).join('\n')}\n`)
      }
    })

  program.command('chat')
    .description('interactive chat with one peer: type a line to send it, /quit to leave')
    .argument('<peer>', 'PeerId or contact name')
    .action(async (peerArg: string, _opts: unknown, command: Command) => {
      const { client } = await clientFor(command)
      await chat(client, await resolvePeer(client, peerArg))
    })
}

/** Statuses `send --wait` stops at: the message arrived, or is safe in mailboxes, or will not go. */
const SETTLED = ['stored', 'delivered', 'read', 'failed']

async function waitForDelivery (client: OctetClient, message: Message): Promise<Message> {
  const abort = new AbortController()
  const timer = setTimeout(() => { abort.abort() }, 60_000)
  try {
    const body = await openEventStream(client, abort.signal)
    // the status may have changed before the stream opened
    const current = await getMessage(client, message.id)
    if (SETTLED.includes(current.status)) return current
    for await (const event of events(body)) {
      if (event.type === 'message.status' && event.data.id === message.id && SETTLED.includes(event.data.status)) return await getMessage(client, message.id)
    }
    return current
  } catch (err) {
    if (abort.signal.aborted) return await getMessage(client, message.id)
    throw err
  } finally {
    clearTimeout(timer)
    abort.abort()
  }
}

async function getMessage (client: OctetClient, id: string): Promise<Message> {
  return ok(await client.GET('/v1/messages/{id}', { params: { path: { id } } })).message
}

async function chat (client: OctetClient, peer: string): Promise<void> {
  const contacts = await listContacts(client)
  const abort = new AbortController()
  const out = (line: string): boolean => process.stdout.write(`${line}\n`)
  const markRead = async (m: Message): Promise<void> => {
    if (m.direction === 'in' && m.status !== 'read') await client.POST('/v1/messages/{id}/read', { params: { path: { id: m.id } } }).then(ok).catch(() => {})
  }
  // subscribe first, so nothing that arrives while the history prints is missed
  const stream = await openEventStream(client, abort.signal)
  const { messages } = ok(await client.GET('/v1/conversations/{peerId}/messages', { params: { path: { peerId: peer }, query: { limit: 20 } } }))
  for (const m of messages) { out(formatMessage(m, contacts)); await markRead(m) }
  out(`chat with ${displayName(peer, contacts)} (${peer}) — type to send, /quit to leave`)
  const live = (async () => {
    for await (const event of events(stream)) {
      if (event.type === 'message.received') {
        const m = event.data.message
        if (m.peerId !== peer) continue
        out(formatMessage(m, contacts))
        await markRead(m)
      } else if (event.type === 'message.status' && event.data.peerId === peer && ['delivered', 'read', 'failed'].includes(event.data.status)) {
        out(`  (${event.data.id.slice(0, 8)} ${event.data.status}${event.data.reason != null ? `: ${event.data.reason}` : ''})`)
      } else if (event.type === 'identity.changed' && event.data.peerId === peer) {
        out('  ! the identity key of this peer changed: compare `octet safety` with them, then `octet contacts accept-identity`')
      }
    }
  })().catch(err => { if (!abort.signal.aborted) out(`event stream closed: ${String(err)}`) })

  const rl = createInterface({ input: process.stdin, terminal: process.stdin.isTTY })
  for await (const line of rl) {
    const text = line.trim()
    if (text === '') continue
    if (text === '/quit' || text === '/exit') break
    try {
      ok(await client.POST('/v1/messages', { body: { to: peer, text } }))
    } catch (err) {
      out(`not sent: ${errorMessage(cliError(err))}`)
    }
  }
  rl.close()
  abort.abort()
  await live
}
