/*
 * A reporter for CI: one line when a test file starts. vitest's default reporter
 * prints a file only when it ends, so a file that never ends would leave no
 * trace of itself; with this line, the last one printed names it.
 */
import type { Reporter, TestModule } from 'vitest/node'

export default class ProgressReporter implements Reporter {
  onTestModuleStart (testModule: TestModule): void {
    process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] start ${testModule.project.name} ${testModule.relativeModuleId}\n`)
  }
}
