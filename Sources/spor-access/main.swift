import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

// SPOR_EXECUTOR=nio runs Swift concurrency on SwiftNIO's event loops: every database call and HTTP request hands its
// work between the two, and with separate thread pools each hand-over wakes another thread (perf: about a third of
// the service's CPU under load). Measured 1.1-1.2x the pairs/s at 32 clients once, no gain in later side-by-side
// runs (Benchmarks/api/RESULTS.md); and once, after a 12-minute load run, the service then never finished its
// shutdown on SIGINT (HTTP closed, every thread idle; `--shutdown-timeout` now ends such a shutdown): opt-in.
// Blocking work stays off the loops either way (bcrypt and the mail drop's file writes run on NIOThreadPool).
// It must be installed before any task runs, hence this entry point.
if ProcessInfo.processInfo.environment["SPOR_EXECUTOR"] == "nio" {
    NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
}
await runCommand()

/// ArgumentParser's own async entry point, written out: in an async function (not top-level code, where overload
/// resolution picks the synchronous `run()` and prints the command's help) the async `run()` is the one called.
func runCommand() async {
    do {
        var command = try SporAccess.parseAsRoot()
        if var asynchronous = command as? any AsyncParsableCommand {
            try await asynchronous.run()
        } else {
            try command.run()
        }
    } catch {
        SporAccess.exit(withError: error)
    }
}
