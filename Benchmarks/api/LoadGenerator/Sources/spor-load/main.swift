// spor-load: the closed-loop load generator of Benchmarks/api/load.sh.
//
//   spor-load pair  --target URL[,URL...] --clients N --plan FILE [--count N] [--max-seconds S] [--out FILE] [--label L]
//   spor-load file  ...same...   (only the create of each plan line: fills the pending lists before the reads)
//   spor-load reads --target URL[,URL...] --clients N --plan FILE --count N [--max-seconds S] [--out FILE] [--label L]
//
// pair/file plan: one line per pair, `applicantToken<TAB>orgId<TAB>superUserToken`; each line is used once, by
//   whichever client is free next (so every pair has a fresh applicant, R7).
//   pair: POST /v1/access-requests {role: spor-industry-user, organisationId} as the applicant (201 expected),
//   then POST /v1/organisations/{orgId}/access-requests/{id}/approve {} as the super user (200 expected).
// reads plan: `name<TAB>path<TAB>token` (token `-`: anonymous); the lines are cycled until --count requests were made.
//
// Every client keeps one keep-alive connection (clients are spread over the targets round-robin) and has one request
// in flight. Everything runs on one SwiftNIO event loop thread. Bounded: stops after --count pairs/requests or
// --max-seconds (no new work after it; in-flight requests get 30 more seconds). Loopback targets only.
// Prints one JSON object (latencies in ms, nearest-rank percentiles, statuses, errors) to stdout or --out.

import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

// MARK: Arguments

struct Options {
    var workload = ""
    var targets: [(host: String, port: Int)] = []
    var targetText = ""
    var clients = 1
    var planPath = ""
    var count: Int?
    var maxSeconds = 60.0
    var outPath: String?
    var label = ""
}

func fail(_ message: String) -> Never {
    fputs("spor-load: \(message)\n", stderr)
    exit(2)
}

func parseTarget(_ text: String) -> (host: String, port: Int) {
    guard text.hasPrefix("http://") else { fail("target \(text) must start with http:// (plain HTTP on loopback)") }
    var rest = text.dropFirst("http://".count)
    if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
    var host: Substring
    var portText: Substring = "80"
    if rest.hasPrefix("[") {
        guard let close = rest.firstIndex(of: "]") else { fail("bad target \(text)") }
        host = rest[rest.index(after: rest.startIndex)..<close]
        let after = rest[rest.index(after: close)...]
        if after.hasPrefix(":") { portText = after.dropFirst() }
    } else if let colon = rest.lastIndex(of: ":") {
        host = rest[..<colon]
        portText = rest[rest.index(after: colon)...]
    } else {
        host = rest
    }
    guard let port = Int(portText), (1...65535).contains(port) else { fail("bad port in \(text)") }
    // Loopback only: 127.0.0.0/8, localhost, ::1.
    let octets = host.split(separator: ".")
    let isLoopbackV4 =
        octets.count == 4 && octets[0] == "127" && octets.allSatisfy { Int($0).map { (0...255).contains($0) } ?? false }
    guard isLoopbackV4 || host == "localhost" || host == "::1" else {
        fail("refusing non-loopback target \(text): this load generator only talks to 127.0.0.0/8, localhost or [::1]")
    }
    return (host == "localhost" ? "127.0.0.1" : String(host), port)
}

