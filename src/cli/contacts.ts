import type { Command } from 'commander'
import { ok } from '../client/index.js'
import { clientFor, listContacts, resolvePeer } from './context.js'
import { printJson, table } from './output.js'

/** `octet contacts …` and `octet safety`. */
export function registerContacts (program: Command): void {
  const contacts = program.command('contacts').description('list and manage contacts (pending requests, blocked peers)')
  contacts.command('list', { isDefault: true })
    .description('list contacts')
    .option('--json', 'print JSON')
    .action(async (_o, command: Command) => {
      const { client, json } = await clientFor(command)
      const list = await listContacts(client)
      if (json) return printJson(list)
      if (list.length === 0) {
        process.stdout.write('no contacts yet; add one with `octet contacts add <PeerId> <name>`\n')
        return
      }
      process.stdout.write(table(['NAME', 'PEER ID', 'STATE', 'IDENTITY'], list.map(c => [c.name ?? '', c.peerId, c.state, c.identity])) + '\n')
    })

  contacts.command('add')
    .description('add a contact (or rename one)')
    .argument('<peerId>')
    .argument('[name]')
    .action(async (peerId: string, name: string | undefined, _o, command: Command) => {
      const { client } = await clientFor(command)
      const { contact } = ok(await client.POST('/v1/contacts', { body: { peerId, ...(name != null ? { name } : {}) } }))
      process.stdout.write(`${contact.name ?? contact.peerId} ${contact.state}\n`)
    })

  for (const [action, description] of [
    ['accept', 'accept a contact request (or unblock)'],
    ['block', 'block a peer: its messages are refused'],
    ['accept-identity', "trust a contact's new identity key after comparing safety numbers"]
  ] as const) {
    contacts.command(action)
      .description(description)
      .argument('<peer>', 'PeerId or contact name')
      .action(async (peerArg: string, _o, command: Command) => {
        const { client } = await clientFor(command)
        const peer = await resolvePeer(client, peerArg)
        const { contact } = ok(await client.POST(`/v1/contacts/{peerId}/${action}`, { params: { path: { peerId: peer } } }))
        process.stdout.write(`${contact.name ?? contact.peerId} ${contact.state}, identity ${contact.identity}\n`)
      })
  }

  contacts.command('reset-session')
    .description('start the session with a peer over and send again the messages it could not decrypt (failed: DECRYPT_FAILED, NO_SESSION, REPLAYED)')
    .argument('<peer>', 'PeerId or contact name')
    .option('--json', 'print JSON')
    .action(async (peerArg: string, _o, command: Command) => {
      const { client, json } = await clientFor(command)
      const peer = await resolvePeer(client, peerArg)
      const result = ok(await client.POST('/v1/contacts/{peerId}/reset-session', { params: { path: { peerId: peer } } }))
      if (json) return printJson(result)
      process.stdout.write(`session with ${result.peerId} reset; ${result.requeued} failed message(s) queued again\n`)
    })

  program.command('safety')
    .description('show the safety number to compare with a contact out of band')
    .argument('<peer>', 'PeerId or contact name')
    .option('--json', 'print JSON')
    .action(async (peerArg: string, _o, command: Command) => {
      const { client, json } = await clientFor(command)
      const peer = await resolvePeer(client, peerArg)
      const safety = ok(await client.GET('/v1/contacts/{peerId}/safety-number', { params: { path: { peerId: peer } } }))
      if (json) return printJson(safety)
      const groups = (digits: string): string => digits.replace(/(\d{5})(?=\d)/g, '$1 ')
      process.stdout.write(`${groups(safety.safetyNumber)}\n`)
      if (safety.pendingSafetyNumber != null) {
        process.stdout.write(`\nthe identity key of this peer CHANGED; the new safety number is:\n${groups(safety.pendingSafetyNumber)}\ncompare it with them, then \`octet contacts accept-identity ${peerArg}\`\n`)
      }
    })
}
