import type { Command } from 'commander'
import { ok, type Answer, type OctetClient } from '../client/index.js'
import { OctetError } from '../errors.js'
import { clientFor, displayName, listContacts, resolvePeer, type Contact } from './context.js'
import { integerOption } from './options.js'
import { printJson, table } from './output.js'

type Group = Answer<'getGroup'>['group']
type GroupMessage = Answer<'listGroupMessages'>['messages'][number]

const time = (ms: number): string => new Date(ms).toLocaleTimeString()

/** A group id as given, or the id of the one group with that name. */
async function resolveGroup (client: OctetClient, idOrName: string): Promise<string> {
  if (/^[0-9a-f]{32}$/.test(idOrName)) return idOrName
  const { groups } = ok(await client.GET('/v1/groups'))
  const named = groups.filter(g => g.name === idOrName)
  if (named.length === 1 && named[0] != null) return named[0].id
  if (named.length > 1) throw new OctetError('BAD_REQUEST', `${named.length} groups are named "${idOrName}"; use the id (see \`octet groups list\`)`)
  throw new OctetError('NOT_FOUND', `no group "${idOrName}"; see \`octet groups list\``)
}

function describe (group: Group, contacts: Contact[]): string {
  const role = (peer: string): string => group.admins.includes(peer) ? ' (admin)' : ''
  const lines = [
    `${group.name}  ${group.id}`,
    `state ${group.state}, version ${group.version}, key epoch ${group.keyEpoch}${group.isAdmin ? ', you are an admin' : ''}`,
    ...(group.invitedBy != null && group.state === 'invited' ? [`invited by ${displayName(group.invitedBy, contacts)}: \`octet groups accept ${group.id}\` or \`octet groups decline ${group.id}\``] : []),
    `members (${group.members.length}):`,
    ...group.members.map(m => `  ${displayName(m, contacts)}  ${m}${role(m)}`),
    ...(group.invites.length > 0 ? ['invited, no answer yet:', ...group.invites.map(p => `  ${displayName(p, contacts)}  ${p}`)] : [])
  ]
  return lines.join('\n')
}

function formatMessage (m: GroupMessage, contacts: Contact[]): string {
  const who = m.direction === 'out' ? 'me' : displayName(m.author, contacts)
  return `[${time(m.sentAt)}] ${who}: ${m.text}`
}

