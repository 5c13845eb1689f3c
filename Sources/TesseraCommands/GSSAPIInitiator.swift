#if canImport(Glibc)
import Glibc
#endif

/// The client side of SPNEGO through the system's MIT GSSAPI (`libgssapi_krb5.so.2`), loaded at run time with
/// `dlopen`, so building Tessera needs no Kerberos headers and the server never needs the library: only
/// `tessera device join` on a domain-joined Linux machine does, where Kerberos is installed anyway (Himmelblau and
/// sssd use the same library). MIT takes the machine's initial ticket from the client keytab itself
/// (`KRB5_CLIENT_KTNAME`), into a memory cache, so nothing touches the system's credential cache.
final class GSSAPIInitiator {
    /// `gss_buffer_desc` and `gss_OID_desc` of RFC 2744, as MIT lays them out.
    struct Buffer {
        var length: Int = 0
        var value: UnsafeMutableRawPointer? = nil
    }
    struct OID {
        var length: UInt32
        var elements: UnsafeMutableRawPointer?
    }

    typealias Status = UInt32
    typealias ImportName = @convention(c) (
        UnsafeMutablePointer<UInt32>, UnsafeMutableRawPointer, UnsafeMutableRawPointer?, UnsafeMutablePointer<OpaquePointer?>
    ) -> Status
    typealias AcquireCred = @convention(c) (
        UnsafeMutablePointer<UInt32>, OpaquePointer?, UInt32, OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>,
        UnsafeMutablePointer<OpaquePointer?>?, UnsafeMutablePointer<UInt32>?
    ) -> Status
    typealias InitSecContext = @convention(c) (
        UnsafeMutablePointer<UInt32>, OpaquePointer?, UnsafeMutablePointer<OpaquePointer?>, OpaquePointer?, UnsafeMutableRawPointer?,
        UInt32, UInt32, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?,
        UnsafeMutableRawPointer, UnsafeMutablePointer<UInt32>?, UnsafeMutablePointer<UInt32>?
    ) -> Status
    typealias ReleaseBuffer = @convention(c) (UnsafeMutablePointer<UInt32>, UnsafeMutableRawPointer) -> Status
    typealias ReleaseHandle = @convention(c) (UnsafeMutablePointer<UInt32>, UnsafeMutablePointer<OpaquePointer?>) -> Status
    typealias DeleteContext = @convention(c) (UnsafeMutablePointer<UInt32>, UnsafeMutablePointer<OpaquePointer?>, UnsafeMutableRawPointer?) -> Status
    typealias DisplayStatus = @convention(c) (
        UnsafeMutablePointer<UInt32>, UInt32, Int32, UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt32>, UnsafeMutableRawPointer
    ) -> Status