func parseOptions() -> Options {
    var options = Options()
    var arguments = Array(CommandLine.arguments.dropFirst())
    guard let workload = arguments.first, ["pair", "file", "reads"].contains(workload) else {
        fail("usage: spor-load pair|file|reads --target URL[,URL] --clients N --plan FILE [--count N] [--max-seconds S] [--out FILE] [--label L]")
    }
    options.workload = workload
    arguments.removeFirst()
    var index = 0
    func value() -> String {
        index += 1
        guard index < arguments.count else { fail("\(arguments[index - 1]) needs a value") }
        return arguments[index]
    }
    while index < arguments.count {
        switch arguments[index] {
        case "--target":
            options.targetText = value()
            options.targets = options.targetText.split(separator: ",").map { parseTarget(String($0)) }
        case "--clients": options.clients = Int(value()) ?? 0
        case "--plan": options.planPath = value()
        case "--count": options.count = Int(value())
        case "--max-seconds": options.maxSeconds = Double(value()) ?? 0
        case "--out": options.outPath = value()
        case "--label": options.label = value()
        default: fail("unknown argument \(arguments[index])")
        }
        index += 1
    }
    guard !options.targets.isEmpty else { fail("give --target") }
    guard options.clients >= 1, options.clients <= 1000 else { fail("--clients must be 1...1000") }
    guard options.maxSeconds > 0, options.maxSeconds <= 3600 else { fail("--max-seconds must be in (0, 3600]") }
    guard !options.planPath.isEmpty else { fail("give --plan") }
    return options
}

func readLines(_ path: String) -> [[String]] {
    guard let file = fopen(path, "r") else { fail("cannot open \(path)") }
    defer { fclose(file) }
    var lines: [[String]] = []
    var buffer: UnsafeMutablePointer<CChar>? = nil
    var capacity = 0
    while getline(&buffer, &capacity, file) > 0 {
        var line = String(cString: buffer!)
        while line.hasSuffix("\n") || line.hasSuffix("\r") { line.removeLast() }
        if line.isEmpty || line.hasPrefix("#") { continue }
        lines.append(line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init))
    }
    free(buffer)
    return lines
}

// MARK: Recording

final class Recorder {
    var latencies: [String: [Double]] = [:]
    var statuses: [String: [Int: Int]] = [:]
    var errors: [String: Int] = [:]
    var samplesPrinted = 0

    func record(_ name: String, milliseconds: Double, status: Int, ok: Bool, body: ByteBuffer?) {
        latencies[name, default: []].append(milliseconds)
        statuses[name, default: [:]][status, default: 0] += 1
        if !ok {
            let key = status == 0 ? "\(name) transport" : "\(name) \(status)"
            errors[key, default: 0] += 1
            if samplesPrinted < 5 {
                samplesPrinted += 1
                let text = body.map { String(buffer: $0) } ?? ""
                fputs("spor-load: \(name) answered \(status): \(text.prefix(300))\n", stderr)
            }
        }
    }
}

// MARK: Requests

enum Kind {
    case create
    case approve
    case read(String)

    var name: String {
        switch self {
        case .create: "create"
        case .approve: "approve"
        case .read(let name): name
        }
    }
}

struct Request {
    var kind: Kind
    var method: HTTPMethod
    var uri: String
    var token: String?
    var body: ByteBuffer?
    var expected: Int
    var plan: Int
}

let allocator = ByteBufferAllocator()

/// The value of the first `"id"` key of a JSON object (the AccessRequest answer is flat; pretty-printed or not).
func requestID(in body: ByteBuffer) -> Int64? {
    body.withUnsafeReadableBytes { raw -> Int64? in
        let key: [UInt8] = Array("\"id\"".utf8)
        let count = raw.count
        var i = 0
        while i + key.count <= count {
            var matches = true
            for k in 0..<key.count where raw[i + k] != key[k] {
                matches = false
                break
            }
            if matches {
                var j = i + key.count
                while j < count, raw[j] == UInt8(ascii: " ") || raw[j] == UInt8(ascii: "\n") { j += 1 }
                guard j < count, raw[j] == UInt8(ascii: ":") else {
                    i += 1
                    continue
                }
                j += 1
                while j < count, raw[j] == UInt8(ascii: " ") || raw[j] == UInt8(ascii: "\n") { j += 1 }
                var value: Int64 = 0
                var digits = 0
                while j < count, raw[j] >= UInt8(ascii: "0"), raw[j] <= UInt8(ascii: "9") {
                    value = value * 10 + Int64(raw[j] - UInt8(ascii: "0"))
                    j += 1
                    digits += 1
                }
                return digits > 0 ? value : nil
            }
            i += 1
        }
        return nil
    }
}

// MARK: The driver (everything below runs on the one event loop)

