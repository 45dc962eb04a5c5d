import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

// Swift concurrency runs on SwiftNIO's event loops unless SPOR_EXECUTOR=swift: every database call and HTTP request
// hands its work between the two, and with separate thread pools each hand-over wakes another thread (perf: about
// a third of the service's CPU under load went to those wake-ups). Blocking work stays off the loops: bcrypt and the
// mail drop's file writes run on NIOThreadPool. It must be installed before any task runs, hence this entry point.
if ProcessInfo.processInfo.environment["SPOR_EXECUTOR"] != "swift" {
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
