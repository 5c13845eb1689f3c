import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A program a test runs (a script, `samba-tool`, `pg_ctl`), waited for without holding one of the few threads that
/// Swift's tasks run on: a test that blocks one in `Process.waitUntilExit` for the seconds `samba-tool` takes leaves
/// every other test in the process half the machine, and two such tests at once stall them all (the time-limited LDAP
/// tests, and a writer that waits for another's lock, failed in CI that way).
public enum ChildProcess {
    public struct Failed: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs a program and returns its standard output; throws with its error output when it fails. Spawned and waited
    /// for here rather than with `Process`: Foundation's `Process` on Linux never reports the end of a script that leaves
    /// a daemon behind (pg_ctl's server), and `waitpid` runs on a thread of its own, never on one of the few threads
    /// tasks run on.
    public static func run(_ path: String, _ arguments: [String]) async throws -> String {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-run-\(UUID().uuidString)").path
        let errors = output + ".err"
        defer {
            try? FileManager.default.removeItem(atPath: output)
            try? FileManager.default.removeItem(atPath: errors)
        }
        let child = try spawn(path, arguments, output: (output, O_WRONLY | O_CREAT | O_TRUNC), errors: (errors, O_WRONLY | O_CREAT | O_TRUNC))
        let status: Int32 = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var status: Int32 = 0
                while waitpid(child, &status, 0) == -1, errno == EINTR {}
                continuation.resume(returning: status)
            }
        }
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        // Exited normally with status 0: no signal (low seven bits) and a zero exit code (the next eight).
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            let said = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
            throw Failed(description: "\(URL(fileURLWithPath: path).lastPathComponent) \(arguments.joined(separator: " ")) failed (wait status \(status)): \(said)\(text)")
        }
        return text
    }

    /// A program started and left running: polled with ``Running/isRunning``, as a test that talks to it while it runs
    /// needs. Started with `posix_spawn` here rather than with Foundation's `Process`, whose `run()` on Linux (Swift 6.3)
    /// reads past the end of `readdir`'s buffer while it lists `/proc/self/fd` and crashed the test process (SIGSEGV in
    /// `Process.run`) once a test run held some 1,300 descriptors (swift-corelibs-foundation #5472).
    public static func start(_ path: String, _ arguments: [String], errorsTo errors: String) throws -> Running {
        Running(pid: try spawn(path, arguments, output: ("/dev/null", O_WRONLY), errors: (errors, O_WRONLY | O_CREAT | O_APPEND)))
    }

    /// Starts `path` with standard input from /dev/null and standard output and error opened as given (mode 0600 when
    /// created); returns its process id.
    private static func spawn(_ path: String, _ arguments: [String], output: (path: String, flags: Int32),
                              errors: (path: String, flags: Int32)) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output.path, output.flags, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errors.path, errors.flags, 0o600)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard spawned == 0 else { throw Failed(description: "\(path) could not be started (error \(spawned))") }
        return pid
    }

    /// A started program; its end is collected by ``isRunning`` without blocking.
    public final class Running: Sendable {
        let pid: pid_t
        private let ended = Mutex<Int32?>(nil)

        init(pid: pid_t) { self.pid = pid }

        /// Whether the program still runs (its wait status is collected, without blocking, once it has ended).
        public var isRunning: Bool {
            ended.withLock { ended in
                guard ended == nil else { return false }
                var status: Int32 = 0
                var collected: pid_t
                repeat { collected = waitpid(pid, &status, WNOHANG) } while collected == -1 && errno == EINTR
                if collected == pid { ended = status }
                return ended == nil
            }
        }

        /// Whether it exited normally with status 0; nil while it runs.
        public var succeeded: Bool? {
            guard !isRunning, let status = ended.withLock({ $0 }) else { return nil }
            return status & 0x7f == 0 && (status >> 8) & 0xff == 0
        }

        /// Asks it to end (SIGTERM); ``isRunning`` collects its end.
        public func terminate() {
            if isRunning { kill(pid, SIGTERM) }
        }
    }
}
