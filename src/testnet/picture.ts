// What GET /testnet/state answers: shared, type-only, by the testnet server (ui.ts) and the
// page that draws it (web/src/testnet/main.tsx), which must not pull in Node modules.

/** One node as the testnet page draws it. */
export interface NodePicture {
  name: string
  peerId: string
  running: boolean
  reachability?: string
  routingTableSize?: number
  peers: Array<{ peerId: string, relayed: boolean }>
  /** /p2p-circuit addresses: relays that hold a reservation for it */
  relays: number
  /** cumulative counters, for the page to show what moved since its last look */
  traffic: { direct: number, group: number, mailbox: number }
  mailbox?: { envelopes: number, recipients: number }
  error?: string
}
