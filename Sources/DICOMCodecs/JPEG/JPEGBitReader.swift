/// Reads the entropy-coded data of one scan, most significant bit first, undoing the 0xFF00
/// byte stuffing. It never consumes a marker: at one (or at the end of the input) it feeds
/// zero bits and counts them, so a decoder that runs past the real data is detected
/// (`overran`) at the next restart or at the end of the scan instead of reading outside
/// the input.
struct JPEGBitReader {
    let base: UnsafePointer<UInt8>
    let end: Int
    /// Next byte to load.
    private(set) var position: Int
    /// Bits not yet consumed, left-aligned (the next bit is bit 63).
    private(set) var accumulator: UInt64 = 0
    private(set) var bitCount: Int = 0
    /// Zero bits appended after the entropy-coded data ended.
    private var padding: Int = 0
    private var stopped = false

    init(base: UnsafePointer<UInt8>, start: Int, end: Int) {
        self.base = base
        self.position = start
        self.end = end
    }

    /// True once the decoder consumed bits that are not in the stream.
    var overran: Bool { padding > bitCount }

    /// Makes at least `n` (≤ 57) bits available.
    @inline(__always) mutating func ensure(_ n: Int) {
        if bitCount < n { refillInline() }
    }

    /// The eight-byte fast path of `refill`, inlined into the decoding loops. The slow path
    /// runs on a copy: a reader whose address is never taken can live in registers, which
    /// takes a store and a reload off each code's serial dependency chain.
    @inline(__always) mutating func refillInline() {
        if !stopped && end - position >= 8 {
            let word = UInt64(bigEndian: UnsafeRawPointer(base + position).loadUnaligned(as: UInt64.self))
            let inverted = ~word
            let hasFF = (inverted &- 0x0101_0101_0101_0101) & ~inverted & 0x8080_8080_8080_8080
            if hasFF == 0 {
                let bytes = (63 &- bitCount) &>> 3
                let taken = word &>> UInt64(64 &- bytes &* 8)
                accumulator |= taken &<< UInt64(64 &- bitCount &- bytes &* 8)
                bitCount &+= bytes &* 8
                position &+= bytes
                return
            }
        }
        var copy = self
        copy.refill()
        self = copy
    }

    @inline(__always) func peek(_ n: Int) -> Int {
        // n is 1...32: the shift stays below 64.
        Int(truncatingIfNeeded: accumulator &>> UInt64(64 - n))
    }

    @inline(__always) mutating func skip(_ n: Int) {
        accumulator = accumulator &<< UInt64(n)
        bitCount &-= n
    }

    /// Loads whole bytes until more than 56 bits are buffered.
    @inline(never) mutating func refill() {
        // Fast path: eight bytes without 0xFF (no stuffing, no marker) are taken in one load.
        if !stopped && end - position >= 8 {
            let word = UInt64(bigEndian: UnsafeRawPointer(base + position).loadUnaligned(as: UInt64.self))
            let inverted = ~word
            let hasFF = (inverted &- 0x0101_0101_0101_0101) & ~inverted & 0x8080_8080_8080_8080
            if hasFF == 0 {
                let bytes = (63 - bitCount) >> 3
                let taken = word &>> UInt64(64 - bytes * 8)
                accumulator |= taken &<< UInt64(64 - bitCount - bytes * 8)
                bitCount += bytes * 8
                position += bytes
                return
            }
        }
        while bitCount <= 56 {
            var byte: UInt64 = 0
            if !stopped {
                if position < end {
                    let b = base[position]
                    if b != 0xFF {
                        byte = UInt64(b)
                        position += 1
                    } else if position + 1 < end && base[position + 1] == 0 {
                        byte = 0xFF
                        position += 2
                    } else {
                        stopped = true // a marker (or fill bytes before one): left for the caller
                    }
                } else {
                    stopped = true
                }
            }
            if stopped { padding += 8 }
            accumulator |= byte &<< UInt64(56 - bitCount)
            bitCount += 8
        }
    }

    /// Drops the buffered bits (the padding of the last byte of an interval) and starts
    /// reading again at `offset`, just after a restart marker.
    mutating func restart(at offset: Int) {
        accumulator = 0
        bitCount = 0
        padding = 0
        stopped = false
        position = offset
    }
}

/// One Huffman table (T.81 Annex C), with lookup tables for the common short codes.
/// The tables live in one allocation owned by this object; decoding loops use the
/// pointers of `view` (no reference counting in the loop).
final class JPEGHuffmanTable {
    /// Bits resolved by one lookup.
    static let lookupBits = 11
    let storage: UnsafeMutableRawPointer
    let view: View

    /// Trivially copyable pointers into `storage`.
    struct View {
        /// Per `lookupBits` prefix: for category tables (DC, lossless) a combined entry,
        /// see `categoryEntry`; for AC tables `length | symbol << 8`. 0: longer code.
        let lookup: UnsafeMutablePointer<Int32>
        /// maxCode[l]: largest code of length l, -1 when none (index 1...16).
        let maxCode: UnsafeMutablePointer<Int32>
        /// valueOffset[l]: index in `values` of a code of length l minus that code.
        let valueOffset: UnsafeMutablePointer<Int32>
        let values: UnsafeMutablePointer<UInt8>