/** `octet groups …`: create, list, show, invite, accept, decline, leave, remove, send, read. */
export function registerGroups (program: Command): void {
  const groups = program.command('groups').description('group conversations: a signed member list, a gossipsub topic, Sender Keys')

  groups.command('list', { isDefault: true })
    .description('groups you are in, invited to, or left')
    .option('--json', 'print JSON')
    .action(async (_o, command: Command) => {
      const { client, json } = await clientFor(command)
      const { groups: list } = ok(await client.GET('/v1/groups'))
      if (json) return printJson(list)
      if (list.length === 0) {
        process.stdout.write('no groups yet; create one with `octet groups create <name>`\n')
        return
      }
      process.stdout.write(table(['ID', 'NAME', 'STATE', 'MEMBERS', 'VERSION'], list.map(g => [
        g.id, g.name, g.state + (g.isAdmin ? ' (admin)' : ''), String(g.members.length), String(g.version)
      ])) + '\n')
    })

  groups.command('create')
    .description('create a group; you are its first member and admin')
    .argument('<name>', 'the group name')
    .option('--json', 'print JSON')
    .action(async (name: string, _o, command: Command) => {
      const { client, json } = await clientFor(command)
      const { group } = ok(await client.POST('/v1/groups', { body: { name } }))
      if (json) return printJson(group)
      process.stdout.write(`${group.id} created; invite members with \`octet groups invite ${group.id} <peer>\`\n`)
    })

  groups.command('show')
    .description('members, admins, version and state of a group')
    .argument('<group>', 'group id or name')
    .option('--json', 'print JSON')
    .action(async (groupArg: string, _o, command: Command) => {
      const { client, json } = await clientFor(command)
      const id = await resolveGroup(client, groupArg)
      const [{ group }, contacts] = await Promise.all([client.GET('/v1/groups/{id}', { params: { path: { id } } }).then(ok), listContacts(client)])
      if (json) return printJson(group)
      process.stdout.write(describe(group, contacts) + '\n')
    })

  // one request per command, each on its own path: a path computed from the name would lose its type
  for (const { name, description, done, request } of [
    {
      name: 'accept',
      description: 'accept an invite; the admin then adds you',
      done: 'accepted; you join once the admin has added you',
      request: async (client: OctetClient, id: string) => ok(await client.POST('/v1/groups/{id}/accept', { params: { path: { id } } }))
    },
    {
      name: 'decline',
      description: 'decline an invite',
      done: 'declined',
      request: async (client: OctetClient, id: string) => ok(await client.POST('/v1/groups/{id}/decline', { params: { path: { id } } }))
    },
    {
      name: 'leave',
      description: 'leave a group',
      done: 'left',
      request: async (client: OctetClient, id: string) => ok(await client.POST('/v1/groups/{id}/leave', { params: { path: { id } } }))
    }
  ] as const) {
    groups.command(name)
      .description(description)
      .argument('<group>', 'group id or name')
      .option('--json', 'print JSON')
      .action(async (groupArg: string, _o, command: Command) => {
        const { client, json } = await clientFor(command)
        const id = await resolveGroup(client, groupArg)
        const { group } = await request(client, id)
        if (json) return printJson(group)
        process.stdout.write(`${group.name}: ${done} (state ${group.state})\n`)
      })
  }

  // an admin's operations on one peer: the same arguments and printout
  for (const { name, description, request, done } of [
    {
      name: 'invite',
      description: 'as an admin, invite a peer; it becomes a member once it accepts',
      request: async (client: OctetClient, id: string, peerId: string) => ok(await client.POST('/v1/groups/{id}/invites', { params: { path: { id } }, body: { peerId } })),
      done: (group: Group, peer: string) => `invited ${peer} to ${group.name}; it is added when it accepts`
    },
    {
      name: 'remove',
      description: 'as an admin, remove a member; the others move to new sender keys',
      request: async (client: OctetClient, id: string, peer: string) => ok(await client.DELETE('/v1/groups/{id}/members/{peerId}', { params: { path: { id, peerId: peer } } })),
      done: (group: Group, peer: string) => `removed ${peer} from ${group.name} (version ${group.version}, key epoch ${group.keyEpoch})`
    }
  ] as const) {
    groups.command(name)
      .description(description)
      .argument('<group>', 'group id or name')
      .argument('<peer>', 'PeerId or contact name')
      .option('--json', 'print JSON')
      .action(async (groupArg: string, peerArg: string, _o, command: Command) => {
        const { client, json } = await clientFor(command)
        const id = await resolveGroup(client, groupArg)
        const peer = await resolvePeer(client, peerArg)
        const { group } = await request(client, id, peer)
        if (json) return printJson(group)
        process.stdout.write(done(group, peer) + '\n')
      })
  }

  groups.command('send')
    .description('send a text to a group')
    .argument('<group>', 'group id or name')
    .argument('<text...>', 'the text')
    .option('--json', 'print JSON')
    .action(async (groupArg: string, words: string[], _o, command: Command) => {
      const { client, json } = await clientFor(command)
      const id = await resolveGroup(client, groupArg)
      const result = ok(await client.POST('/v1/groups/{id}/messages', { params: { path: { id } }, body: { text: words.join(' ') } }))
      if (json) return printJson(result)
      process.stdout.write(`${result.message.id} sent to ${result.recipients} peer(s) on the topic\n`)
    })

  groups.command('read')
    .description('the latest messages of a group')
    .argument('<group>', 'group id or name')
    .option('-n, --limit <n>', 'how many', integerOption(1, 1000), 20)
    .option('--json', 'print JSON')
    .action(async (groupArg: string, opts: { limit: number }, command: Command) => {
      const { client, json } = await clientFor(command)
      const id = await resolveGroup(client, groupArg)
      const [{ messages }, contacts] = await Promise.all([
        client.GET('/v1/groups/{id}/messages', { params: { path: { id }, query: { limit: opts.limit } } }).then(ok),
        listContacts(client)
      ])
      if (json) return printJson(messages)
      if (messages.length === 0) {
        process.stdout.write('no messages yet\n')
        return
      }
      process.stdout.write(messages.map(m => formatMessage(m, contacts)).join('\n') + '\n')
    })
}
