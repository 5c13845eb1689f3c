/// Reads a file descriptor a buffer at a time and hands each line (without its `\n` or `\r\n`) to a closure that may
/// rewrite it in place: the log scanner's line splitting (`LogScanner` without a format) over `LogInput`, for callers
/// that want every line. A line of `chunkSize` bytes or more is handed over empty with `truncated` true, so the caller
/// can report it, and the rest of it is skipped.
public final class LineReader {
    public static let defaultChunkSize = 1 << 20
    private let fd: Int32
    private let chunkSize: Int
    private var input: LogInput?
    private let scanner: LogScanner
    private var finished = false
    /// A mapped file's lines are copied here to be handed over writable.
    private let scratch: UnsafeMutableBufferPointer<UInt8>
    /// The number of the last line handed over.
    public var lineNumber: Int { scanner.lines }
    /// Bytes read so far.
    public var bytesRead: Int64 { input?.bytesRead ?? 0 }

    public init(fd: Int32, chunkSize: Int = LineReader.defaultChunkSize) {
        self.fd = fd
        self.chunkSize = chunkSize
        scanner = LogScanner(format: nil, maxLine: chunkSize)
        scratch = .allocate(capacity: chunkSize)
    }

    deinit { scratch.deallocate() }

    /// Reads one buffer and calls `body` for every whole line in it; false once the input is exhausted.
    public func readChunk(_ body: (UnsafeMutableBufferPointer<UInt8>, _ number: Int, _ truncated: Bool) throws -> Void) throws -> Bool {
        guard !finished else { return false }
        if input == nil { input = try LogInput(fd: fd, bufferSize: chunkSize) }
        guard let input, let (bytes, final) = try input.next() else {
            finished = true
            return false
        }
        var from = 0
        var count: Int
        repeat {
            let found = scanner.scan(bytes, from: &from, final: final, table: nil)
            count = found.count
            for line in found {
                let text: UnsafeMutableBufferPointer<UInt8>
                if line.truncated {
                    text = UnsafeMutableBufferPointer(rebasing: scratch[0..<0])
                } else if input.writable {
                    text = UnsafeMutableBufferPointer(mutating: UnsafeBufferPointer(rebasing: bytes[line.range]))
                } else {
                    text = UnsafeMutableBufferPointer(rebasing: scratch[0..<line.range.count])
                    _ = text.initialize(from: bytes[line.range])
                }
                try body(text, line.number, line.truncated)
            }
        } while count == scanner.capacity
        input.consume(from)
        if final, from == bytes.count { finished = true }
        return !finished
    }
}
