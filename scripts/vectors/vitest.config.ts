import { defineConfig } from 'vitest/config'

// only for `npx vitest run --config scripts/vectors/vitest.config.ts`: npm test never runs fill.ts
export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['scripts/vectors/fill.ts'],
    testTimeout: 60_000
  }
})
