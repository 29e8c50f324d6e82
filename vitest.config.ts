import { defineConfig } from 'vitest/config'

/*
 * A worker whose event loop stops (synchronous code, a loop of microtasks) fires no timeout, and
 * the run would wait for it forever: this setup file names it, prints its stack and ends it.
 */
const watchdog = 'test/helpers/watchdog.ts'

export default defineConfig({
  test: {
    // a hanging handle (a node, a server, a child process) fails the run instead of stalling it
    teardownTimeout: 10_000,
    reporters: process.env.CI != null ? ['default', 'hanging-process', './test/helpers/progress-reporter.ts'] : ['default'],
    projects: [
      {
        test: {
          name: 'unit',
          setupFiles: [watchdog],
          include: ['test/unit/**/*.test.ts', 'test/vectors/**/*.test.ts'],
          testTimeout: 20_000
        }
      },
      {
        test: {
          name: 'integration',
          setupFiles: [watchdog],
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