        /// Decodes one code longer than `lookupBits` (needs 16 bits buffered); -1 if no code matches.
        @inline(never) func decodeLong(_ reader: inout JPEGBitReader) -> Int {
            var length = JPEGHuffmanTable.lookupBits + 1
            while length <= 16 {
                let code = reader.peek(length)
                if code <= Int(maxCode[length]) {
                    reader.skip(length)
                    return Int(values[Int(valueOffset[length]) + code])
                }
                length += 1
            }
            return -1
        }

        /// Decodes one symbol (needs 16 bits buffered); -1 if no code matches.
        @inline(__always) func decodeSymbol(_ reader: inout JPEGBitReader) -> Int {
            let entry = Int(lookup[reader.peek(JPEGHuffmanTable.lookupBits)])
            if entry != 0 {
                reader.skip(entry & 0x1F)
                return entry >> 8
            }
            var copy = reader // keeps the caller's reader out of memory (see refillInline)
            let symbol = decodeLong(&copy)
            reader = copy
            return symbol
        }
    }

    enum Use {
        /// DC differences of DCT scans and lossless differences: the symbol is a bit count
        /// (category) of at most `maxCategory`, followed by that many bits of the value.
        case category(maxCategory: Int)
        /// AC run/size symbols.
        case ac
    }

    /// Builds the table from a DHT's 16 counts and its symbols; throws on an over-full code
    /// or a symbol the table's use does not allow.
    init(counts: [Int], symbols: [UInt8], use: Use, tableName: String) throws(CodecError) {
        let lookupCount = 1 << Self.lookupBits
        let bytes = lookupCount * 4 + 18 * 4 + 18 * 4 + 256
        storage = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 8)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        let lookup = storage.bindMemory(to: Int32.self, capacity: lookupCount)
        let maxCode = (storage + lookupCount * 4).bindMemory(to: Int32.self, capacity: 18)
        let valueOffset = (storage + lookupCount * 4 + 72).bindMemory(to: Int32.self, capacity: 18)
        let values = (storage + lookupCount * 4 + 144).bindMemory(to: UInt8.self, capacity: 256)
        view = View(lookup: lookup, maxCode: maxCode, valueOffset: valueOffset, values: values)

        for (i, s) in symbols.enumerated() { values[i] = s }
        var code = 0
        var index = 0
        for length in 1...16 {
            let n = counts[length - 1]
            maxCode[length] = -1
            // Codes of this length must fit in `length` bits (checked before they are tabulated).
            if code + n > (1 << length) {
                throw CodecError(.corrupt, "Huffman table \(tableName) has more codes of length \(length) than fit")
            }
            if n > 0 {
                valueOffset[length] = Int32(index - code)
                for k in 0..<n {
                    let symbol = Int(symbols[index + k])
                    if case .category(let maxCategory) = use, symbol > maxCategory {
                        throw CodecError(.corrupt, "Huffman table \(tableName) has category \(symbol) (at most \(maxCategory) allowed)")
                    }
                    if length <= Self.lookupBits {
                        Self.fill(lookup, code: code + k, length: length, symbol: symbol, use: use)
                    }
                }
                code += n
                index += n
                maxCode[length] = Int32(code - 1)
            }
            code <<= 1
        }
    }

    deinit { storage.deallocate() }

    /// Category entry bit layout: bits 0-4 bits to consume; bit 5 set when the entry holds
    /// the decoded value (code and value bits both fit the lookup) in bits 16-31; otherwise
    /// bits 8-12 hold the category whose value bits still follow.
    static let decodedFlag: Int = 0x20

    private static func fill(_ lookup: UnsafeMutablePointer<Int32>, code: Int, length: Int, symbol: Int, use: Use) {
        let spare = lookupBits - length
        let first = code << spare
        for suffix in 0..<(1 << spare) {
            let entry: Int
            switch use {
            case .ac:
                entry = length | symbol << 8
            case .category:
                // Category 16 (lossless) has no value bits: its difference 32768 does not fit
                // an entry's 16 bits, so it is left to the category path.
                if symbol < 16 && length + symbol <= lookupBits {
                    let raw = symbol == 0 ? 0 : (suffix >> (spare - symbol)) & ((1 << symbol) - 1)
                    let value = symbol == 0 ? 0 : extend(raw, symbol)
                    entry = (length + symbol) | decodedFlag | (value << 16)
                } else {
                    entry = length | symbol << 8
                }
            }
            lookup[first + suffix] = Int32(truncatingIfNeeded: entry)
        }
    }
}

/// The signed value of `bits` value bits of category `category` (T.81 F.2.2.1).
@inline(__always) func extend(_ bits: Int, _ category: Int) -> Int {
    bits < (1 << (category &- 1)) ? bits &- (1 << category) &+ 1 : bits
}

extension JPEGHuffmanTable.View {
    /// Decodes a DC or lossless difference (needs 32 bits buffered); nil if no code matches.
    @inline(__always) func decodeDifference(_ reader: inout JPEGBitReader) -> Int? {
        let entry = Int(lookup[reader.peek(JPEGHuffmanTable.lookupBits)])
        let category: Int
        if entry & JPEGHuffmanTable.decodedFlag != 0 {
            reader.skip(entry & 0x1F)
            return entry >> 16
        } else if entry != 0 {
            reader.skip(entry & 0x1F)
            category = (entry >> 8) & 0x1F
        } else {
            var copy = reader // keeps the caller's reader out of memory (see refillInline)
            category = decodeLong(&copy)
            reader = copy
            if category < 0 { return nil }
        }
        if category == 0 { return 0 }
        if category == 16 { return 32768 }
        let raw = reader.peek(category)
        reader.skip(category)
        return extend(raw, category)
    }
}
