import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    // a hanging handle (a node, a server, a child process) fails the run instead of stalling it
    teardownTimeout: 10_000,
    reporters: process.env.CI != null ? ['default', 'hanging-process'] : ['default'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/vectors/**/*.test.ts'],
          testTimeout: 20_000
        }
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // real daemons as processes: on 2 cores, files in parallel would starve each other
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 60_000
        }
      }
    ]
  }
})
