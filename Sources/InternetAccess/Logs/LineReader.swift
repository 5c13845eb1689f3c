#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a file descriptor in fixed chunks and hands each line (without its `\n` or `\r\n`) to a closure that may
/// rewrite it in place: memory stays one chunk whatever the file's size. A line longer than the chunk is handed over
/// cut (`truncated` true) so the caller can report it, and the rest of it is skipped. Reading is a chunk at a time so
/// the caller can write what a chunk produced (asynchronously) before reading on.
public final class LineReader {
    public static let defaultChunkSize = 1 << 20
    private let fd: Int32
    private let buffer: UnsafeMutableBufferPointer<UInt8>
    private var filled = 0
    private var skippingRest = false
    private var finished = false
    /// The number of the last line handed over.
    public private(set) var lineNumber = 0
    /// Bytes read so far.
    public private(set) var bytesRead: Int64 = 0

    public init(fd: Int32, chunkSize: Int = LineReader.defaultChunkSize) {
        self.fd = fd
        self.buffer = .allocate(capacity: chunkSize)
    }

    deinit { buffer.deallocate() }

    /// Reads one chunk and calls `body` for every whole line in it; false once the input is exhausted.
    public func readChunk(_ body: (UnsafeMutableBufferPointer<UInt8>, _ number: Int, _ truncated: Bool) throws -> Void) throws -> Bool {
        guard !finished else { return false }
        func emit(_ start: Int, _ end: Int, truncated: Bool) throws {
            var e = end
            if e > start, buffer[e - 1] == 13 { e -= 1 }
            lineNumber += 1
            try body(UnsafeMutableBufferPointer(rebasing: buffer[start..<e]), lineNumber, truncated)
        }
        var n: Int
        repeat { n = read(fd, buffer.baseAddress! + filled, buffer.count - filled) } while n < 0 && errno == EINTR
        if n < 0 { throw ImportError(.unreadable, "read failed: \(String(cString: strerror(errno)))") }
        bytesRead += Int64(n)
        let end = filled + n
        var start = 0
        var from = filled
        let base = buffer.baseAddress!
        while from < end, let hit = memchr(base + from, 10, end - from) {
            let i = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            if skippingRest { skippingRest = false } else { try emit(start, i, truncated: false) }
            start = i + 1
            from = i + 1
        }
        if n == 0 {
            if start < end, !skippingRest { try emit(start, end, truncated: false) }
            finished = true
            return false
        }
        if start == 0, end == buffer.count {
            // A line longer than the buffer: its first chunk is reported, the rest dropped up to its newline.
            if !skippingRest { try emit(0, end, truncated: true) }
            skippingRest = true
            filled = 0
            return true
        }
        let rest = end - start
        if rest > 0, start > 0 { buffer.baseAddress!.update(from: buffer.baseAddress! + start, count: rest) }
        filled = rest
        return true
    }
}
