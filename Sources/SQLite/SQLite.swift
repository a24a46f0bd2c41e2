import CSQLite
import RadGridCore

/// An SQLite failure: the statement's purpose (never its bound values) and SQLite's message.
public struct SQLiteError: CodedError, Equatable {
    public let code: String
    public let message: String
    /// SQLite's primary result code (`SQLITE_BUSY`, `SQLITE_FULL`, ...).
    public let resultCode: Int32

    init(_ resultCode: Int32, _ context: String, database: OpaquePointer?) {
        self.resultCode = resultCode
        let detail = database.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(resultCode))
        switch resultCode & 0xFF {
        case SQLITE_BUSY, SQLITE_LOCKED: code = "sqlite.busy"
        case SQLITE_FULL: code = "sqlite.full"
        case SQLITE_CANTOPEN: code = "sqlite.cannotOpen"
        case SQLITE_CORRUPT, SQLITE_NOTADB: code = "sqlite.corrupt"
        case SQLITE_CONSTRAINT: code = "sqlite.constraint"
        default: code = "sqlite.error"
        }
        message = "\(context): \(detail)"
    }
}

/// A value bound to or read from a statement.
public enum SQLiteValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)

    public var int: Int? { if case .integer(let value) = self { Int(value) } else { nil } }
    public var double: Double? {
        switch self {
        case .real(let value): value
        case .integer(let value): Double(value)
        default: nil
        }
    }
    public var text: String? { if case .text(let value) = self { value } else { nil } }
}

extension SQLiteValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .real(value) }
    public init(nilLiteral: ()) { self = .null }
    public init(_ value: Int) { self = .integer(Int64(value)) }
    public init(_ value: Double) { self = .real(value) }
    public init(_ value: String?) { self = value.map { .text($0) } ?? .null }
}

/// One result row, by column position.
public struct SQLiteRow: Sendable {
    public let values: [SQLiteValue]
    public subscript(_ index: Int) -> SQLiteValue { values[index] }
}

/// One connection to an SQLite database file. Not thread-safe: its owner serialises calls
/// (and runs them off the cooperative pool — every call may block on disk).
public final class SQLiteDatabase {
    private var handle: OpaquePointer?
    /// Prepared statements by SQL text, reused (reset and rebound) on every call.
    private var statements: [String: OpaquePointer] = [:]

    /// Opens (creating unless `readOnly`) the database at `path`. Waits up to
    /// `busyTimeoutMilliseconds` for another connection's lock.
    public init(path: String, readOnly: Bool = false, busyTimeoutMilliseconds: Int32 = 5_000) throws {
        let flags = readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        let status = sqlite3_open_v2(path, &handle, flags | SQLITE_OPEN_NOMUTEX, nil)
        guard status == SQLITE_OK else {
            let error = SQLiteError(status, "cannot open the database", database: handle)
            sqlite3_close_v2(handle)
            handle = nil
            throw error
        }
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    /// Runs one or more statements without parameters (schema, pragmas).
    public func execute(_ sql: String) throws {
        let status = sqlite3_exec(handle, sql, nil, nil, nil)
        guard status == SQLITE_OK else { throw SQLiteError(status, "statement failed", database: handle) }
    }

    /// Runs one statement for its effect; returns the number of rows it changed.
    @discardableResult
    public func run(_ sql: String, _ bindings: [SQLiteValue] = []) throws -> Int {
        let statement = try prepared(sql, bindings)
        defer { sqlite3_reset(statement) }
        let status = sqlite3_step(statement)
        guard status == SQLITE_DONE || status == SQLITE_ROW else { throw SQLiteError(status, "statement failed", database: handle) }
        return Int(sqlite3_changes(handle))
    }

    /// Runs one query and returns every row.
    public func query(_ sql: String, _ bindings: [SQLiteValue] = []) throws -> [SQLiteRow] {
        let statement = try prepared(sql, bindings)
        defer { sqlite3_reset(statement) }
        var rows: [SQLiteRow] = []
        while true {
            let status = sqlite3_step(statement)
            if status == SQLITE_DONE { return rows }
            guard status == SQLITE_ROW else { throw SQLiteError(status, "query failed", database: handle) }
            let count = sqlite3_column_count(statement)
            var values: [SQLiteValue] = []
            values.reserveCapacity(Int(count))
            for column in 0..<count {
                switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: values.append(.integer(sqlite3_column_int64(statement, column)))
                case SQLITE_FLOAT: values.append(.real(sqlite3_column_double(statement, column)))
                case SQLITE_TEXT: values.append(.text(String(cString: sqlite3_column_text(statement, column))))
                default: values.append(.null)
                }
            }
            rows.append(SQLiteRow(values: values))
        }
    }

    /// The first column of the first row, if any.
    public func scalar(_ sql: String, _ bindings: [SQLiteValue] = []) throws -> SQLiteValue {
        try query(sql, bindings).first?[0] ?? .null
    }

    /// Runs `body` in one write transaction (`BEGIN IMMEDIATE`): all of it commits, or none.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    private func prepared(_ sql: String, _ bindings: [SQLiteValue]) throws -> OpaquePointer {
        let statement: OpaquePointer
        if let cached = statements[sql] {
            statement = cached
        } else {
            var made: OpaquePointer?
            let status = sqlite3_prepare_v2(handle, sql, -1, &made, nil)
            guard status == SQLITE_OK, let made else { throw SQLiteError(status, "cannot prepare a statement", database: handle) }
            statements[sql] = made
            statement = made
        }
        sqlite3_clear_bindings(statement)
        for (offset, value) in bindings.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32 = switch value {
            case .null: sqlite3_bind_null(statement, index)
            case .integer(let number): sqlite3_bind_int64(statement, index, number)
            case .real(let number): sqlite3_bind_double(statement, index, number)
            // SQLITE_TRANSIENT: SQLite copies the text before the Swift string goes away.
            case .text(let text): sqlite3_bind_text(statement, index, text, -1, unsafeBitCast(-1, to: sqlite3_destructor_type.self))
            }
            guard status == SQLITE_OK else { throw SQLiteError(status, "cannot bind a value", database: handle) }
        }
        return statement
    }
}