final class Driver {
    let options: Options
    let plan: [[String]]
    let count: Int
    let loop: EventLoop
    let recorder = Recorder()
    let done: EventLoopPromise<Void>
    var nextIndex = 0
    var deadline = NIODeadline.now()
    var startedAt = NIODeadline.now()
    var lastAnswerAt = NIODeadline.now()
    var stoppedBy = "count"
    var pairsOK = 0
    var requests = 0
    var clients: [Client] = []
    var active = 0
    var reconnects = 0

    init(options: Options, plan: [[String]], loop: EventLoop) {
        self.options = options
        self.plan = plan
        self.loop = loop
        self.done = loop.makePromise(of: Void.self)
        switch options.workload {
        case "reads":
            guard let count = options.count, count > 0 else { fail("reads needs --count") }
            self.count = count
        default:
            self.count = min(options.count ?? plan.count, plan.count)
        }
        guard !plan.isEmpty, count > 0 else { fail("the plan \(options.planPath) is empty") }
        if options.workload != "reads", plan.contains(where: { $0.count < 3 }) {
            fail("pair/file plan lines are applicantToken<TAB>orgId<TAB>superUserToken")
        }
        if options.workload == "reads", plan.contains(where: { $0.count < 3 }) {
            fail("reads plan lines are name<TAB>path<TAB>token")
        }
    }

    func start() {
        startedAt = .now()
        lastAnswerAt = startedAt
        deadline = startedAt + .nanoseconds(Int64(options.maxSeconds * 1e9))
        // A hard stop: requests still in flight 30 s after the deadline are given up.
        loop.scheduleTask(deadline: deadline + .seconds(30)) { [self] in
            if active > 0 {
                fputs("spor-load: \(active) client(s) still waiting 30 s after the time limit; giving up\n", stderr)
                stoppedBy = "hard-timeout"
                for client in clients where !client.finished { client.finish() }
            }
        }
        for i in 0..<options.clients {
            let target = options.targets[i % options.targets.count]
            let client = Client(driver: self, host: target.host, port: target.port)
            clients.append(client)
            active += 1
            client.connect()
        }
    }

    /// The next request of a client that is free, or nil when the run is over.
    func nextRequest() -> Request? {
        if nextIndex >= count { return nil }
        if NIODeadline.now() >= deadline {
            stoppedBy = "time"
            return nil
        }
        let index = nextIndex
        nextIndex += 1
        if options.workload == "reads" {
            let line = plan[index % plan.count]
            return Request(
                kind: .read(line[0]), method: .GET, uri: line[1], token: line[2] == "-" ? nil : line[2], body: nil,
                expected: 200, plan: index)
        }
        let line = plan[index]
        var body = allocator.buffer(capacity: 80)
        body.writeString("{\"role\":\"spor-industry-user\",\"organisationId\":\"\(line[1])\"}")
        return Request(kind: .create, method: .POST, uri: "/v1/access-requests", token: line[0], body: body, expected: 201, plan: index)
    }

    /// What follows an answer within the same pair (the approval of a filed request), or nil.
    func followUp(after request: Request, status: Int, body: ByteBuffer) -> Request? {
        guard options.workload == "pair", case .create = request.kind, status == 201 else { return nil }
        guard let id = requestID(in: body) else {
            recorder.record("create-id", milliseconds: 0, status: status, ok: false, body: body)
            return nil
        }
        let line = plan[request.plan]
        var empty = allocator.buffer(capacity: 2)
        empty.writeString("{}")
        return Request(
            kind: .approve, method: .POST, uri: "/v1/organisations/\(line[1])/access-requests/\(id)/approve", token: line[2], body: empty,
            expected: 200, plan: request.plan)
    }

    func clientFinished() {
        active -= 1
        if active == 0 { done.succeed(()) }
    }

    func reconnect(_ client: Client) {
        reconnects += 1
        if reconnects > 1000 {
            fputs("spor-load: more than 1000 reconnects; stopping\n", stderr)
            stoppedBy = "connection-errors"
            nextIndex = count
            client.finish()
            return
        }
        loop.scheduleTask(in: .milliseconds(reconnects > 50 ? 100 : 1)) { client.connect() }
    }
}

