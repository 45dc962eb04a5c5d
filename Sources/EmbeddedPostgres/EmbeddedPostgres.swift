import AccessStore
import Foundation
import Logging
import Subprocess
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// A PostgreSQL cluster run from the system's server binaries in a local data folder.
///
/// Used by `spor-access serve` when no `DATABASE_URL` is given, and by the tests. The folder holds
/// `pgdata/` (the cluster), `credentials` (generated passwords, mode 0600) and `postgres.log`.
/// When the process runs as root the cluster runs as an unprivileged user (`initdb` refuses root).
public struct EmbeddedPostgres: Sendable {
    public struct Configuration: Sendable {
        /// The folder that holds the cluster; created when missing and reused on the next start.
        public var dataDirectory: URL
        /// TCP port on 127.0.0.1; `nil` picks a free one at each start.
        public var port: Int?
        /// Unprivileged user the cluster runs as when this process is root.
        public var unprivilegedUser: String
        /// Extra server settings (`-c name=value`), e.g. `fsync=off` for throwaway test clusters.
        public var settings: [String: String]

        public init(
            dataDirectory: URL,
            port: Int? = nil,
            unprivilegedUser: String = "postgres",
            settings: [String: String] = [:]
        ) {
            self.dataDirectory = dataDirectory.standardizedFileURL
            self.port = port
            self.unprivilegedUser = unprivilegedUser
            self.settings = settings
        }
    }

    /// Where a running cluster can be reached.
    public struct Running: Sendable {
        public let host: String
        public let port: Int
        public let superuser: String
        public let superuserPassword: String
        public let dataDirectory: URL
        /// False when the cluster was already running (another process started it): leave it running then.
        public var startedHere: Bool = true

        public func url(user: String, password: String, database: String) -> DatabaseURL {
            DatabaseURL(host: host, port: port, username: user, password: password, database: database)
        }
    }

    public let configuration: Configuration
    public let binaries: PostgresBinaries
    let logger: Logger

    public static let superuser = "postgres"

    public init(configuration: Configuration, binaries: PostgresBinaries? = nil, logger: Logger) throws {
        self.configuration = configuration
        self.binaries = try binaries ?? PostgresBinaries.locate()
        self.logger = logger
    }

    var clusterDirectory: URL { configuration.dataDirectory.appendingPathComponent("pgdata") }
    var logFile: URL { configuration.dataDirectory.appendingPathComponent("postgres.log") }
    var credentialsFile: URL { configuration.dataDirectory.appendingPathComponent("credentials") }

    /// Initialises the cluster when the folder is new, then starts it (or adopts one already running there).
    public func start() async throws -> Running {
        let fm = FileManager.default
        let runAs = try Self.runAsUser(named: configuration.unprivilegedUser)
        try fm.createDirectory(at: configuration.dataDirectory, withIntermediateDirectories: true)
        try chown(configuration.dataDirectory, to: runAs)

        var credentials = try Credentials.load(from: credentialsFile)
        if !fm.fileExists(atPath: clusterDirectory.appendingPathComponent("PG_VERSION").path) {
            try await initialise(runAs: runAs, credentials: &credentials)
        }
        guard let superPassword = credentials[Self.superuser] else {
            throw EmbeddedPostgresError.corruptDataFolder(
                "\(credentialsFile.path) has no password for \(Self.superuser); delete \(configuration.dataDirectory.path) to start afresh"
            )
        }

        if let port = try runningPort() {
            logger.info("adopting the PostgreSQL cluster already running", metadata: ["port": "\(port)"])
            return Running(
                host: "127.0.0.1", port: port, superuser: Self.superuser, superuserPassword: superPassword,
                dataDirectory: configuration.dataDirectory, startedHere: false)
        }

        let port = try configuration.port ?? Self.freePort()
        var options = ["-p \(port)"]
        for (name, value) in configuration.settings.sorted(by: { $0.key < $1.key }) {
            options.append("-c \(name)=\(value)")
        }
        let result = try await run(
            binaries.pgCtl,
            ["-D", clusterDirectory.path, "-l", logFile.path, "-w", "-t", "60", "-o", options.joined(separator: " "), "start"],
            runAs: runAs
        )
        guard result.status == 0 else {
            throw EmbeddedPostgresError.commandFailed("pg_ctl start", result.output + tailOfLog())
        }
        return Running(
            host: "127.0.0.1", port: port, superuser: Self.superuser, superuserPassword: superPassword,
            dataDirectory: configuration.dataDirectory)
    }

    /// Stops the cluster (fast shutdown: open sessions are ended, data is safe). A stopped cluster is left alone.
    public func stop() async throws {
        guard try runningPort() != nil else { return }
        let runAs = try Self.runAsUser(named: configuration.unprivilegedUser)
        let result = try await run(binaries.pgCtl, ["-D", clusterDirectory.path, "-m", "fast", "-w", "-t", "60", "stop"], runAs: runAs)
        guard result.status == 0 else { throw EmbeddedPostgresError.commandFailed("pg_ctl stop", result.output) }
    }

