import AccessStore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Debian's pgbouncer in transaction pooling mode in front of the test server, for the tests that run two service
/// instances through it. It runs as the unprivileged `postgres` user when the tests run as root (pgbouncer refuses
/// root), from a folder of its own that is removed when it stops.
public final class PgBouncer: @unchecked Sendable {  // its Process is only started and stopped, never shared mid-change
    /// Where pgbouncer is: `PATH`, then Debian's `/usr/sbin/pgbouncer`; nil when it is not installed.
    public static var binary: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let candidates = path.split(separator: ":").map { "\($0)/pgbouncer" } + ["/usr/sbin/pgbouncer"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Whether the tests must find pgbouncer (CI sets `SPOR_REQUIRE_PGBOUNCER=1`; elsewhere its tests are skipped
    /// when it is missing, with a note).
    public static var required: Bool { ProcessInfo.processInfo.environment["SPOR_REQUIRE_PGBOUNCER"] == "1" }

    private let process: Process
    private let folder: URL
    /// The port clients connect to.
    public let port: Int

    /// Starts pgbouncer in front of the server of `front` (its host and port), for `users`.
    public init(in front: DatabaseURL, users: [DatabaseURL], poolSize: Int = 10) async throws {
        guard let binary = Self.binary else { throw FixtureError("pgbouncer is not installed (apt-get install pgbouncer)") }
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("spor-pgbouncer-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        port = try Self.freePort()
        let userlist = users.map { "\"\($0.username)\" \"\($0.password ?? "")\"" }.joined(separator: "\n") + "\n"
        try userlist.write(to: folder.appendingPathComponent("userlist.txt"), atomically: true, encoding: .utf8)
        let configuration = """
            [databases]
            * = host=\(front.host) port=\(front.port)

            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = \(port)
            unix_socket_dir =
            auth_type = plain
            auth_file = \(folder.path)/userlist.txt
            pool_mode = transaction
            default_pool_size = \(poolSize)
            max_client_conn = 500
            ignore_startup_parameters = extra_float_digits,options
            logfile = \(folder.path)/pgbouncer.log

            """
        let ini = folder.appendingPathComponent("pgbouncer.ini")
        try configuration.write(to: ini, atomically: true, encoding: .utf8)
        let asRoot = getuid() == 0
        if asRoot {
            guard let user = getpwnam("postgres") else { throw FixtureError("user postgres is missing (useradd postgres)") }
            for path in [folder, ini, folder.appendingPathComponent("userlist.txt")] {
                chown(path.path, user.pointee.pw_uid, user.pointee.pw_gid)
            }
        }
        process = Process()
        if asRoot {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid=postgres", "--regid=postgres", "--init-groups", binary, ini.path]
        } else {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = [ini.path]
        }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<100 {
            if Self.accepts(port: port) { return }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let log = (try? String(contentsOf: folder.appendingPathComponent("pgbouncer.log"), encoding: .utf8)) ?? ""
        stop()
        throw FixtureError("pgbouncer did not start: \(log.suffix(600))")
    }

    /// `url` as reached through pgbouncer.
    public func url(for url: DatabaseURL) -> DatabaseURL {
        var through = url
        through.host = "127.0.0.1"
        through.port = port
        return through
    }

    /// Stops pgbouncer and removes its folder.
    public func stop() {
        // SIGTERM would wait for every client to leave ("super safe shutdown"); the tests are done with it.
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: folder)
    }

    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw FixtureError("no free port for pgbouncer") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
