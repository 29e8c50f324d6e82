import type { Command } from 'commander'
import { ok, type Answer, type OctetClient } from '../client/index.js'
import { resolveDataDir } from '../config.js'
import { OctetError } from '../errors.js'
import { daemonApi } from './client.js'

export interface CommonOptions { dataDir?: string, json?: boolean }

/** A contact as the API gives it. */
export type Contact = Answer<'listContacts'>['contacts'][number]

/** The API client of the data directory named by the global --data-dir (or env, or default). */
export async function clientFor (command: Command): Promise<{ client: OctetClient, baseUrl: string, json: boolean }> {
  const opts = command.optsWithGlobals<CommonOptions>()
  const { client, baseUrl } = await daemonApi(resolveDataDir(opts.dataDir))
  return { client, baseUrl, json: opts.json === true }
}

export async function listContacts (client: OctetClient): Promise<Contact[]> {
  return ok(await client.GET('/v1/contacts')).contacts
}

/** A PeerId as given, or the PeerId of the contact with that name. */
export async function resolvePeer (client: OctetClient, nameOrPeerId: string): Promise<string> {
  const contacts = await listContacts(client)
  const byName = contacts.filter(c => c.name === nameOrPeerId)
  if (byName.length === 1 && byName[0] != null) return byName[0].peerId
  if (byName.length > 1) throw new OctetError('BAD_REQUEST', `${byName.length} contacts are named "${nameOrPeerId}"; use the PeerId`)
  if (/^[1-9A-HJ-NP-Za-km-z]{40,100}$/.test(nameOrPeerId)) return nameOrPeerId
  throw new OctetError('BAD_REQUEST', `"${nameOrPeerId}" is neither a PeerId nor a contact name; see \`octet contacts\``)
}

/** A contact's name if it has one, else a shortened PeerId. */
export function displayName (peerId: string, contacts: Contact[]): string {
  const name = contacts.find(c => c.peerId === peerId)?.name
  return name ?? `${peerId.slice(0, 8)}…${peerId.slice(-6)}`
}
