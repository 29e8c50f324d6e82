import { describe, expect, it } from 'vitest'
import { HostCheck, isLoopbackHost } from '../../../src/api/hosts.js'

describe('isLoopbackHost: the one rule for "only this machine reaches it"', () => {
  it('takes localhost names and loopback addresses, written any way', () => {
    for (const host of ['localhost', 'LOCALHOST', 'localhost.', 'octet-0123456789abcdef0123.localhost', '127.0.0.1', '127.255.0.9', '::1', '[::1]', '0:0:0:0:0:0:0:1']) {
      expect(isLoopbackHost(host), host).toBe(true)
    }
  })

  it('refuses names that only look local, and every other address', () => {
    for (const host of ['127.example.org', '127.0.0.1.nip.io', 'localhost.example.org', 'notlocalhost', '0.0.0.0', '::', '128.0.0.1', '10.0.0.1', '::2', '', '127.0.0.256']) {
      expect(isLoopbackHost(host), host).toBe(false)
    }
  })

  it('is what the Host check lets through besides the listen address and the operator\'s hosts', () => {
    const check = new HostCheck(['192.0.2.7', 'Octet.Example.'])
    for (const header of ['localhost:8080', '127.0.0.1', '[::1]:1', 'a.localhost', '192.0.2.7:9', 'octet.example']) expect(check.allows(header), header).toBe(true)
    for (const header of ['127.example.org', 'evil.example:8080', '192.0.2.8', '[::2]:1', 'a b']) expect(check.allows(header), header).toBe(false)
  })
})