    /// GSS_C_NT_HOSTBASED_SERVICE (1.2.840.113554.1.2.1.4), GSS_KRB5_NT_PRINCIPAL_NAME (1.2.840.113554.1.2.2.1) and
    /// SPNEGO (1.3.6.1.5.5.2).
    static let hostBasedService: [UInt8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x01, 0x04]
    static let principalName: [UInt8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02, 0x01]
    static let spnego: [UInt8] = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x02]
    /// GSS_C_MUTUAL_FLAG: the server must answer with proof it holds the service key.
    static let mutualFlag: UInt32 = 2

    private let library: UnsafeMutableRawPointer
    private let importName: ImportName
    private let acquireCred: AcquireCred
    private let initSecContext: InitSecContext
    private let releaseBuffer: ReleaseBuffer
    private let releaseName: ReleaseHandle
    private let releaseCred: ReleaseHandle
    private let deleteContext: DeleteContext
    private let displayStatus: DisplayStatus
    private var context: OpaquePointer?
    private var target: OpaquePointer?
    private var credential: OpaquePointer?

    /// Opens the library, and the credential of `principal` (or of the keytab's first entry when nil).
    init(principal: String?) throws {
        guard let library = dlopen("libgssapi_krb5.so.2", RTLD_NOW) else {
            throw DeviceJoinFailure("MIT Kerberos' GSSAPI library (libgssapi_krb5.so.2) is not installed: apt-get install libgssapi-krb5-2")
        }
        self.library = library
        func symbol<T>(_ name: String, _ type: T.Type) throws -> T {
            guard let pointer = dlsym(library, name) else { throw DeviceJoinFailure("libgssapi_krb5.so.2 has no \(name)") }
            return unsafeBitCast(pointer, to: type)
        }
        importName = try symbol("gss_import_name", ImportName.self)
        acquireCred = try symbol("gss_acquire_cred", AcquireCred.self)
        initSecContext = try symbol("gss_init_sec_context", InitSecContext.self)
        releaseBuffer = try symbol("gss_release_buffer", ReleaseBuffer.self)
        releaseName = try symbol("gss_release_name", ReleaseHandle.self)
        releaseCred = try symbol("gss_release_cred", ReleaseHandle.self)
        deleteContext = try symbol("gss_delete_sec_context", DeleteContext.self)
        displayStatus = try symbol("gss_display_status", DisplayStatus.self)
        if let principal {
            var name = try self.name(principal, type: Self.principalName)
            defer {
                var minor: UInt32 = 0
                _ = releaseName(&minor, &name)
            }
            var minor: UInt32 = 0
            let major = acquireCred(&minor, name, 0, nil, 1 /* GSS_C_INITIATE */, &credential, nil, nil)
            try check(major, minor, "getting a ticket for \(principal) from the keytab")
        }
    }

    deinit {
        var minor: UInt32 = 0
        if context != nil { _ = deleteContext(&minor, &context, nil) }
        if target != nil { _ = releaseName(&minor, &target) }
        if credential != nil { _ = releaseCred(&minor, &credential) }
        dlclose(library)
    }

    /// The first SPNEGO token for `service@host` (`adrs@tessera.corp.example.test`), mutual authentication asked.
    func firstToken(service: String) throws -> [UInt8] {
        target = try name(service, type: Self.hostBasedService)
        let (major, token) = try step(input: nil)
        guard major == 1 /* GSS_S_CONTINUE_NEEDED */ else {
            throw DeviceJoinFailure("GSSAPI finished without waiting for the server's mutual-authentication reply")
        }
        return token
    }

    /// Feeds the server's reply (`WWW-Authenticate: Negotiate …`): the context completes only if the server proved it
    /// holds the service key.
    func finish(reply: [UInt8]) throws {
        let (major, _) = try step(input: reply)
        guard major == 0 else { throw DeviceJoinFailure("the server's Negotiate reply did not complete mutual authentication") }
    }

    private func step(input: [UInt8]?) throws -> (UInt32, [UInt8]) {
        var minor: UInt32 = 0
        let output = Self.allocate(Buffer())
        let mechanism = Self.allocateOID(Self.spnego)
        let token = input.map { Self.allocate(Buffer(length: $0.count, value: Self.copy($0))) }
        defer {
            var minor: UInt32 = 0
            _ = releaseBuffer(&minor, output)
            Self.free(output)
            Self.free(mechanism, owning: mechanism.assumingMemoryBound(to: OID.self).pointee.elements)
            if let token { Self.free(token, owning: token.assumingMemoryBound(to: Buffer.self).pointee.value) }
        }
        let major = initSecContext(&minor, credential, &context, target, mechanism, Self.mutualFlag, 0, nil, token, nil, output, nil, nil)
        try check(major, minor, "making the Negotiate token")
        let result = output.assumingMemoryBound(to: Buffer.self).pointee
        return (major, result.value.map { Array(UnsafeRawBufferPointer(start: $0, count: result.length)) } ?? [])
    }

    /// C memory for a `gss_buffer_desc` or `gss_OID_desc` (two words, as MIT lays them out), or for bytes it points at.
    static func allocate<T>(_ value: T) -> UnsafeMutableRawPointer {
        let pointer = UnsafeMutablePointer<T>.allocate(capacity: 1)
        pointer.initialize(to: value)
        return UnsafeMutableRawPointer(pointer)
    }
    static func copy(_ bytes: [UInt8]) -> UnsafeMutableRawPointer {
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
        pointer.copyMemory(from: bytes, byteCount: bytes.count)
        return pointer
    }
    static func allocateOID(_ bytes: [UInt8]) -> UnsafeMutableRawPointer {
        allocate(OID(length: UInt32(bytes.count), elements: copy(bytes)))
    }
    /// Frees what ``allocate(_:)`` made and, when it made them too, the bytes it points at (never GSSAPI's own).
    static func free(_ pointer: UnsafeMutableRawPointer, owning bytes: UnsafeMutableRawPointer? = nil) {
        bytes?.deallocate()
        pointer.deallocate()
    }

    private func name(_ text: String, type: [UInt8]) throws -> OpaquePointer? {
        var minor: UInt32 = 0
        var result: OpaquePointer?
        let bytes = Self.copy(Array(text.utf8))
        let buffer = Self.allocate(Buffer(length: text.utf8.count, value: bytes))
        let typeBytes = Self.copy(type)
        let oid = Self.allocate(OID(length: UInt32(type.count), elements: typeBytes))
        defer { [bytes, buffer, typeBytes, oid].forEach { $0.deallocate() } }
        let major = importName(&minor, buffer, oid, &result)
        try check(major, minor, "reading the name \(text)")
        return result
    }

    /// Throws with GSSAPI's own words for a failed major status (its routine errors are in the top 16 bits).
    private func check(_ major: UInt32, _ minor: UInt32, _ what: String) throws {
        guard major & 0xffff_0000 != 0 else { return }
        throw DeviceJoinFailure("GSSAPI failed \(what): \(describe(major, type: 1)); \(describe(minor, type: 2))")
    }

    private func describe(_ status: UInt32, type: Int32) -> String {
        var messages: [String] = []
        var more: UInt32 = 0
        let buffer = Self.allocate(Buffer())
        defer { Self.free(buffer) }
        repeat {
            var minor: UInt32 = 0
            guard displayStatus(&minor, status, type, nil, &more, buffer) & 0xffff_0000 == 0 else { break }
            let text = buffer.assumingMemoryBound(to: Buffer.self).pointee
            if let value = text.value { messages.append(String(decoding: UnsafeRawBufferPointer(start: value, count: text.length), as: UTF8.self)) }
            _ = releaseBuffer(&minor, buffer)
        } while more != 0
        return messages.joined(separator: ", ")
    }
}
