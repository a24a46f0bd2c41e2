import CHiredis
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One hiredis connection. Not thread-safe: only the `ConnectionThread` that owns it calls
/// `execute`; other threads may only call `interrupt()`.
///
/// This file and `RedisReply` (a read-only view of a parsed reply) are the only places in
/// RadGrid that touch hiredis.
final class HiredisConnection {
    private let configuration: RedisConfiguration
    private let logger: Logger
    private let epoch: ConnectionEpoch
    private var context: UnsafeMutablePointer<redisContext>?
    private var connectedAtEpoch: UInt64 = 0
    private var appliedTimeout: Duration?
    /// RESP bytes of the commands being sent (reused between round trips).
    private var writeBuffer: [UInt8] = []
    /// The socket, published so another thread can interrupt a blocking read.
    private let socket = Atomic<Int32>(-1)
    /// The operation that was cancelled (0: none). An operation whose job has not started
    /// yet when it is cancelled must not start at all, or it would block for its full time.
    private let cancelledOperation = Atomic<UInt64>(0)

    init(configuration: RedisConfiguration, logger: Logger, epoch: ConnectionEpoch) {
        self.configuration = configuration
        self.logger = logger
        self.epoch = epoch
    }

    deinit { disconnect() }

    var isConnected: Bool { context != nil }

