extension DecodingError {
    /// Where a JSON configuration file went wrong and how, for errors that name the field:
    /// the coding path (with the missing key appended) and a short reason.
    public var problem: (codingPath: [any CodingKey], detail: String) {
        switch self {
        case .typeMismatch(let type, let context): (context.codingPath, "expected \(type)")
        case .valueNotFound(let type, let context): (context.codingPath, "expected \(type), found null")
        case .keyNotFound(let key, let context): (context.codingPath + [key], "missing")
        case .dataCorrupted(let context): (context.codingPath, "not valid JSON (\(context.debugDescription))")
        @unknown default: ([], "unreadable")
        }
    }
}