/// One closed-loop client: one connection, one request at a time.
final class Client {
    unowned let driver: Driver
    let host: String
    let port: Int
    var context: ChannelHandlerContext?
    var channel: Channel?
    var current: Request?
    var sentAt = NIODeadline.now()
    var pairStartedAt = NIODeadline.now()
    var status = 0
    var keepAlive = true
    var body = allocator.buffer(capacity: 4096)
    var finished = false
    var connectFailures = 0

    init(driver: Driver, host: String, port: Int) {
        self.driver = driver
        self.host = host
        self.port = port
    }

    func connect() {
        guard !finished else { return }
        ClientBootstrap(group: driver.loop)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(Connection(client: self))
                }
            }
            .connect(host: host, port: port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    self.connectFailures = 0
                    self.channel = channel
                case .failure(let error):
                    self.connectFailures += 1
                    if self.connectFailures >= 5 {
                        fputs("spor-load: cannot connect to \(self.host):\(self.port): \(error)\n", stderr)
                        self.driver.stoppedBy = "connection-errors"
                        self.finish()
                    } else {
                        self.driver.reconnect(self)
                    }
                }
            }
    }

    func active(_ context: ChannelHandlerContext) {
        self.context = context
        if let request = current {
            send(request)  // the request whose connection broke is not retried (it was counted); this cannot happen
        } else {
            issueNext()
        }
    }

    func issueNext() {
        guard let request = driver.nextRequest() else {
            finish()
            return
        }
        pairStartedAt = .now()
        send(request)
    }

    func send(_ request: Request) {
        guard let context else { return }
        current = request
        var head = HTTPRequestHead(version: .http1_1, method: request.method, uri: request.uri)
        head.headers.add(name: "Host", value: "\(host):\(port)")
        if let token = request.token { head.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body = request.body {
            head.headers.add(name: "Content-Type", value: "application/json")
            head.headers.add(name: "Content-Length", value: "\(body.readableBytes)")
        }
        status = 0
        keepAlive = true
        body.clear()
        sentAt = .now()
        context.write(NIOAny(HTTPClientRequestPart.head(head)), promise: nil)
        if let payload = request.body { context.write(NIOAny(HTTPClientRequestPart.body(.byteBuffer(payload))), promise: nil) }
        context.writeAndFlush(NIOAny(HTTPClientRequestPart.end(nil)), promise: nil)
    }

    func head(_ head: HTTPResponseHead) {
        status = Int(head.status.code)
        keepAlive = head.isKeepAlive
    }

    func bodyPart(_ part: inout ByteBuffer) { body.writeBuffer(&part) }

    func end() {
        guard let request = current else { return }
        let now = NIODeadline.now()
        current = nil
        driver.requests += 1
        driver.lastAnswerAt = now
        let milliseconds = Double((now - sentAt).nanoseconds) / 1e6
        let ok = status == request.expected
        driver.recorder.record(request.kind.name, milliseconds: milliseconds, status: status, ok: ok, body: ok ? nil : body)
        if case .approve = request.kind, ok {
            driver.pairsOK += 1
            driver.recorder.record("pair", milliseconds: Double((now - pairStartedAt).nanoseconds) / 1e6, status: 200, ok: true, body: nil)
        }
        if driver.options.workload == "file", case .create = request.kind, ok { driver.pairsOK += 1 }
        let next = driver.followUp(after: request, status: status, body: body)
        if !keepAlive {
            // The server closes this connection: go on with a new one.
            current = next
            context?.close(promise: nil)
            return
        }
        if let next { send(next) } else { issueNext() }
    }

    func inactive() {
        context = nil
        channel = nil
        if let request = current {
            // Broken mid-request: counted as a transport error, the pair is abandoned.
            let milliseconds = Double((NIODeadline.now() - sentAt).nanoseconds) / 1e6
            if status != 0 || request.expected != 0 {
                driver.recorder.record(request.kind.name, milliseconds: milliseconds, status: 0, ok: false, body: nil)
            }
            current = nil
        }
        if !finished { driver.reconnect(self) }
    }

    func finish() {
        guard !finished else { return }
        finished = true
        current = nil
        channel?.close(promise: nil)
        driver.clientFinished()
    }
}

