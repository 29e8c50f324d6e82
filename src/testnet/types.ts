/**
 * The shapes a testnet shows its callers and its parts: its options, the nodes it started
 * (and, in a NAT testnet, where they run) and the progress it reports while starting.
 */

export interface TestnetOptions {
  nodes: number
  dir: string
  /** 0: every port is picked by the OS. */
  basePort: number
  logLevel?: string
  /** Extra environment for every daemon. */
  env?: NodeJS.ProcessEnv
  /**
   * Each daemon in a network namespace of its own (Linux, root, iproute2 and iptables): node-0
   * and a quarter of the others on public hosts, every other node alone behind a NAT router.
   */
  nat?: boolean
  /** NAT testnets: first two octets of the public /16 (default DEFAULT_PUBLIC_NET of netns.ts) */
  publicNet?: string
}

/** Where a node of a NAT testnet runs. */
export interface TestnetPlacement {
  /** public: reachable by all; nat: behind its home's router, reachable by nobody who did not hear from it first */
  reach: 'public' | 'nat'
  /** the host in the topology (`pub0`, `home2-0`) and its network namespace */
  host: string
  namespace: string
  /** the node's own address in its namespace */
  address: string
  /** the address others see it from: its own, or its router's public one */
  seenAs: string
}

export interface TestnetNode {
  name: string
  peerId: string
  apiUrl: string
  addresses: string[]
  dataDir: string
  pid: number
  logFile: string
  /** `<data dir>/api.sock`: the only way to the API of a node in a network namespace */
  apiSocket?: string
  /** NAT testnets: where the node runs */
  placement?: TestnetPlacement
}

export type TestnetProgress =
  | { stage: 'node-started', node: TestnetNode, started: number, total: number }
  | { stage: 'topology', publicHosts: number, homes: number, elapsedMs: number }
  | { stage: 'nodes-up', elapsedMs: number }
  | { stage: 'bootstrap', connected: number, total: number }
  | { stage: 'dht', found: number, total: number, failedAttempts: number, allPairs: boolean }
  | { stage: 'ready', elapsedMs: number, lookups: number, allPairs: boolean }
