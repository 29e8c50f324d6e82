import type { Command } from 'commander'
import { resolveDataDir } from '../config.js'
import { OctetError } from '../errors.js'
import { ApiClient } from './client.js'

export interface CommonOptions { dataDir?: string, json?: boolean }

/** The API client of the data directory named by the global --data-dir (or env, or default). */
export async function clientFor (command: Command): Promise<{ client: ApiClient, json: boolean }> {
  const opts = command.optsWithGlobals<CommonOptions>()
  return { client: await ApiClient.forDataDir(resolveDataDir(opts.dataDir)), json: opts.json === true }
}

export interface ContactView { peerId: string, name?: string, state: string, identity: string }

/** A PeerId as given, or the PeerId of the contact with that name. */
export async function resolvePeer (client: ApiClient, nameOrPeerId: string): Promise<string> {
  const { contacts } = await client.request<{ contacts: ContactView[] }>('GET', '/v1/contacts')
  const byName = contacts.filter(c => c.name === nameOrPeerId)
  if (byName.length === 1 && byName[0] != null) return byName[0].peerId
  if (byName.length > 1) throw new OctetError('BAD_REQUEST', `${byName.length} contacts are named "${nameOrPeerId}"; use the PeerId`)
  if (/^[1-9A-HJ-NP-Za-km-z]{40,100}$/.test(nameOrPeerId)) return nameOrPeerId
  throw new OctetError('BAD_REQUEST', `"${nameOrPeerId}" is neither a PeerId nor a contact name; see \`octet contacts\``)
}

/** A contact's name if it has one, else a shortened PeerId. */
export function displayName (peerId: string, contacts: ContactView[]): string {
  const name = contacts.find(c => c.peerId === peerId)?.name
  return name ?? `${peerId.slice(0, 8)}…${peerId.slice(-6)}`
}