    /// Sends all commands, then reads one reply per command: one round trip. Each reply is
    /// passed to `decode` before hiredis frees it. A script command whose script the server
    /// does not know (NOSCRIPT) gets nil instead, for the caller to load and replay.
    /// Error replies are otherwise decoded like any reply; transport failures throw and drop
    /// the connection (the next call reconnects).
    func execute<Output>(_ commands: [RedisCommand], timeout: Duration, operation: UInt64 = 0,
                         decode: (RedisReply) -> Output) throws(RedisError) -> [Output?] {
        if operation != 0, cancelledOperation.load(ordering: .acquiring) == operation {
            throw RedisError(.closed, "cancelled before sending")
        }
        if context != nil, connectedAtEpoch < epoch.current || peerHasClosed() {
            // The server went away while this connection sat idle (restart, failover,
            // timeout): reconnect before sending, so the command is not lost in a dead socket.
            disconnect()
        }
        let context = try connectedContext(operation: operation)
        // Cancellation may have come while connecting: do not send a blocking command then.
        if cancelled(operation) { throw RedisError(.closed, "cancelled before sending") }
        if appliedTimeout != timeout {
            guard redisSetTimeout(context, Self.timeval(timeout)) == REDIS_OK else {
                throw fail(RedisError(.connection, "cannot set socket timeout"))
            }
            appliedTimeout = timeout
        }
        try send(commands, operation: operation)
        var replies: [Output?] = []
        replies.reserveCapacity(commands.count)
        for command in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
                throw fail(cancelled(operation) ? RedisError(.closed, "cancelled") : transportError(context))
            }
            let reply = RedisReply(raw.assumingMemoryBound(to: redisReply.self))
            if command.script != nil, reply.kind == .error, reply.withBytes({ $0.starts(with: "NOSCRIPT".utf8) }) {
                replies.append(nil)
            } else {
                replies.append(decode(reply))
            }
            freeReplyObject(raw)
        }
        return replies
    }

    /// Unblocks a read in progress on the owning thread (used when a blocking command's task
    /// is cancelled); the connection is then dropped and reopened on next use.
    func interrupt(operation: UInt64) {
        cancelledOperation.store(operation, ordering: .releasing)
        let fd = socket.load(ordering: .acquiring)
        if fd >= 0 { _ = shutdown(fd, Int32(SHUT_RDWR)) }
    }

    /// Redis sends nothing unasked outside pub/sub, so an idle socket that is readable
    /// (EOF or stray bytes) is no longer usable. One non-blocking peek, no round trip.
    private func peerHasClosed() -> Bool {
        let fd = socket.load(ordering: .acquiring)
        guard fd >= 0 else { return true }
        var byte: UInt8 = 0
        let received = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if received == 0 { return true }
        if received < 0 { return !(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) }
        return true
    }

    func disconnect() {
        socket.store(-1, ordering: .releasing)
        if let context { redisFree(context) }
        context = nil
        appliedTimeout = nil
    }

    // MARK: - Connecting

    private func connectedContext(operation: UInt64) throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        if let context { return context }
        // Reconnect with exponential backoff until `reconnectWait` has passed, so a command
        // issued while Redis restarts waits for it instead of failing at once.
        let clock = ContinuousClock()
        let deadline = clock.now + configuration.reconnectWait
        var delay = configuration.reconnectBackoffInitial
        var attempt = 0
        while true {
            attempt += 1
            do {
                let context = try connectOnce()
                if attempt > 1 {
                    logger.info("redis reconnected", metadata: ["redis": "\(configuration.redactedURL)", "attempts": "\(attempt)"])
                }
                return context
            } catch {
                // Authentication and database errors will not heal by waiting.
                if error.kind == .server || clock.now + delay > deadline { throw error }
                if cancelled(operation) { throw RedisError(.closed, "cancelled while connecting") }
                if attempt == 1 {
                    logger.warning("redis unreachable, retrying", metadata: ["redis": "\(configuration.redactedURL)", "error": "\(error.message)"])
                }
                Self.sleep(delay)
                delay = min(delay * 2, configuration.reconnectBackoffMax)
            }
        }
    }

    private func connectOnce() throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        let timeout = Self.timeval(configuration.connectTimeout)
        let newContext: UnsafeMutablePointer<redisContext>?
        switch configuration.endpoint {
        case .tcp(let host, let port): newContext = redisConnectWithTimeout(host, Int32(port), timeout)
        case .unix(let path): newContext = redisConnectUnixWithTimeout(path, timeout)
        }
        guard let newContext else { throw RedisError(.connection, "cannot allocate a connection") }
        if newContext.pointee.err != 0 {
            let message = Self.errorString(newContext)
            redisFree(newContext)
            throw RedisError(.connection, "cannot connect to \(configuration.redactedURL): \(message)")
        }
        // Keep the reader's buffer between replies: by default hiredis frees it whenever it is
        // empty and over 16 KiB, and reallocating it for every large reply costs more than the memory.
        newContext.pointee.reader.pointee.maxbuf = 0
        context = newContext
        connectedAtEpoch = epoch.current
        socket.store(newContext.pointee.fd, ordering: .releasing)
        do {
            if let password = configuration.password {
                var arguments: [RedisArgument] = ["AUTH"]
                if let username = configuration.username { arguments.append(RedisArgument(username)) }
                arguments.append(RedisArgument(password))
                try handshake(arguments, what: "authentication")
            }
            if configuration.database != 0 {
                try handshake(["SELECT", RedisArgument(configuration.database)], what: "SELECT")
            }
            // A server replaying its AOF answers LOADING to everything: treat it as not up yet.
            try handshake(["PING"], what: "PING")
        } catch {
            disconnect()
            throw error
        }
        return newContext
    }

    private func handshake(_ arguments: [RedisArgument], what: String) throws(RedisError) {
        guard let context else { throw RedisError(.connection, "not connected") }
        _ = redisSetTimeout(context, Self.timeval(configuration.connectTimeout))
        appliedTimeout = configuration.connectTimeout
        try send([RedisCommand(arguments)], operation: 0)
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(context, &raw) == REDIS_OK, let raw else { throw fail(transportError(context)) }
        let reply = RedisReply(raw.assumingMemoryBound(to: redisReply.self)).value
        freeReplyObject(raw)
        if let message = reply.errorMessage, message.hasPrefix("LOADING") {
            throw RedisError(.connection, "server is loading its data set")
        }
        if let message = reply.errorMessage {
            // The server's text ("WRONGPASS invalid username-password pair") holds no secret.
            throw RedisError(.server, "\(what) failed: \(message)")
        }
    }

    // MARK: - Failures

    private func transportError(_ context: UnsafeMutablePointer<redisContext>) -> RedisError {
        let savedErrno = errno
        let message = Self.errorString(context)
        switch context.pointee.err {
        case REDIS_ERR_IO where savedErrno == EAGAIN || savedErrno == EWOULDBLOCK:
            return RedisError(.timeout, "no reply within the command timeout")
        case REDIS_ERR_PROTOCOL:
            return RedisError(.protocol, message)
        case REDIS_ERR_OOM:
            return RedisError(.protocol, "out of memory while reading a reply")
        default:
            epoch.advance()
            return RedisError(.connectionLost, message.isEmpty ? "connection lost" : message)
        }
    }

    private func cancelled(_ operation: UInt64) -> Bool {
        operation != 0 && cancelledOperation.load(ordering: .acquiring) == operation
    }

    /// Drops the connection: after any transport error its stream position is unknown.
    private func fail(_ error: RedisError) -> RedisError {
        disconnect()
        return error
    }

    // MARK: - Helpers

    /// Writes the commands' RESP encoding to the socket in one go. hiredis only reads and
    /// parses replies here: its output buffer is reallocated from empty for every round trip,
    /// which costs more than the write itself. The buffer here keeps its capacity instead.
    private func send(_ commands: [RedisCommand], operation: UInt64) throws(RedisError) {
        writeBuffer.removeAll(keepingCapacity: true)
        for command in commands {
            writeBuffer.append(0x2a)  // *
            withDecimalDigits(command.argumentCount) { writeBuffer.append(contentsOf: $0) }
            writeBuffer.append(0x0d)
            writeBuffer.append(0x0a)
            writeBuffer.append(contentsOf: command.encodedArguments)
        }
        defer {
            // Do not keep a huge buffer around after one large value.
            if writeBuffer.capacity > 1 << 20 { writeBuffer = [] }
        }
        let fd = socket.load(ordering: .acquiring)
        var failure: RedisError?
        writeBuffer.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if written > 0 {
                    offset += written
                    continue
                }
                if written < 0 && errno == EINTR { continue }
                let code = errno
                if cancelled(operation) {
                    failure = RedisError(.closed, "cancelled")
                } else if written < 0 && (code == EAGAIN || code == EWOULDBLOCK) {
                    failure = RedisError(.timeout, "could not send within the command timeout")
                } else {
                    epoch.advance()
                    failure = RedisError(.connectionLost, "connection lost while sending: \(String(cString: strerror(code)))")
                }
                return
            }
        }
        if let failure { throw fail(failure) }
    }

    private static func errorString(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    static func timeval(_ duration: Duration) -> timeval {
        let (seconds, attoseconds) = duration.components
        return Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }

    static func sleep(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) == -1 && errno == EINTR { request = remaining }
    }
}

/// Counts server losses seen by any connection of one client, so its other (idle)
/// connections reconnect before use instead of each failing once after a restart.
final class ConnectionEpoch: Sendable {
    private let value = Atomic<UInt64>(1)
    var current: UInt64 { value.load(ordering: .acquiring) }
    func advance() { value.add(1, ordering: .acquiringAndReleasing) }
}
