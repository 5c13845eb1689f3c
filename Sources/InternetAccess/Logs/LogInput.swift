#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A log's bytes for the scanner. A regular file is mapped read-only from the descriptor's offset to its end as it is
/// when the import starts (no copy through a buffer, which cost more than the scan itself); the pages behind the scan
/// are dropped from the mapping as it goes, so memory stays bounded whatever the file's size. Anything else (a pipe, a
/// terminal, a file that cannot be mapped) is read into a buffer of `bufferSize` bytes, the longest line.
///
/// A mapped file must not shrink while it is imported (a `copytruncate` rotation in the middle of an import): reading
/// a page past the new end is a bus error. Import a rotated copy, or through a pipe (`cat FILE | tessera traffic
/// import -`), when a log may be truncated under the import.
final class LogInput {
    private enum Source {
        case mapped(UnsafeMutableRawPointer, length: Int, skip: Int)
        case read(UnsafeMutableBufferPointer<UInt8>)
    }

    private let fd: Int32
    private let source: Source
    /// Bytes of the data (after a mapping's `skip`) consumed, and filled (for a buffer).
    private var consumed = 0
    private var filled = 0
    private var ended = false
    /// Where the mapping's pages were last dropped.
    private var released = 0
    /// Bytes taken from the input.
    private(set) var bytesRead: Int64 = 0
    /// Drop the pages behind the scan every this many bytes.
    private static let releaseStep = 64 << 20

    init(fd: Int32, bufferSize: Int) throws(ImportError) {
        self.fd = fd
        var info = stat()
        let offset = lseek(fd, 0, SEEK_CUR)
        if fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, offset >= 0, Int64(info.st_size) > Int64(offset) {
            let page = Int64(sysconf(Int32(_SC_PAGESIZE)))
            let start = Int64(offset) / page * page
            let length = Int(Int64(info.st_size) - start)
            if let base = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, off_t(start)), base != MAP_FAILED {
                // Read ahead further, and let the pages passed go first (not WILLNEED: for a file larger than
                // memory that would read all of it ahead at once).
                _ = madvise(base, length, MADV_SEQUENTIAL)
                source = .mapped(base, length: length, skip: Int(Int64(offset) - start))
                return
            }
        }
        if (info.st_mode & S_IFMT) == S_IFREG, offset >= 0, Int64(info.st_size) <= Int64(offset) {
            // An empty file (or one read to its end).
            ended = true
        }
        source = .read(.allocate(capacity: bufferSize))
    }

    deinit {
        switch source {
        case .mapped(let base, let length, _): munmap(base, length)
        case .read(let buffer): buffer.deallocate()
        }
    }

    /// Whether the bytes handed over may be rewritten in place (a mapped file's may not).
    var writable: Bool {
        if case .read = source { return true }
        return false
    }

    /// The bytes not yet consumed, and whether the input ends with them; nil once it is all consumed.
    func next() throws(ImportError) -> (bytes: UnsafeBufferPointer<UInt8>, final: Bool)? {
        switch source {
        case .mapped(let base, let length, let skip):
            let data = length - skip
            guard consumed < data else { return nil }
            if bytesRead == 0 { bytesRead = Int64(data) }
            let start = (base + skip + consumed).assumingMemoryBound(to: UInt8.self)
            return (UnsafeBufferPointer(start: start, count: data - consumed), true)
        case .read(let buffer):
            if consumed > 0 {
                let rest = filled - consumed
                if rest > 0 { buffer.baseAddress!.update(from: buffer.baseAddress! + consumed, count: rest) }
                filled = rest
                consumed = 0
            }
            while !ended, filled < buffer.count {
                var n: Int
                repeat { n = read(fd, buffer.baseAddress! + filled, buffer.count - filled) } while n < 0 && errno == EINTR
                if n < 0 { throw ImportError(.unreadable, "read failed: \(String(cString: strerror(errno)))") }
                if n == 0 { ended = true; break }
                filled += n
                bytesRead += Int64(n)
            }
            guard filled > 0 || !ended else { return nil }
            return (UnsafeBufferPointer(rebasing: buffer[0..<filled]), ended)
        }
    }

    /// Marks the first `count` bytes of what `next` returned as handled.
    func consume(_ count: Int) {
        consumed += count
        guard case .mapped(let base, _, let skip) = source, skip + consumed - released >= Self.releaseStep else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let upTo = (skip + consumed) / page * page
        _ = madvise(base + released, upTo - released, MADV_DONTNEED)
        released = upTo
    }
}