    /// Stops the cluster without awaiting (for `atexit` handlers): a fast shutdown by signal, as `pg_ctl stop -m fast`
    /// sends it, then waits up to `timeout` seconds for the postmaster to finish.
    public func stopNow(timeout: Double = 30) {
        guard let pid = runningPID() else { return }
        kill(pid, SIGINT)
        let deadline = Date().addingTimeInterval(timeout)
        while runningPID() != nil && Date() < deadline { usleep(50_000) }
    }

    /// Whether a postmaster is alive in this folder.
    public var isRunning: Bool { (try? runningPort()) != nil }

    /// The process id of the postmaster running in this folder, if one is alive.
    func runningPID() -> pid_t? {
        let pidFile = clusterDirectory.appendingPathComponent("postmaster.pid")
        guard let text = try? String(contentsOf: pidFile, encoding: .utf8),
            let first = text.split(separator: "\n").first, let pid = Int32(first.trimmingCharacters(in: .whitespaces))
        else { return nil }
        return kill(pid, 0) == 0 || errno == EPERM ? pid : nil
    }

    /// The port of the postmaster running in this folder, if one is alive.
    func runningPort() throws -> Int? {
        let pidFile = clusterDirectory.appendingPathComponent("postmaster.pid")
        guard let text = try? String(contentsOf: pidFile, encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count > 3, let pid = Int32(lines[0].trimmingCharacters(in: .whitespaces)),
            let port = Int(lines[3].trimmingCharacters(in: .whitespaces))
        else { return nil }
        // Signal 0 probes whether the process exists; EPERM still means it does.
        if kill(pid, 0) == 0 || errno == EPERM { return port }
        return nil
    }

    private func initialise(runAs: RunAsUser?, credentials: inout Credentials) async throws {
        let password = Credentials.generatePassword()
        // initdb reads the password from a file the cluster's user can read; it is removed right after.
        let pwfile = configuration.dataDirectory.appendingPathComponent(".initdb-pw")
        try password.write(to: pwfile, atomically: true, encoding: .utf8)
        try chown(pwfile, to: runAs)
        defer { try? FileManager.default.removeItem(at: pwfile) }

        let result = try await run(
            binaries.initdb,
            [
                "-D", clusterDirectory.path, "-U", Self.superuser, "--pwfile", pwfile.path,
                "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions",
            ],
            runAs: runAs
        )
        guard result.status == 0 else { throw EmbeddedPostgresError.commandFailed("initdb", result.output) }
        // Loopback TCP only: no Unix socket in a system folder this user may not own.
        let conf = clusterDirectory.appendingPathComponent("postgresql.conf")
        let handle = try FileHandle(forWritingTo: conf)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("\n# spor-access embedded cluster\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n".utf8))
        try handle.close()
        credentials[Self.superuser] = password
        try credentials.save(to: credentialsFile)
        logger.info("initialised a PostgreSQL cluster", metadata: ["dataDirectory": "\(configuration.dataDirectory.path)"])
    }

    private func tailOfLog() -> String {
        guard let text = try? String(contentsOf: logFile, encoding: .utf8) else { return "" }
        return "\n--- \(logFile.path) (last lines) ---\n" + text.split(separator: "\n").suffix(15).joined(separator: "\n")
    }

    // MARK: Running commands, possibly as another user

    struct RunAsUser: Sendable {
        let name: String
        let uid: uid_t
        let gid: gid_t
    }

