/// A snapshot's entries or links as the manifest keeps them, built batch by batch: lines of four tab-separated fields
/// ("object kind digest deletedAt", "source relation target 1"), each ending in a newline, in one byte buffer. A
/// 100,000-object tenant's entries take about 11 MB here, where an array of `SnapshotEntry` (four strings each) and
/// the rows it came from took several times that.
///
/// Lines are kept in the order of their bytes, which for ASCII ids (every Graph id) is `String`'s order of the first
/// field, then of the next: a tab sorts before every character an id has. The store usually gives them in that order
/// already; where it does not (a database collating otherwise), `sort()` puts them in order.
struct ManifestLines {
    private(set) var bytes: [UInt8] = []
    /// Where each line starts in `bytes`.
    private var starts: [Int] = []
    /// Whether every line so far came after the one before it.
    private(set) var isSorted = true

    var count: Int { starts.count }

    /// Appends a line of these fields.
    mutating func append(_ first: String, _ second: String, _ third: String, _ fourth: String) {
        let start = bytes.count
        bytes.append(contentsOf: first.utf8); bytes.append(9)
        bytes.append(contentsOf: second.utf8); bytes.append(9)
        bytes.append(contentsOf: third.utf8); bytes.append(9)
        bytes.append(contentsOf: fourth.utf8); bytes.append(10)
        if isSorted, let previous = starts.last {
            isSorted = Self.less(bytes[previous..<start], bytes[start...])
        }
        starts.append(start)
    }

    /// Appends another batch's lines after these.
    mutating func append(_ other: ManifestLines) {
        guard other.count > 0 else { return }
        let offset = bytes.count
        if isSorted, let previous = starts.last {
            isSorted = other.isSorted && Self.less(bytes[previous...], other.bytes[0..<(other.starts.count > 1 ? other.starts[1] : other.bytes.count)])
        } else if starts.isEmpty {
            isSorted = other.isSorted
        }
        bytes.append(contentsOf: other.bytes)
        starts.append(contentsOf: other.starts.lazy.map { $0 + offset })
    }

    /// The line at `index`, newline included.
    func line(_ index: Int) -> ArraySlice<UInt8> {
        bytes[starts[index]..<(index + 1 < starts.count ? starts[index + 1] : bytes.count)]
    }

    /// Each line's four fields (the fourth is the rest of the line; a line of fewer is skipped), lent as views of the
    /// buffer: one pass over the bytes, nothing allocated a line (splitting each line into an array of fields was a
    /// twentieth of a first snapshot's CPU).
    func forEach(_ body: (Field, Field, Field, Field) -> Void) {
        forEachLine { line in
            guard let (first, second, third, fourth) = Self.fields(line) else { return }
            body(first, second, third, fourth)
        }
    }

    /// A field as `forEach` lends it.
    typealias Field = UnsafeBufferPointer<UInt8>

    /// Each line, newline excluded, lent as a view of the buffer.
    func forEachLine(_ body: (Field) -> Void) {
        bytes.withUnsafeBufferPointer { all in
            var start = 0
            for end in all.indices where all[end] == 10 {
                body(Field(rebasing: all[start..<end]))
                start = end + 1
            }
        }
    }

    /// A line's four tab-separated fields (the fourth is the rest of the line), or nil when it has fewer.
    static func fields(_ line: Field) -> (Field, Field, Field, Field)? {
        var tabs = (0, 0, 0), found = 0
        for index in line.indices where line[index] == 9 {
            switch found {
            case 0: tabs.0 = index
            case 1: tabs.1 = index
            default: tabs.2 = index
            }
            found += 1
            if found == 3 { break }
        }
        guard found == 3 else { return nil }
        return (Field(rebasing: line[..<tabs.0]), Field(rebasing: line[(tabs.0 + 1)..<tabs.1]),
                Field(rebasing: line[(tabs.1 + 1)..<tabs.2]), Field(rebasing: line[(tabs.2 + 1)...]))
    }

    /// Whether a line's first field is `field` (the lines sorted): a binary search.
    func containsLine(startingWith field: [UInt8]) -> Bool {
        var key = field
        key.append(9)
        var low = 0, high = count
        while low < high {
            let middle = (low + high) / 2
            let line = line(middle)
            if line.starts(with: key) { return true }
            if Self.less(line, key[...]) { low = middle + 1 } else { high = middle }
        }
        return false
    }

    /// Puts the lines in the order of their bytes.
    mutating func sort() {
        guard !isSorted else { return }
        let order = starts.indices.sorted { Self.less(line($0), line($1)) }
        var sorted: [UInt8] = []
        sorted.reserveCapacity(bytes.count)
        var newStarts: [Int] = []
        newStarts.reserveCapacity(starts.count)
        for index in order {
            newStarts.append(sorted.count)
            sorted.append(contentsOf: line(index))
        }
        bytes = sorted
        starts = newStarts
        isSorted = true
    }

    /// Whether the first line (up to its newline) orders before the second.
    static func less(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Bool {
        var i = a.startIndex, j = b.startIndex
        while i < a.endIndex, j < b.endIndex {
            let x = a[i], y = b[j]
            if x == 10 || y == 10 { return x == 10 && y != 10 }
            if x != y { return x < y }
            i += 1
            j += 1
        }
        return i == a.endIndex && j < b.endIndex
    }

    /// The text the manifest keeps; the buffer is given up.
    mutating func takeText() -> String {
        defer { bytes = []; starts = [] }
        return String(decoding: bytes, as: UTF8.self)
    }
}