final class Connection: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart
    let client: Client

    init(client: Client) { self.client = client }

    func channelActive(context: ChannelHandlerContext) {
        client.active(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): client.head(head)
        case .body(var part): client.bodyPart(&part)
        case .end: client.end()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        client.inactive()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

// MARK: Output

func percentile(_ sorted: [Double], _ q: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let rank = Int((q * Double(sorted.count)).rounded(.up))
    return sorted[max(0, min(sorted.count - 1, rank - 1))]
}

func number(_ value: Double, _ digits: Int = 3) -> String {
    guard value.isFinite else { return "null" }
    var factor = 1.0
    for _ in 0..<digits { factor *= 10 }
    let rounded = (value * factor).rounded() / factor
    return "\(rounded)"
}

func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 { out += "\\u00" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16) } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(0, &usage)  // RUSAGE_SELF
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
        + Double(usage.ru_stime.tv_usec) / 1e6
}

func report(_ driver: Driver, cpuBefore: Double) -> String {
    let elapsed = max(1e-9, Double((driver.lastAnswerAt - driver.startedAt).nanoseconds) / 1e9)
    var calls: [String] = []
    for name in driver.recorder.latencies.keys.sorted() {
        let sorted = driver.recorder.latencies[name, default: []].sorted()
        let statuses = driver.recorder.statuses[name, default: [:]].sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }
        let mean = sorted.reduce(0, +) / Double(max(1, sorted.count))
        calls.append(
            "\(jsonString(name)):{\"count\":\(sorted.count),\"p50_ms\":\(number(percentile(sorted, 0.50))),\"p95_ms\":\(number(percentile(sorted, 0.95))),"
                + "\"p99_ms\":\(number(percentile(sorted, 0.99))),\"max_ms\":\(number(sorted.last ?? 0)),\"mean_ms\":\(number(mean)),"
                + "\"statuses\":{\(statuses.joined(separator: ","))}}")
    }
    let errors = driver.recorder.errors.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\($0.value)" }
    let errorCount = driver.recorder.errors.values.reduce(0, +)
    var fields = [
        "\"workload\":\(jsonString(driver.options.workload))",
        "\"label\":\(jsonString(driver.options.label))",
        "\"targets\":\(jsonString(driver.options.targetText))",
        "\"clients\":\(driver.options.clients)",
        "\"elapsed_s\":\(number(elapsed))",
        "\"requests\":\(driver.requests)",
        "\"requests_per_s\":\(number(Double(driver.requests) / elapsed, 1))",
    ]
    if driver.options.workload != "reads" {
        fields.append("\"pairs_ok\":\(driver.pairsOK)")
        fields.append("\"pairs_per_s\":\(number(Double(driver.pairsOK) / elapsed, 1))")
    }
    fields += [
        "\"stopped_by\":\(jsonString(driver.stoppedBy))",
        "\"errors_total\":\(errorCount)",
        "\"errors\":{\(errors.joined(separator: ","))}",
        "\"calls\":{\(calls.joined(separator: ","))}",
        "\"generator_cpu_s\":\(number(cpuSeconds() - cpuBefore))",
        "\"reconnects\":\(driver.reconnects)",
    ]
    return "{" + fields.joined(separator: ",") + "}"
}

// MARK: Main

let options = parseOptions()
let plan = readLines(options.planPath)
let cpuBefore = cpuSeconds()
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let loop = group.next()
let driver = try loop.submit { Driver(options: options, plan: plan, loop: loop) }.wait()
try loop.submit { driver.start() }.wait()
try driver.done.futureResult.wait()
let output = try loop.submit { report(driver, cpuBefore: cpuBefore) }.wait()
try? group.syncShutdownGracefully()
if let path = options.outPath {
    guard let file = fopen(path, "w") else { fail("cannot write \(path)") }
    fputs(output + "\n", file)
    fclose(file)
} else {
    print(output)
}