    /// `nil` when this process is not root (the cluster runs as the current user).
    static func runAsUser(named name: String) throws -> RunAsUser? {
        guard geteuid() == 0 else { return nil }
        guard let entry = getpwnam(name) else {
            throw EmbeddedPostgresError.noUnprivilegedUser(name)
        }
        return RunAsUser(name: name, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
    }

    private func chown(_ url: URL, to user: RunAsUser?) throws {
        guard let user else { return }
        if Glibc.chown(url.path, user.uid, user.gid) != 0 {
            throw EmbeddedPostgresError.commandFailed("chown \(url.path)", String(cString: strerror(errno)))
        }
    }

    struct CommandResult {
        let status: Int32
        let output: String
    }

    /// Runs a server binary in the data folder, as `runAs` when given, with stdin from /dev/null and stdout and
    /// stderr to a file. The output goes to a file, not a pipe: the daemonised postmaster inherits the descriptors
    /// and never closes them, so a pipe reader would wait for ever on `pg_ctl start`.
    ///
    /// The user switch is `setpriv`'s, not swift-subprocess's `PlatformOptions.userID/groupID`: those call glibc's
    /// setgroups/setgid/setuid in the forked child of a multi-threaded process, and glibc's set*id broadcast then
    /// waits for threads that do not exist in the child — seen here as `initdb` never starting (a deadlock in
    /// `setxid_mark_thread`). `setpriv` switches in a fresh single-threaded process.
    private func run(_ executable: String, _ arguments: [String], runAs: RunAsUser?) async throws -> CommandResult {
        let outputPath = NSTemporaryDirectory() + "spor-pg-\(UUID().uuidString).out"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let output = try FileDescriptor.open(
            FilePath(outputPath), .writeOnly, options: [.create, .truncate], permissions: [.ownerReadWrite, .groupRead, .otherRead])
        var program = executable
        var argv = arguments
        if let runAs {
            program = "/usr/bin/setpriv"
            argv = ["--reuid=\(runAs.uid)", "--regid=\(runAs.gid)", "--init-groups", "--", executable] + arguments
        }
        let result: ExecutionResult<Void, FileDescriptorOutput, CombinedErrorOutput>
        do {
            result = try await Subprocess.run(
                .path(FilePath(program)), arguments: Arguments(argv),
                environment: .inherit.updating(["LC_ALL": "C.UTF-8", "PGDATA": nil]),
                workingDirectory: FilePath(configuration.dataDirectory.path),
                input: .none, output: .fileDescriptor(output, closeAfterSpawningProcess: true), error: .combinedWithOutput)
        } catch {
            throw EmbeddedPostgresError.commandFailed(([program] + argv).joined(separator: " "), "\(error)")
        }
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let status: Int32
        switch result.terminationStatus {
        case .exited(let code): status = code
        case .signaled(let signal): status = 128 + signal
        }
        return CommandResult(status: status, output: text)
    }

    /// Asks the kernel for a free loopback port.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw EmbeddedPostgresError.commandFailed("socket", String(cString: strerror(errno))) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw EmbeddedPostgresError.commandFailed("bind", String(cString: strerror(errno))) }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// The server binaries of a PostgreSQL installation.
public struct PostgresBinaries: Sendable {
    public let initdb: String
    public let pgCtl: String
    public let postgres: String

    /// Looks on PATH first, then under `/usr/lib/postgresql/*/bin` (newest version first).
    public static func locate(
        path: String = ProcessInfo.processInfo.environment["PATH"] ?? "",
        installRoot: String? = "/usr/lib/postgresql"
    ) throws -> PostgresBinaries {
        var directories = path.split(separator: ":").map(String.init)
        if let installRoot {
            let versions = ((try? FileManager.default.contentsOfDirectory(atPath: installRoot)) ?? [])
                .compactMap { Int($0) }.sorted(by: >)
            directories += versions.map { "\(installRoot)/\($0)/bin" }
        }
        for dir in directories {
            let names = ["initdb", "pg_ctl", "postgres"].map { "\(dir)/\($0)" }
            if names.allSatisfy({ FileManager.default.isExecutableFile(atPath: $0) }) {
                return PostgresBinaries(initdb: names[0], pgCtl: names[1], postgres: names[2])
            }
        }
        throw EmbeddedPostgresError.binariesNotFound(searched: directories)
    }
}

public enum EmbeddedPostgresError: Error, CustomStringConvertible {
    case binariesNotFound(searched: [String])
    case noUnprivilegedUser(String)
    case commandFailed(String, String)
    case corruptDataFolder(String)

    public var description: String {
        switch self {
        case .binariesNotFound:
            return """
                PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH or under \
                /usr/lib/postgresql/*/bin. SPOR Access starts its own PostgreSQL cluster when DATABASE_URL is not set, \
                so it needs them: install them with `apt-get install postgresql` (Debian/Ubuntu), or set DATABASE_URL \
                to a PostgreSQL 15+ database you already run.
                """
        case .noUnprivilegedUser(let name):
            return """
                This process runs as root, and PostgreSQL refuses to run as root, so the embedded cluster runs as the \
                user '\(name)' — but there is no such user. Create it (`useradd --system \(name)`, or install the \
                postgresql package, which does), or pass --postgres-user NAME.
                """
        case .commandFailed(let command, let output):
            return "\(command) failed:\n\(output)"
        case .corruptDataFolder(let message):
            return message
        }
    }
}

/// Generated passwords of the embedded cluster, one `role=password` per line, mode 0600.
struct Credentials {
    private var values: [String: String] = [:]

    subscript(role: String) -> String? {
        get { values[role] }
        set { values[role] = newValue }
    }

    static func load(from url: URL) throws -> Credentials {
        var credentials = Credentials()
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return credentials }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { credentials.values[String(parts[0])] = String(parts[1]) }
        }
        return credentials
    }

    func save(to url: URL) throws {
        let text = values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)\n" }.joined()
        _ = FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600])
        try text.write(to: url, atomically: false, encoding: .utf8)
    }

    /// 32 hex characters from the system's random source: safe to embed in `ALTER ROLE ... PASSWORD`.
    static func generatePassword() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }
}
